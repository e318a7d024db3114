"""The port a debugger attaches to with `funclocal start --debug PORT`.

Each worker's debugpy listens on a port of its own; the host listens on PORT and
forwards every new connection to the newest worker's. So PORT never changes and is
never held by a worker that a reload is replacing: a debugger attached to the old
worker stays with it until it exits, and the next attach reaches the new one. (VS Code
reattaches by itself with `"restart": true` in its attach configuration.)
"""

from __future__ import annotations

import asyncio
import contextlib

from runtime import console

log = console.get("debug")


class DebugProxy:
    """Listens on `address:port` and forwards connections to the newest worker's
    debugpy port (`set_target`). Connections that arrive before any worker listens
    wait for one."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.target: tuple[int, int] | None = None  # (worker pid, its debugpy port)
        self._target_set = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; OSError when the port is taken."""
        self._server = await asyncio.start_server(self._accept, self.address, self.port)

    def set_target(self, pid: int, port: int) -> None:
        self.target = (pid, port)
        self._target_set.set()
        log.info("Debugger: attach to %s:%d (worker process %d).",
                 console.shown_address(self.address), self.port, pid)

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._target_set.wait()
            assert self.target is not None
            pid, port = self.target
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", port)
            except OSError as exc:
                log.warning("Could not reach the debugger of worker process %d: %s", pid, exc)
                return
            log.debug("A debugger attached through port %d to worker process %d.",
                      self.port, pid)
            await asyncio.gather(_pipe(reader, upstream_writer),
                                 _pipe(upstream_reader, writer))
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
            self._connections.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


__all__ = ["DebugProxy"]
