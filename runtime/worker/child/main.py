"""Worker process: imports the user's app and runs its functions on request.

Started by the host as `python -m runtime.worker.child.main --script-root DIR`, with the
channel's file descriptor in FUNCLOCAL_CHANNEL_FD. User output goes to this process's
stdout/stderr, which the host reads and prefixes; only frames travel on the channel.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from runtime.errors import IndexingError
from runtime.worker.child import invocation, sdk_speedups
from runtime.worker.child.loader import LoadedFunction, load_app
from runtime.worker.child.orchestrations import OrchestratorRunner
from runtime.worker.protocol import CHANNEL_FD_ENV, encode_frame, read_frame


def user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame of user code on: the worker's own frames, and
    the thread pool's that run sync functions, are noise to the person reading it."""
    tb = exc.__traceback__
    noise = (str(Path(__file__).resolve().parents[2]),
             str(Path(concurrent.futures.__file__).resolve().parent))
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(noise):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


# How often idle replay sessions are looked for (they are also dropped on every use).
SESSION_SWEEP_SECONDS = 15.0


class Worker:
    def __init__(self, functions: dict[str, LoadedFunction],
                 writer: asyncio.StreamWriter) -> None:
        self.functions = functions
        self.writer = writer
        threads = int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT") or 0) or None
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="funclocal-invoke")
        self.tasks: set[asyncio.Task[None]] = set()
        self.orchestrations = OrchestratorRunner.from_environment()

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
        finally:
            sweeper.cancel()

    async def invoke(self, message: dict[str, Any]) -> None:
        call_id = message["id"]
        function = self.functions.get(message["function"])
        try:
            if function is None:
                raise LookupError(f"Function '{message['function']}' is not in this app's index.")
            value = await invocation.run(function, message, self.executor,
                                         self.orchestrations)
            reply: dict[str, Any] = {"type": "result", "id": call_id, "ok": True, "value": value}
        except BaseException as exc:  # noqa: BLE001 - every user failure is reported, even SystemExit
            if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                raise
            reply = {"type": "result", "id": call_id, "ok": False, "error": {
                "type": type(exc).__name__, "message": str(exc),
                "traceback": user_traceback(exc),
            }}
        self.send(reply)
        await self.writer.drain()


async def amain(script_root: Path) -> int:
    fd = int(os.environ[CHANNEL_FD_ENV])
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    # Before user code: the SDK gets the fast timestamp parser as it is imported.
    sdk_speedups.install()
    try:
        functions = load_app(script_root)
    except IndexingError as exc:
        writer.write(encode_frame({"type": "hello", "pid": os.getpid(), "error": str(exc),
                                   "traceback": exc.traceback_text or ""}))
        await writer.drain()
        return 1
    sdk_speedups.install()  # a no-op unless the import hook could not patch the SDK
    writer.write(encode_frame({"type": "hello", "pid": os.getpid(),
                               "functions": [f.describe() for f in functions.values()]}))
    await writer.drain()
    worker = Worker(functions, writer)
    try:
        await worker.serve(reader)
    except (ConnectionError, OSError):
        pass  # the host went away: nothing left to do
    return 0


def _configure_logging() -> None:
    # User code's logging.info(...) must reach the host console, as in `func start`.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("azure", "urllib3", "asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(prog="funclocal-worker")
    parser.add_argument("--script-root", required=True)
    args = parser.parse_args()
    _configure_logging()
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
