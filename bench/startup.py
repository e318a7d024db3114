"""From `funclocal start` to the first 200 from an HTTP trigger, median of N runs.

Run: .venv/bin/python bench/startup.py [--runs 5]
Two apps: a plain HTTP app, and the sample app (Durable Functions, so the host also opens
the task hub in Azurite; Azurite is started once beforehand, as the goal assumes it is
already running).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import REPO, free_port, machine, median, spawn_host, stop, wait_for_200  # noqa: E402

from runtime.azurite import ManagedAzurite, find_azurite_bin  # noqa: E402


def measure(script_root: Path, path: str, runs: int, env: dict[str, str] | None = None,
            extra: list[str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.monotonic()
        process = spawn_host(script_root, port, env=env, extra=extra)
        try:
            answered = wait_for_200(f"http://127.0.0.1:{port}{path}")
            times.append(answered - started)
        finally:
            stop(process)
    return times


async def with_azurite(runs: int) -> list[float]:
    bin_dir = find_azurite_bin(REPO)
    if bin_dir is None:
        raise SystemExit("Azurite is not installed: run `npm ci`.")
    with tempfile.TemporaryDirectory() as data:
        ports = {"blob": free_port(), "queue": free_port(), "table": free_port()}
        azurite = ManagedAzurite(bin_dir, data_dir=Path(data), in_memory=True, ports=ports)
        await azurite.start()
        try:
            env = {"AzureWebJobsStorage": azurite.endpoints.connection_string}
            return await asyncio.to_thread(
                measure, REPO / "function_app", "/api/hello", runs, env,
                ["--host-json", str(REPO / "host.json"), "--no-azurite"])
        finally:
            await azurite.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"startup: funclocal start -> first 200 ({machine()}), median of {args.runs}")
    plain = measure(REPO / "tests" / "apps" / "http_basic", "/api/greet", args.runs)
    print(f"  plain HTTP app:                    {median(plain) * 1000:7.0f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in plain)})")
    durable = asyncio.run(with_azurite(args.runs))
    print(f"  sample app (durable, Azurite up):  {median(durable) * 1000:7.0f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in durable)})")


if __name__ == "__main__":
    main()
