"""The command line: one module per command group (`start`, `functions`, `azurite`,
`instances`, `taskhub`, `replay`, `completion`), each adding its parser and running it.
`main` is the `funclocal` entry point."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from runtime import __version__, console
from runtime.cli import azurite, completion, functions, instances, replay, start, taskhub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funclocal",
        description="Run an Azure Functions Python v2 app locally, Durable Functions included.")
    parser.add_argument("--version", action="version", version=f"funclocal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    start.add_parser(commands)
    functions.add_parser(commands)
    azurite.add_parser(commands)
    instances.add_parser(commands)
    taskhub.add_parser(commands)
    replay.add_parser(commands)
    completion.add_parser(commands, build_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:  # no command: say what there is, as func does
        parser.print_help()
        return 0
    console.configure(verbose=getattr(args, "verbose", False))
    try:
        return int(asyncio.run(args.run(args)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return closed_pipe()


def closed_pipe() -> int:
    """The reader of our output went away (`funclocal instances list | head`): stop
    quietly as other command-line tools do, with what a shell reports for SIGPIPE, and
    keep Python from complaining when it flushes stdout at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141


__all__ = ["build_parser", "closed_pipe", "main"]
