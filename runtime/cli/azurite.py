"""`funclocal azurite install | status | stop`: the Azure Storage emulator funclocal runs for
apps that need storage (found, installed, and the per-app detached one it starts)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from runtime.errors import AzuriteError
from runtime.storage import app_azurite
from runtime.storage.azurite import DATA_DIR_NAME
from runtime.storage.azurite_install import AZURITE_VERSION, cached_prefix, install


def add_parser(commands: Any) -> None:
    azurite = commands.add_parser(
        "azurite", help="the Azure Storage emulator funclocal starts for apps that need "
        "storage", description="The Azurite funclocal installs and starts for apps whose "
        "storage is the local emulator.")
    actions = azurite.add_subparsers(dest="action", required=True, metavar="ACTION")
    install_parser = actions.add_parser(
        "install", help=f"install Azurite {AZURITE_VERSION} with npm into funclocal's "
        f"per-user cache ({cached_prefix()})",
        description=f"Install Azurite {AZURITE_VERSION} with npm into funclocal's per-user "
        f"cache ({cached_prefix()}), for apps outside funclocal's checkout.")
    _common(install_parser)
    install_parser.set_defaults(run=run_install)
    status = actions.add_parser(
        "status", help="whether the app's Azurite (started by funclocal) runs",
        description="The Azurite funclocal started for the app: its processes, ports and "
        "data folder. It keeps running after `funclocal start` exits, so that no crash of "
        "the host loses its data; the next start reuses it. Exit status 0 when it runs, 3 "
        "when it does not.")
    _common(status)
    status.set_defaults(run=run_status)
    stop = actions.add_parser(
        "stop", help="stop the app's Azurite (its data is saved)",
        description="Stop the Azurite funclocal started for the app, with the signal it "
        "saves its data on.")
    _common(stop)
    stop.set_defaults(run=run_stop)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script-root", default=".", type=Path,
                        help="the app folder (default: current folder)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if args.json else text, flush=True)


async def run_install(args: argparse.Namespace) -> int:
    if not args.json:
        print(f"Installing Azurite {AZURITE_VERSION} into {cached_prefix()} (npm)...",
              flush=True)
    try:
        bin_dir = await asyncio.to_thread(install)
    except AzuriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _emit(args, {"version": AZURITE_VERSION, "bin": str(bin_dir)},
          f"Installed Azurite {AZURITE_VERSION} in {bin_dir}. `funclocal start` uses it "
          "for any app whose storage is the local emulator.")
    return 0


async def run_status(args: argparse.Namespace) -> int:
    data_dir = (args.script_root / DATA_DIR_NAME).resolve()
    state = app_azurite.read_state(data_dir)
    alive = state.alive() if state else {}
    if state is None or not alive:
        _emit(args, {"running": False, "data": str(data_dir)},
              f"No Azurite started by funclocal runs for {args.script_root.resolve()}.")
        return 3  # as `systemctl status` of a unit that is not running: scripts can test it
    _emit(args, {"running": True, "pids": alive, "ports": state.ports, "host": state.host,
                 "data": state.data_dir, "started": state.started},
          f"Azurite runs for {args.script_root.resolve()}: "
          + ", ".join(f"{s} on {state.host}:{state.ports[s]} (pid {p})"
                      for s, p in alive.items())
          + f"; data in {state.data_dir}, started {state.started}.")
    return 0


async def run_stop(args: argparse.Namespace) -> int:
    data_dir = (args.script_root / DATA_DIR_NAME).resolve()
    stopped = await asyncio.to_thread(app_azurite.stop, data_dir)
    if stopped is None:
        _emit(args, {"stopped": False},
              f"No Azurite started by funclocal runs for {args.script_root.resolve()}.")
        return 0
    _emit(args, {"stopped": True, "pids": stopped.pids},
          f"Stopped Azurite (pids {', '.join(map(str, stopped.pids.values()))}); its data "
          f"is in {stopped.data_dir}.")
    return 0


__all__ = ["add_parser", "run_install", "run_status", "run_stop"]
