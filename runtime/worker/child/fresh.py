"""Importing the app afresh in a running worker: the test harness does this between two
tests, so that each test starts from the app's module-level state as the import leaves
it, without paying for a new process (Python, `azure.functions` and the Durable SDK
stay imported).

Runs only inside worker processes.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from runtime.worker.child.loader import LoadedFunction, load_app

# Folders under the script root whose modules are not the app's own code.
_FOREIGN_PARTS = frozenset({"site-packages", "dist-packages", "node_modules", "__pycache__"})


def _is_app_module(file: str | None, root: Path, prefix: str) -> bool:
    # The app was imported from the resolved script root (the worker resolves it before
    # putting it on sys.path), so its modules' files start with it: a string test, cheap
    # enough for the thousand modules of a worker.
    if not file or not file.startswith(prefix):
        return False
    folders = Path(file[len(prefix):]).parts[:-1]
    if any(part in _FOREIGN_PARTS or part.startswith(".") for part in folders):
        return False
    # A virtual environment in the script root (`venv/`) holds packages, not the app.
    return not (folders and (root / folders[0] / "pyvenv.cfg").is_file())


def forget_app(script_root: Path) -> list[str]:
    """Drop the app's own modules (files under `script_root`, outside virtual
    environments and hidden folders) from `sys.modules`; returns their names."""
    root = script_root.resolve()
    prefix = str(root).rstrip(os.sep) + os.sep
    names = [name for name, module in list(sys.modules.items())
             if _is_app_module(getattr(module, "__file__", None), root, prefix)]
    for name in names:
        del sys.modules[name]
    importlib.invalidate_caches()  # files added since the last import are found
    return names


def reload_app(script_root: Path) -> dict[str, LoadedFunction]:
    """The app imported again from the files as they are now (IndexingError as
    `load_app`)."""
    forget_app(script_root)
    return load_app(script_root)


__all__ = ["forget_app", "reload_app"]
