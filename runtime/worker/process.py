"""One worker process: start it on the app's interpreter, index the app through it, send it
invocations over its channel and show its output; stop or kill it.

User code runs only in these processes, so a crash, `os._exit`, a blocking call or a
runaway loop in the app never stalls the host's event loop. `pool.py` decides which worker
runs what.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import console
from runtime.errors import (
    FunctionInvocationError,
    IndexingError,
    InvocationTimeout,
    WorkerDied,
    WorkerError,
)
from runtime.worker.interpreter import AppPython, find_app_python, worker_environment
from runtime.worker.protocol import (
    CHANNEL_FD_ENV,
    LOG_LEVEL_ENV,
    encode_frame,
    parse_log_line,
    read_frame,
)

log = console.get("worker")
DEBUG_ENV = "FUNCLOCAL_DEBUG"  # runtime.worker.child.debugging.DEBUG_ENV
# The SDK packages an app imports, by module.
SDK_MODULES = (("azure.durable_functions", "azure-functions-durable"),
               ("azure.functions", "azure-functions"))

HELLO_TIMEOUT = 60.0  # the real host's worker start timeout


def _worker_setup() -> None:
    """Between fork and exec: a process group of its own, so a terminal's Ctrl-C (sent
    to the foreground group) reaches the host only and the host stops its workers in
    order; and SIGKILL if the host dies, so workers never outlive it."""
    os.setpgid(0, 0)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class DebugOptions:
    """`--debug PORT` / `--debug-wait`: workers run under debugpy."""

    port: int
    wait: bool = False


@dataclass(frozen=True)
class WorkerSettings:
    """How this host runs workers, the same for every version of the app: the app's
    interpreter, the debugger, which log lines to show, and `on_debug_port(pid, port)`
    to learn where a new worker's debugger listens."""

    python: AppPython = field(default_factory=lambda: find_app_python(Path("."), None, {}))
    debug: DebugOptions | None = None
    log_levels: console.LogLevels = field(default_factory=console.LogLevels)
    on_debug_port: Callable[[int, int], None] | None = None


