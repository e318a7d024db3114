"""From `funclocal start` to the first 200 from an HTTP trigger, median of N runs.

Run: .venv/bin/python bench/startup.py [--runs 5]
Two apps: a plain HTTP app, and the sample app (Durable Functions, so the host also opens
the task hub in Azurite; Azurite is started once beforehand, as the goal assumes it is
already running).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402


def measure(script_root: Path, path: str, runs: int, env: dict[str, str] | None = None,
            extra: list[str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        port = common.free_port()
        started = time.monotonic()
        process = common.spawn_host(script_root, port, env=env, extra=extra)
        try:
            answered = common.wait_for_200(f"http://127.0.0.1:{port}{path}")
            times.append(answered - started)
        finally:
            common.stop(process)
    return times


def main() -> None:
    runs = common.count_option("runs", 5)
    print(f"startup: funclocal start -> first 200 ({common.machine()}), median of {runs}")
    plain = measure(common.REPO / "tests" / "apps" / "http_basic", "/api/greet", runs)
    print(f"  plain HTTP app:                    {common.timings(plain)}")
    durable = asyncio.run(common.with_sample_app_storage(
        lambda env, extra: measure(common.SAMPLE_APP, "/api/hello", runs, env, extra)))
    print(f"  sample app (durable, Azurite up):  {common.timings(durable)}")


if __name__ == "__main__":
    main()
