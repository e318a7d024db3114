"""The Azurite funclocal starts for an app: detached, so that it outlives the host.

Azurite keeps its data in memory and saves it every few seconds; an Azurite killed with the
host (a crash, a closed terminal) loses the writes it had not saved yet, which is work the
host had acknowledged. So the managed Azurite runs in a session of its own, with its data
in `<script root>/.azurite/`, and is not stopped when the host exits: the next start
reuses it, and `funclocal azurite stop` stops it with the signal it saves on. Its pids and
ports are in `.azurite/funclocal-azurite.json`; while those processes live, no second
Azurite is ever started over the same data (a restart right after a crash waits for the
one that is there instead).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "funclocal-azurite.json"


@dataclass(frozen=True)
class EmulatorState:
    """What funclocal recorded when it started an app's Azurite."""

    pids: dict[str, int]  # service -> pid (each the leader of its own process group)
    ports: dict[str, int]
    host: str
    data_dir: str
    bin_dir: str
    started: str  # ISO time

    def alive(self) -> dict[str, int]:
        """The services whose process still runs."""
        return {service: pid for service, pid in self.pids.items() if pid_alive(pid)}


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def read_state(data_dir: Path) -> EmulatorState | None:
    """The recorded emulator of `data_dir`, or None (never started, or unreadable)."""
    try:
        raw = json.loads(state_path(data_dir).read_text("utf-8"))
        return EmulatorState(
            pids={str(k): int(v) for k, v in raw["pids"].items()},
            ports={str(k): int(v) for k, v in raw["ports"].items()},
            host=str(raw["host"]), data_dir=str(raw["data_dir"]),
            bin_dir=str(raw["bin_dir"]), started=str(raw["started"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_state(data_dir: Path, state: EmulatorState) -> None:
    path = state_path(data_dir)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2), "utf-8")
    os.replace(temporary, path)


def forget(data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        state_path(data_dir).unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] == "Z"


def stop(data_dir: Path, grace: float = 10.0) -> EmulatorState | None:
    """Stop the emulator recorded in `data_dir`: SIGINT to each service's process group
    (Azurite saves its data and exits on it), SIGKILL for what still runs after `grace`
    seconds. Returns the state it stopped, None when none was recorded or running."""
    state = read_state(data_dir)
    if state is None:
        return None
    running = state.alive()
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while any(pid_alive(pid) for pid in running.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in running.values():
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    forget(data_dir)
    return state if running else None


__all__ = ["STATE_FILE", "EmulatorState", "forget", "pid_alive", "read_state", "state_path",
           "stop", "write_state"]
