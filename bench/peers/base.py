"""What every peer module shares: reading the shapes, timing runs, printing the result."""

from __future__ import annotations

import json
import logging
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.procstat import cpu_seconds
from bench.shapes import Shape


def read_shapes(argv: list[str]) -> list[Shape]:
    spec = json.loads(argv[1]) if len(argv) > 1 else {"shapes": []}
    return [Shape.from_json(item) for item in spec["shapes"]]


def emit(result: dict[str, Any]) -> None:
    """The result is the last line of stdout: the suite reads only that line."""
    print(json.dumps(result), flush=True)


def unavailable(name: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "available": False, "reason": reason, **extra}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def planned_failures_unlogged(logger: logging.Logger) -> None:
    """The retry shape's activities fail on purpose, hundreds of times a run: a peer's
    warning for each (with its traceback) is left out of the output. funclocal writes its
    own to the host's log file."""

    def unplanned(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or "as planned" not in str(error)

    logger.addFilter(unplanned)


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(shape: Shape, run_once: Callable[[], Awaitable[None]],
                  server_pid: int | None = None) -> dict[str, Any]:
    """One warm-up run, then `shape.runs` timed runs; CPU is this process's (every
    thread) plus the server process's, when there is one."""
    await run_once()
    walls: list[float] = []
    cpus: list[float] = []
    server_cpus: list[float] = []
    for _ in range(shape.runs):
        cpu_before = time.process_time()
        server_before = cpu_seconds(server_pid) if server_pid else None
        started = time.perf_counter()
        await run_once()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_before)
        server_after = cpu_seconds(server_pid) if server_pid else None
        if server_before is not None and server_after is not None:
            server_cpus.append(server_after - server_before)
    result: dict[str, Any] = {
        "wall_s": [round(w, 4) for w in walls],
        "figure": shape.figure(walls),
        "client_cpu_s": round(statistics.median(cpus), 3),
    }
    totals = cpus
    if server_cpus and len(server_cpus) == len(cpus):
        result["server_cpu_s"] = round(statistics.median(server_cpus), 3)
        totals = [c + s for c, s in zip(cpus, server_cpus, strict=True)]
    result["cpu_s"] = round(statistics.median(totals), 3)
    return result
