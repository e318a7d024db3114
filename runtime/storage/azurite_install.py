"""Where Azurite is installed, and `funclocal azurite install`.

funclocal looks for Azurite's three service scripts (`azurite-blob`, `azurite-queue`,
`azurite-table`) in this order: the `node_modules` of funclocal's own checkout (where
`make run` put it), a `node_modules` at or above the app's folder, the PATH (a global
`npm install -g azurite`), and the per-user cache that `funclocal azurite install`
fills. The version installed there is the one funclocal is tested with (package.json).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import AzuriteError
from runtime.storage.connection import SERVICES

AZURITE_VERSION = "3.37.0"  # the same as package.json's
CHECKOUT = Path(__file__).resolve().parents[2]  # funclocal's checkout, when run from one
INSTALL_COMMAND = "funclocal azurite install"


@dataclass(frozen=True)
class AzuriteInstall:
    """A folder holding the three service scripts, and how it was found."""

    bin_dir: Path
    found_in: str  # "funclocal's checkout", "the app's folder", "PATH", "the user cache"


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """funclocal's per-user cache: $FUNCLOCAL_CACHE_DIR, else $XDG_CACHE_HOME/funclocal,
    else ~/.cache/funclocal."""
    explicit = environ.get("FUNCLOCAL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "funclocal"


def cached_prefix(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `funclocal azurite install` puts this version."""
    return cache_dir(environ) / f"azurite-{AZURITE_VERSION}"


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / f"azurite-{service}").exists() for service in SERVICES)


def find_azurite(app_root: Path, environ: Mapping[str, str] = os.environ
                 ) -> AzuriteInstall | None:
    """The first place in the search order that has all three services, or None."""
    checkout_bin = CHECKOUT / "node_modules" / ".bin"
    if (CHECKOUT / "package.json").is_file() and _complete(checkout_bin):
        return AzuriteInstall(checkout_bin, "funclocal's checkout")
    app_root = app_root.resolve()
    for directory in (app_root, *app_root.parents):
        candidate = directory / "node_modules" / ".bin"
        if _complete(candidate):
            return AzuriteInstall(candidate, "the app's folder")
    path = environ.get("PATH", os.defpath)
    found = [shutil.which(f"azurite-{service}", path=path) for service in SERVICES]
    if all(found):
        folders = {Path(f).parent for f in found if f}
        if len(folders) == 1:
            return AzuriteInstall(folders.pop(), "PATH")
    cached = cached_prefix(environ) / "node_modules" / ".bin"
    if _complete(cached):
        return AzuriteInstall(cached, "the user cache")
    return None


def not_installed_advice() -> str:
    """How to get Azurite, in words that work from any folder."""
    return (f"run `{INSTALL_COMMAND}` (Azurite {AZURITE_VERSION} into {cached_prefix()}, "
            "needs Node.js and npm), or `npm install -g azurite`, or start an emulator "
            "yourself (`docker run -p 10000-10002:10000-10002 "
            "mcr.microsoft.com/azure-storage/azurite`), or set AzureWebJobsStorage to a "
            "storage account")


def install(environ: Mapping[str, str] = os.environ) -> Path:
    """Install the pinned Azurite with npm into the per-user cache; returns the folder
    holding its service scripts. Raises AzuriteError when npm is missing or fails."""
    npm = shutil.which("npm", path=environ.get("PATH"))
    if npm is None:
        raise AzuriteError("Installing Azurite needs npm, which comes with Node.js "
                           "(https://nodejs.org): install Node.js 20 or later.")
    prefix = cached_prefix(environ)
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
               "--loglevel=error", "--no-save", f"azurite@{AZURITE_VERSION}"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, env=dict(environ), check=False)
    bin_dir = prefix / "node_modules" / ".bin"
    if result.returncode != 0 or not _complete(bin_dir):
        said = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise AzuriteError(f"npm could not install Azurite {AZURITE_VERSION} into {prefix} "
                           f"(exit code {result.returncode}): " + " / ".join(said))
    return bin_dir


__all__ = ["AZURITE_VERSION", "INSTALL_COMMAND", "AzuriteInstall", "cache_dir",
           "cached_prefix", "find_azurite", "install", "not_installed_advice"]
