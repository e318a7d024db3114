"""The event loop the test environments' hosts run in: one per process, in a thread of
its own.

A host that shared the test's event loop would stall whenever a test blocks it (a
synchronous HTTP call to the app, `time.sleep`), and pytest-asyncio gives each test (or
module, or session) a loop of its own, while warm worker processes and Azurite live for
the whole session. So hosts run here, and the test's side only submits coroutines:
`call` from any event loop, `run` from plain code (fixtures, report hooks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def host_loop() -> asyncio.AbstractEventLoop:
    """The hosts' event loop, started on first use (a daemon thread)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=serve, name="funclocal-test-host", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
        return _loop


def in_host_loop() -> bool:
    """Whether the caller runs in the hosts' event loop (its thread)."""
    return _thread is not None and threading.current_thread() is _thread


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` in the hosts' loop and wait for it, from code outside that loop (a
    fixture, a hook). TimeoutError after `timeout` seconds (the coroutine is cancelled)."""
    if in_host_loop():
        coro.close()
        raise RuntimeError("runtime.testing: a blocking call was made from the host's own "
                           "event loop; await the coroutine instead")
    future = asyncio.run_coroutine_threadsafe(coro, host_loop())
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise


async def call(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` in the hosts' loop from any event loop (the test's); cancelling the
    caller cancels it."""
    if in_host_loop():
        return await coro
    future = asyncio.run_coroutine_threadsafe(coro, host_loop())
    wrapped: Awaitable[T] = asyncio.wrap_future(future)
    return await wrapped


def stop() -> None:
    """Stop the loop and its thread (at exit, after every host closed)."""
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop, _thread = None, None
    if loop is None or thread is None:
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    if not thread.is_alive():
        loop.close()


__all__ = ["call", "host_loop", "in_host_loop", "run", "stop"]
