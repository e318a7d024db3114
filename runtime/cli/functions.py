"""`funclocal functions`: print the app's function index without serving it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtime.cli.common import add_app_arguments, host_options
from runtime.errors import HostError
from runtime.host import index_only


def add_parser(commands: Any) -> None:
    functions = commands.add_parser("functions", help="print the app's function index")
    add_app_arguments(functions)
    functions.add_argument("--json", action="store_true", help="print the index as JSON")
    functions.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    try:
        index = await index_only(host_options(args))
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
            methods = ",".join(sorted(spec.methods)) if spec.methods is not None else "GET,POST"
            print(f"{spec.name}: [{methods}] {spec.route} (authLevel {spec.auth_level})")
        else:
            print(f"{spec.name}: {spec.trigger_type}")
    for spec in index.disabled:
        print(f"{spec.name}: disabled")
    for name, reason in index.skipped:
        print(f"{name}: skipped: {reason}")
    return 0


__all__ = ["add_parser", "run"]
