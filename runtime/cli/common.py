"""Arguments shared by the commands that work on an app folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.options import HostOptions


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script-root", default=".", type=Path,
                        help="folder holding function_app.py (default: current folder)")
    parser.add_argument("--host-json", type=Path, help="path of host.json "
                        "(default: the script root's, else the current folder's)")
    parser.add_argument("--settings", type=Path, help="path of local.settings.json "
                        "(default: the script root's, else the current folder's)")
    parser.add_argument("--python", metavar="PATH",
                        help="the app's Python interpreter or virtual environment folder "
                        "(default: the active virtual environment, else .venv or venv in "
                        "the script root, else funclocal's own)")


def host_options(args: argparse.Namespace) -> HostOptions:
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
        verbose=getattr(args, "verbose", False), workers=getattr(args, "workers", None),
        python=getattr(args, "python", None), debug_port=getattr(args, "debug", None),
        debug_wait=getattr(args, "debug_wait", False))


__all__ = ["add_app_arguments", "host_options"]