class WorkerProcess:
    """One worker process and its channel."""

    def __init__(self, script_root: Path, env: Mapping[str, str],
                 settings: WorkerSettings | None = None) -> None:
        self.script_root = script_root
        self.env = env
        self.settings = settings = settings or WorkerSettings()
        self.python = settings.python
        self.debug = settings.debug
        self.on_debug_port = settings.on_debug_port
        self.debug_port: int | None = None
        self.early_output: list[str] = []  # what it printed before indexing finished
        self.indexed = False
        self.python_version: str | None = None
        self.sdk_versions: dict[str, str] = {}
        self.process: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.functions: list[dict[str, Any]] = []
        self.exited = asyncio.Event()
        self.retiring = False
        self.recycled = False  # stopped by the host, not by what it ran
        self.reserved = False  # running one invocation alone (see WorkerPool.invoke)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def load(self) -> int:
        return len(self.pending)

    async def start(self) -> list[dict[str, Any]]:
        """Spawn the process and wait until it has indexed the app. Cancelling this (a
        newer reload superseding it) kills the process."""
        parent_sock, child_sock = socket.socketpair()
        env = worker_environment(self.env, self.python)
        env[CHANNEL_FD_ENV] = str(child_sock.fileno())
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[LOG_LEVEL_ENV] = str(self.settings.log_levels.minimum())
        extra: list[str] = []
        if self.debug is not None:
            env[DEBUG_ENV] = "wait" if self.debug.wait else "listen"
            # Frozen standard modules hide their source from the debugger.
            extra = ["-Xfrozen_modules=off"]
            env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.python.worker_command(self.script_root, *extra),
                cwd=str(self.script_root), env=env,
                pass_fds=(child_sock.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                preexec_fn=_worker_setup)
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        try:
            return await self._handshake(parent_sock)
        except BaseException:
            if self.writer is None:
                parent_sock.close()  # otherwise the stream transport owns and closes it
            await asyncio.shield(self.kill())
            raise

    async def _handshake(self, parent_sock: socket.socket) -> list[dict[str, Any]]:
        assert self.process is not None
        reader, self.writer = await asyncio.open_connection(sock=parent_sock)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._tasks = [
            asyncio.create_task(self._pump_output(self.process.stdout)),
            asyncio.create_task(self._pump_output(self.process.stderr)),
        ]
        timeout: float | None = HELLO_TIMEOUT
        while True:
            try:
                hello = await asyncio.wait_for(read_frame(reader), timeout)
            except (asyncio.TimeoutError, ConnectionError) as exc:
                raise WorkerError(f"The worker process did not start: {exc!r}") from None
            if hello is None or hello.get("type") != "debug":
                break
            self.debug_port = int(hello["port"])
            if self.on_debug_port is not None and self.pid is not None:
                self.on_debug_port(self.pid, self.debug_port)
            if hello.get("wait"):
                timeout = None  # a person attaches a debugger: no start timeout
        if hello is None:
            code = await self.process.wait()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            said = "\n".join(self.early_output[-20:])
            raise IndexingError(f"The worker process ({self.python.describe()}) exited with "
                                f"code {code} while indexing." + (f"\n{said}" if said else ""))
        if "error" in hello:
            raise IndexingError(self._with_hint(str(hello["error"]), hello.get(
                "missing_module")), traceback_text=hello.get("traceback") or None,
                missing_module=hello.get("missing_module"))
        self.functions = list(hello.get("functions") or [])
        self.python_version = hello.get("python")
        self.sdk_versions = dict(hello.get("sdk") or {})
        self.indexed = True
        self._tasks.append(asyncio.create_task(self._read_results(reader)))
        return self.functions

    def _with_hint(self, message: str, missing: str | None) -> str:
        """A ModuleNotFoundError in the app names the interpreter and how to install the
        app's packages into it."""
        if not missing or "pip install" in message:
            return message
        python = self.python.executable
        requirements = self.script_root / "requirements.txt"
        package = next((name for prefix, name in SDK_MODULES if missing == prefix
                        or missing.startswith(prefix + ".")), None)
        if package is not None:
            message += (f"\nThe app's Python has no '{package}' package: add it to "
                        "requirements.txt.")
        top = missing.split(".")[0]
        if not requirements.is_file():
            install = f"{python} -m pip install {package or top}"
        elif package is not None or _lists(requirements, top):
            install = f"{python} -m pip install -r {requirements}"
        else:
            install = (f"'{top}' is not in requirements.txt: add the package that provides "
                       f"it (usually '{top}'), then run {python} -m pip install -r "
                       f"{requirements}")
        return (f"{message}\nThe workers run on {self.python.describe()}; install the app's "
                f"packages there: {install}")

    async def _pump_output(self, stream: asyncio.StreamReader) -> None:
        prefix = f"[worker {self.pid}]"
        while True:
            line = await stream.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\n")
            if not self.indexed:
                self.early_output.append(text)
            self._show(prefix, text)

    def _show(self, prefix: str, text: str) -> None:
        """A line of the worker's output: a tagged log record is shown at its level when
        host.json's levels (category `Function.<name>.User`) let it through."""
        tagged = parse_log_line(text)
        if tagged is None:
            if self.settings.log_levels.console_enabled:
                log.info("%s %s", prefix, text)
            return
        level, function, text = tagged
        category = f"Function.{function}.User" if function else "Host.Worker"
        if self.settings.log_levels.shows(category, level):
            # Shown at INFO at least: the host's own level (--verbose) must not hide
            # what host.json asked for.
            log.log(max(level, logging.INFO), "%s %s", prefix, text)

    async def _read_results(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_frame(reader)
                if message is None:
                    break
                future = self.pending.pop(int(message.get("id", -1)), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (ConnectionError, ValueError, OSError) as exc:
            log.debug("worker %s channel closed: %r", self.pid, exc)
        finally:
            code = await self.process.wait() if self.process else None
            running = [f for f in self.pending.values() if not f.done()]
            for future in running:
                future.set_exception(WorkerDied(self.pid, code, others=len(running) - 1,
                                                recycled=self.recycled))
            self.pending.clear()
            self.exited.set()

    async def call(self, function: str, inputs: dict[str, Any], *, invocation_id: str,
                   timeout: float | None, mode: str | None = None) -> dict[str, Any]:
        if self.writer is None or self.exited.is_set():
            raise WorkerDied(self.pid, self.process.returncode if self.process else None)
        call_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        self.writer.write(encode_frame({
            "type": "invoke", "id": call_id, "function": function,
            "invocation_id": invocation_id, "inputs": inputs,
            "script_root": str(self.script_root), **({"mode": mode} if mode else {})}))
        try:
            await self.writer.drain()
            reply = await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.CancelledError:
            # The caller gave up (a stop): `stop` does not wait for this call, and a
            # worker exit later has nobody to tell.
            self.pending.pop(call_id, None)
            raise
        except asyncio.TimeoutError:
            self.pending.pop(call_id, None)
            raise InvocationTimeout(function, timeout or 0.0) from None
        except (ConnectionError, OSError):
            self.pending.pop(call_id, None)
            raise WorkerDied(self.pid, None) from None
        if reply.get("ok"):
            value = reply.get("value")
            return value if isinstance(value, dict) else {"kind": "none"}
        error = reply.get("error") or {}
        raise FunctionInvocationError(function, str(error.get("type", "Exception")),
                                      str(error.get("message", "")),
                                      str(error.get("traceback", "")))

    async def reindex(self, timeout: float = HELLO_TIMEOUT) -> list[dict[str, Any]]:
        """Have the worker import the app again, with fresh module state (the test
        harness, between tests); returns its functions as at start. IndexingError when
        the app no longer imports, WorkerDied when the worker is gone."""
        if self.writer is None or self.exited.is_set():
            raise WorkerDied(self.pid, self.process.returncode if self.process else None)
        call_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        self.writer.write(encode_frame({"type": "reindex", "id": call_id}))
        try:
            await self.writer.drain()
            reply = await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.CancelledError:
            self.pending.pop(call_id, None)
            raise
        except (asyncio.TimeoutError, ConnectionError, OSError):
            self.pending.pop(call_id, None)
            raise WorkerError(f"Worker process {self.pid} did not import the app again "
                              f"within {timeout:.0f} s.") from None
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise IndexingError(str(error.get("message", "")),
                                traceback_text=error.get("traceback") or None)
        self.functions = list((reply.get("value") or {}).get("functions") or [])
        return self.functions

    async def stop(self, grace: float = 5.0) -> None:
        """Ask the worker to exit once in-flight calls are done; kill it after the grace."""
        if self.process is None or self.process.returncode is not None:
            await self._finish_tasks()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            while self.pending and loop.time() < deadline:
                await asyncio.wait(list(self.pending.values()), timeout=deadline - loop.time())
            if self.pending:
                log.warning("Worker process %s still has %d invocation(s) running after the "
                            "%.0f s grace period; stopping it.", self.pid, len(self.pending),
                            grace)
            if self.writer is not None:
                self.writer.write(encode_frame({"type": "shutdown"}))
                await self.writer.drain()
            await asyncio.wait_for(self.process.wait(), max(0.5, deadline - loop.time()))
        except (asyncio.TimeoutError, ConnectionError, OSError):
            log.warning("Worker process %s did not exit; killing it.", self.pid)
            await self.kill()
        await self._finish_tasks()

    async def kill(self) -> None:
        self.recycled = True  # what it was running did not make it exit
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            await self.process.wait()
        await self._finish_tasks()

    async def _finish_tasks(self) -> None:
        if self.writer is not None:
            self.writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _lists(requirements: Path, module: str) -> bool:
    """Whether requirements.txt names a package spelled like `module` (pip treats `-`, `_`
    and `.` alike and ignores case); a package whose name differs from its module
    (`PyYAML` for `yaml`) reads as not listed, and the hint says to check."""
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()
    try:
        lines = requirements.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return True  # unreadable: do not claim it is missing
    names = {norm(re.split(r"[\s\[<>=!~;@]", line.strip(), maxsplit=1)[0])
             for line in lines if line.strip() and not line.lstrip().startswith(("#", "-"))}
    return norm(module) in names
