"""runtime/storage/azurite.storage_answer: what holds the emulator's port, asked patiently
(Azurite pauses for seconds now and then), against real local sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from runtime.storage.azurite import storage_answer


@asynccontextmanager
async def server(silent_for: float, reply: bytes) -> AsyncIterator[int]:
    """A TCP server on a free port that reads a request and stays silent on every
    connection made in its first `silent_for` seconds, then answers `reply`."""
    started = time.monotonic()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if time.monotonic() - started < silent_for:
            await asyncio.sleep(3600)
        writer.write(reply)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


AZURITE = b"HTTP/1.1 200 OK\r\nServer: Azurite-Queue/3.35.0\r\nContent-Length: 0\r\n\r\n"


async def test_an_emulator_that_pauses_is_waited_for() -> None:
    async with server(1.0, AZURITE) as port:
        assert await storage_answer("127.0.0.1", port, timeout=0.4, patience=10) is None


async def test_a_port_that_never_answers_is_a_stranger_after_the_patience() -> None:
    async with server(3600, AZURITE) as port:
        began = time.monotonic()
        answer = await storage_answer("127.0.0.1", port, timeout=0.3, patience=1.0)
    assert answer == "a server that does not answer HTTP"
    assert 0.9 <= time.monotonic() - began < 3


async def test_another_http_server_is_named() -> None:
    other = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n"
    async with server(0, other) as port:
        answer = await storage_answer("127.0.0.1", port, timeout=1, patience=1)
    assert answer == "an HTTP server (nginx) that is not Azure Storage"
