"""`funclocal completion SHELL`: a completion script for bash, zsh or tcsh, generated
from the command line's own parsers by shtab (so it never falls behind a new option)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(commands: Any, root: Callable[[], argparse.ArgumentParser]) -> None:
    """`root` builds the whole `funclocal` parser the script completes."""
    completion = commands.add_parser(
        "completion", help="print a shell completion script",
        description="Print a completion script for SHELL. Bash: "
                    "`funclocal completion bash > ~/.local/share/bash-completion/completions/"
                    "funclocal`; zsh: `funclocal completion zsh > \"${fpath[1]}/_funclocal\"`.")
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL",
                            help="bash, zsh or tcsh")
    completion.set_defaults(run=_runner(root))


def _runner(root: Callable[[], argparse.ArgumentParser]) -> Callable[[argparse.Namespace],
                                                                     Any]:
    async def run(args: argparse.Namespace) -> int:
        import shtab

        print(shtab.complete(root(), shell=args.shell))
        return 0
    return run


__all__ = ["SHELLS", "add_parser"]
