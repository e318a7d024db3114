"""Command line: `funclocal start` and `funclocal functions`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime import __version__, logs
from runtime.errors import HostError, IndexingError
from runtime.host import Host, HostOptions, index_only


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funclocal",
        description="Run an Azure Functions Python v2 app locally, Durable Functions included.")
    parser.add_argument("--version", action="version", version=f"funclocal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="serve the app (like `func start`)")
    _add_app_arguments(start)
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
    start.add_argument("--verbose", action="store_true", help="debug logging")

    functions = commands.add_parser("functions", help="print the app's function index")
    _add_app_arguments(functions)
    functions.add_argument("--json", action="store_true", help="print the index as JSON")
    return parser


def _add_app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script-root", default=".", type=Path,
                        help="folder holding function_app.py (default: current folder)")
    parser.add_argument("--host-json", type=Path, help="path of host.json "
                        "(default: the script root's, else the current folder's)")
    parser.add_argument("--settings", type=Path, help="path of local.settings.json "
                        "(default: the script root's, else the current folder's)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(verbose=getattr(args, "verbose", False))
    try:
        if args.command == "functions":
            return asyncio.run(_functions(args))
        return asyncio.run(_start(args))
    except KeyboardInterrupt:
        return 130


def _options(args: argparse.Namespace) -> HostOptions:
    cors = None
    if getattr(args, "cors", None) is not None:
        cors = tuple(o.strip() for o in args.cors.split(",") if o.strip())
    return HostOptions(
        script_root=args.script_root, host_json=args.host_json, settings=args.settings,
        port=getattr(args, "port", None), address=getattr(args, "address", None), cors=cors,
        enable_auth=getattr(args, "enable_auth", False),
        reload=not getattr(args, "no_reload", True),
        reload_grace=max(0.0, getattr(args, "reload_grace", 10.0)),
        manage_azurite=not getattr(args, "no_azurite", False),
        verbose=getattr(args, "verbose", False), workers=getattr(args, "workers", None))


async def _start(args: argparse.Namespace) -> int:
    log = logs.get()
    host = Host(_options(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await host.start()
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


async def _functions(args: argparse.Namespace) -> int:
    try:
        index = await index_only(_options(args))
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        traceback_text = getattr(exc, "traceback_text", None)
        if traceback_text:
            print(traceback_text.rstrip(), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(index.describe(), indent=2))
        return 0
    for spec in index.functions:
        if spec.is_http:
            methods = ",".join(sorted(spec.methods)) if spec.methods else "GET,POST"
            print(f"{spec.name}: [{methods}] {spec.route} (authLevel {spec.auth_level})")
        else:
            print(f"{spec.name}: {spec.trigger_type}")
    for name, reason in index.skipped:
        print(f"{name}: skipped: {reason}")
    return 0
