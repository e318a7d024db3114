"""`bench/durable.py --baseline REV`: funclocal's durable shapes on another revision too.

The revision is checked out in a temporary git worktree (removed afterwards, whatever
happens), whose host runs its own `runtime` package and its own bench app
(bench/funclocal.py, FunclocalSide with that root); its runs are interleaved with the
current checkout's (run_sides). `compare` turns both sides' figures into the comparison:
per shape the median of each, the ratio current ÷ baseline and whether the current
revision is more than THRESHOLD slower.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.shapes import Shape

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 0.05  # a shape more than 5 % slower than on the baseline has regressed


def _git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=str(cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def describe_revision(rev: str) -> dict[str, str]:
    """The revision as given, its full and short commit and its subject."""
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          cwd=str(REPO), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    commit = done.stdout.strip()
    if done.returncode != 0 or not commit or rev.startswith("-"):
        raise SystemExit(f"--baseline: {rev!r} is not a commit of this repository")
    return {"rev": rev, "commit": commit, "short": _git("rev-parse", "--short", commit),
            "subject": _git("log", "-1", "--format=%s", commit)}


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached worktree of `commit` in a temporary directory, removed on the way out
    (on failure and on Ctrl-C too)."""
    parent = Path(tempfile.mkdtemp(prefix="funclocal-baseline-"))
    path = parent / "checkout"
    try:
        _git("worktree", "add", "--detach", str(path), commit)
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=str(REPO),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=str(REPO), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)


def _figures(system: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    """The shape's figure and its host-side figure, when the system ran it."""
    if not system.get("available"):
        return None, None
    shape = system.get("shapes", {}).get(key)
    if shape is None:
        return None, None
    server = shape.get("server_figure")
    return float(shape["figure"]), None if server is None else float(server)


def _cpu_all(system: dict[str, Any], key: str) -> float | None:
    shape = system.get("shapes", {}).get(key) if system.get("available") else None
    if shape is None:
        return None
    return round(float(shape["host_cpu_s"] + shape["worker_cpu_s"] + shape["azurite_cpu_s"]), 3)


def _spread(system: dict[str, Any], key: str) -> float | None:
    """The run-to-run spread of the wall times: (slowest - fastest) ÷ median."""
    shape = system.get("shapes", {}).get(key) if system.get("available") else None
    walls = [] if shape is None else [float(w) for w in shape.get("wall_s", [])]
    if len(walls) < 2:
        return None
    return round((max(walls) - min(walls)) / statistics.median(walls), 4)


def slower_by(shape: Shape, current: float, baseline: float) -> float:
    """How much slower the current revision is, as a fraction (negative: faster). For the
    rate shape that is baseline ÷ current - 1: the same as its wall times' ratio - 1."""
    ratio = current / baseline
    return (1 / ratio if shape.higher_is_better else ratio) - 1


def compare(shapes: list[Shape], current: dict[str, Any], baseline: dict[str, Any],
            threshold: float = THRESHOLD) -> dict[str, Any]:
    """Per shape: the median figure of each side (and the host-side figure), the ratio
    current ÷ baseline, how much slower, and whether that is more than `threshold`."""
    rows: dict[str, Any] = {}
    for shape in shapes:
        mine, mine_server = _figures(current, shape.key)
        theirs, theirs_server = _figures(baseline, shape.key)
        row: dict[str, Any] = {
            "baseline": theirs, "current": mine,
            "baseline_server": theirs_server, "current_server": mine_server,
            "baseline_cpu_s_all": _cpu_all(baseline, shape.key),
            "current_cpu_s_all": _cpu_all(current, shape.key),
            "baseline_spread": _spread(baseline, shape.key),
            "current_spread": _spread(current, shape.key),
            "ratio": None, "slower_by": None, "regressed": None}
        if mine is not None and theirs:
            slower = slower_by(shape, mine, theirs)
            row.update(ratio=round(mine / theirs, 4), slower_by=round(slower, 4),
                       regressed=slower > threshold)
        rows[shape.key] = row
    return {
        "threshold": threshold,
        "shapes": rows,
        "regressed": [key for key, row in rows.items() if row["regressed"]],
        "compared": [key for key, row in rows.items() if row["regressed"] is not None],
    }
