"""Worker process: imports the user's app and runs its functions on request.

Started by the host as `python -m runtime.worker.child.main --script-root DIR`, with the
channel's file descriptor in FUNCLOCAL_CHANNEL_FD. User output goes to this process's
stdout/stderr, which the host reads and prefixes; only frames travel on the channel.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.errors import IndexingError
from runtime.worker.child import debugging, logs, sdk_speedups
from runtime.worker.child.tracebacks import user_frames, user_traceback
from runtime.worker.protocol import CHANNEL_FD_ENV, encode_frame, read_frame

if TYPE_CHECKING:
    from runtime.worker.child.loader import LoadedFunction
    from runtime.worker.child.orchestrations import OrchestratorRunner

# What the Durable SDK puts between an orchestrator's error and its state.
OUT_OF_PROC_DATA = "$OutOfProcData$"

# The packages of the app's own environment that the worker itself imports.
SDK_PACKAGES = {"azure": "azure-functions", "azure.functions": "azure-functions"}


# How often idle replay sessions are looked for (they are also dropped on every use).
SESSION_SWEEP_SECONDS = 15.0


class Worker:
    def __init__(self, functions: dict[str, LoadedFunction],
                 writer: asyncio.StreamWriter, script_root: Path | None = None) -> None:
        self.functions = functions
        self.writer = writer
        self.script_root = script_root
        threads = _thread_count()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="funclocal-invoke")
        self.tasks: set[asyncio.Task[None]] = set()
        from runtime.worker.child.orchestrations import OrchestratorRunner

        self.orchestrations: OrchestratorRunner = OrchestratorRunner.from_environment()

    async def sweep_sessions(self) -> None:
        sessions = self.orchestrations.sessions
        if sessions is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SESSION_SWEEP_SECONDS)
            if len(sessions):
                # In a thread: dropping a suspended generator runs its finally blocks.
                await loop.run_in_executor(self.executor, sessions.evict_idle)

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))

    async def serve(self, reader: asyncio.StreamReader) -> None:
        sweeper = asyncio.create_task(self.sweep_sessions())
        try:
            while True:
                message = await read_frame(reader)
                if message is None or message.get("type") == "shutdown":
                    return
                if message.get("type") == "invoke":
                    task = asyncio.create_task(self.invoke(message))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                elif message.get("type") == "reindex":
                    await self.reindex(message)
        finally:
            sweeper.cancel()

    async def invoke(self, message: dict[str, Any]) -> None:
        call_id = message["id"]
        function = self.functions.get(message["function"])
        try:
            if function is None:
                raise LookupError(f"Function '{message['function']}' is not in this app's index.")
            from runtime.worker.child import invocation

            value = await invocation.run(function, message, self.executor,
                                         self.orchestrations)
            reply: dict[str, Any] = {"type": "result", "id": call_id, "ok": True, "value": value}
        except BaseException as exc:  # noqa: BLE001 - every user failure is reported, even SystemExit
            if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                raise
            text = str(exc)
            if OUT_OF_PROC_DATA in text and exc.__cause__ is not None:
                # An orchestrator's failure as the SDK reports it: the host prints the
                # reason once; the frames of user code that raised it are what is left.
                traceback_text = user_frames(exc.__cause__)
            else:
                traceback_text = user_traceback(exc)
            reply = {"type": "result", "id": call_id, "ok": False, "error": {
                "type": type(exc).__name__, "message": text,
                "traceback": traceback_text,
            }}
        self.send(reply)
        await self.writer.drain()

    async def reindex(self, message: dict[str, Any]) -> None:
        """Import the app again (fresh module state) and answer with its functions. Replay
        sessions hold the old code's generators, so they go too."""
        from runtime.worker.child import fresh  # imports the SDK, as loading the app does

        reply: dict[str, Any] = {"type": "result", "id": message["id"]}
        try:
            assert self.script_root is not None
            self.functions = fresh.reload_app(self.script_root)
            if self.orchestrations.sessions is not None:
                self.orchestrations.sessions.clear()
            reply.update(ok=True, value={"functions": [
                f.describe() for f in self.functions.values()]})
        except IndexingError as exc:
            reply.update(ok=False, error={"type": "IndexingError", "message": str(exc),
                                          "traceback": exc.traceback_text or ""})
        self.send(reply)
        await self.writer.drain()


def _thread_count() -> int | None:
    """PYTHON_THREADPOOL_THREAD_COUNT, as the Python worker reads it: an integer of at
    least 1, else the default pool (the host has said so)."""
    try:
        count = int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or "")
    except ValueError:
        return None
    return count if count >= 1 else None


async def amain(script_root: Path) -> int:
    fd = int(os.environ[CHANNEL_FD_ENV])
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)

    def send(message: dict[str, Any]) -> None:
        writer.write(encode_frame(message))

    def hello(**fields: Any) -> None:
        send({"type": "hello", "pid": os.getpid(), **fields})

    if not debugging.start(send):
        await writer.drain()
        return 1
    await writer.drain()
    # Before user code: the SDK gets the fast timestamp parser as it is imported.
    sdk_speedups.install()
    try:
        functions = _load(script_root)
    except IndexingError as exc:
        hello(error=str(exc), traceback=exc.traceback_text or "",
              missing_module=exc.missing_module)
        await writer.drain()
        return 1
    sdk_speedups.install()  # a no-op unless the import hook could not patch the SDK
    hello(functions=[f.describe() for f in functions.values()],
          python=sys.version.split()[0], sdk=_sdk_versions())
    await writer.drain()
    worker = Worker(functions, writer, script_root)
    try:
        await worker.serve(reader)
    except (ConnectionError, OSError):
        pass  # the host went away: nothing left to do
    return 0


def _load(script_root: Path) -> dict[str, LoadedFunction]:
    """Import the worker's SDK-facing modules, then the app. IndexingError names the
    package the app's Python lacks when the worker itself cannot import it."""
    try:
        from runtime.worker.child import invocation  # noqa: F401 - fails early without the SDK
        from runtime.worker.child.loader import load_app
    except ModuleNotFoundError as exc:
        package = SDK_PACKAGES.get(exc.name or "")
        if package is None:
            raise
        raise IndexingError(
            f"The app's Python ({sys.executable}) has no '{package}' package, which every "
            f"Python function app needs: add {package} to requirements.txt and run "
            f"{sys.executable} -m pip install -r requirements.txt",
            missing_module=exc.name) from None
    return load_app(script_root)


def _sdk_versions() -> dict[str, str]:
    """The versions of the app's SDK packages (absent ones left out)."""
    import importlib.metadata

    found: dict[str, str] = {}
    for name in ("azure-functions", "azure-functions-durable"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="funclocal-worker")
    parser.add_argument("--script-root", required=True)
    args = parser.parse_args()
    logs.configure()
    script_root = Path(args.script_root).resolve()
    # Line-buffered output so the host shows user prints as they happen.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    code = asyncio.run(amain(script_root))
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads stuck in user code must not keep the process alive after shutdown.
    os._exit(code)


if __name__ == "__main__":
    main()
