"""How `funclocal start` was asked to run (pure values from the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 7071


@dataclass(frozen=True)
class HostOptions:
    script_root: Path
    host_json: Path | None = None
    settings: Path | None = None
    port: int | None = None
    address: str | None = None
    cors: tuple[str, ...] | None = None
    enable_auth: bool = False
    reload: bool = True
    reload_grace: float = 10.0  # seconds a replaced worker's invocations get to finish
    manage_azurite: bool = True
    verbose: bool = False
    workers: int | None = None
    python: str | None = None  # --python: the app's interpreter (or its venv folder)
    debug_port: int | None = None  # --debug PORT: workers run under debugpy
    debug_wait: bool = False  # --debug-wait: workers wait for the debugger to attach


def find_config_file(explicit: Path | None, script_root: Path, name: str) -> Path | None:
    """An explicit path wins; otherwise the script root's file, then the working
    directory's; None when there is none."""
    if explicit is not None:
        return explicit
    for candidate in (script_root / name, Path.cwd() / name):
        if candidate.is_file():
            return candidate
    return None


__all__ = ["DEFAULT_PORT", "HostOptions", "find_config_file"]
