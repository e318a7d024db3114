"""`funclocal start`: serve the app, like `func start`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from runtime import console
from runtime.cli.common import add_app_arguments, host_options
from runtime.errors import HostError, IndexingError
from runtime.host import Host


def add_parser(commands: Any) -> None:
    start = commands.add_parser("start", help="serve the app (like `func start`)")
    add_app_arguments(start)
    start.add_argument("--port", "-p", type=int, help="HTTP port (default 7071 or "
                       "Host.LocalHttpPort)")
    start.add_argument("--address", help="address to bind (default 127.0.0.1)")
    start.add_argument("--cors", help="comma-separated allowed origins, or *")
    start.add_argument("--enable-auth", action="store_true",
                       help="enforce function and admin auth levels with keys")
    start.add_argument("--no-reload", action="store_true",
                       help="do not watch the app's files and reload on save")
    start.add_argument("--reload-grace", type=float, default=10.0, metavar="SECONDS",
                       help="how long invocations running on replaced workers may take to "
                       "finish after a reload (default 10)")
    start.add_argument("--no-azurite", action="store_true",
                       help="never start Azurite; use the storage the connection string names")
    start.add_argument("--workers", type=int,
                       help="worker processes (default FUNCTIONS_WORKER_PROCESS_COUNT or 1)")
    start.add_argument("--debug", type=int, metavar="PORT",
                       help="run the workers under debugpy; attach your debugger to PORT "
                       "(it stays the same across reloads)")
    start.add_argument("--debug-wait", action="store_true",
                       help="with --debug: each worker waits for the debugger to attach "
                       "before it imports the app")
    start.add_argument("--verbose", action="store_true",
                       help="debug logging: user code's logging.debug, storage requests "
                       "with timings, partition lease changes, reload timings")
    start.set_defaults(run=run)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    """The first signal stops the host cleanly (bounded: about 25 s at most when storage
    stalls); a second one while it stops ends the process at once. Nothing acknowledged
    is lost either way: the workers end with the host (parent-death signal), the app's
    Azurite goes on, and held messages come back when their locks run out."""
    if not stop.is_set():
        stop.set()
        return
    console.get().warning("Stopping at once (%s again): work in flight is picked up when "
                          "its locks run out (within 30 s).", sig.name)
    logging.shutdown()  # flush the console before leaving without clean-up
    os._exit(128 + int(sig))


async def run(args: argparse.Namespace) -> int:
    log = console.get()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP (a closed terminal) stops the host cleanly too, as Ctrl-C and SIGTERM do.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    try:
        host = Host(host_options(args))
        # Ctrl-C during start-up (a worker waiting for a debugger with --debug-wait, a
        # slow Azurite) stops at once: the start is cancelled and leaves nothing running.
        starting = asyncio.create_task(host.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("Stopping the host...")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            log.info("Host stopped.")
            return 0
        stopping.cancel()
        starting.result()
    except IndexingError as exc:
        log.error("%s", exc)
        if exc.traceback_text:
            print(exc.traceback_text.rstrip(), file=sys.stderr, flush=True)
        return 1
    except HostError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("Could not start the host: %s", exc)
        return 1
    await stop.wait()
    log.info("Stopping the host...")
    await host.stop()
    log.info("Host stopped.")
    return 0


__all__ = ["add_parser", "run"]
