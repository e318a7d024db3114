"""`funclocal azurite install`: Azurite for apps outside funclocal's checkout."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from runtime.errors import AzuriteError
from runtime.storage.azurite_install import AZURITE_VERSION, cached_prefix, install


def add_parser(commands: Any) -> None:
    azurite = commands.add_parser(
        "azurite", help="the Azure Storage emulator funclocal starts for apps that need "
        "storage", description="Install the Azurite version funclocal is tested with.")
    actions = azurite.add_subparsers(dest="action", required=True)
    install_parser = actions.add_parser(
        "install", help=f"install Azurite {AZURITE_VERSION} with npm into funclocal's "
        f"per-user cache ({cached_prefix()})",
        description=f"Install Azurite {AZURITE_VERSION} with npm into funclocal's per-user "
        f"cache ({cached_prefix()}), for apps outside funclocal's checkout.")
    install_parser.set_defaults(run=run_install)


async def run_install(args: argparse.Namespace) -> int:
    print(f"Installing Azurite {AZURITE_VERSION} into {cached_prefix()} (npm)...", flush=True)
    try:
        bin_dir = await asyncio.to_thread(install)
    except AzuriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Installed Azurite {AZURITE_VERSION} in {bin_dir}. `funclocal start` uses it "
          "for any app whose storage is the local emulator.", flush=True)
    return 0


__all__ = ["add_parser", "run_install"]
