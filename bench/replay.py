"""The worker's replay cost per episode: the unmodified SDK, the fast timestamp parser,
and the fast parser with extended sessions, in one process and one run.

Run: .venv/bin/python bench/replay.py [--chain 100] [--fan-out 1000] [--tail 20]

The episodes come from the host's own engine (plan, context, apply) driven in memory
with the real SDK, one activity reply per episode: the worst case for replay. A chain
of N has N + 1 episodes and every one is timed in every mode. A fan-out of N has N + 1
episodes too, but a full replay of all of them would take minutes, so the unmodified
SDK and the fast parser are timed on the last `--tail` episodes (the most expensive),
and sessions, which must see every episode, on all of them with the same tail reported.
Each mode's states are compared with the unmodified SDK's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Generator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `runtime` importable
    sys.path.insert(0, str(REPO))

import azure.durable_functions as df  # noqa: E402

from runtime.durable import engine, history  # noqa: E402
from runtime.worker.child import sdk_speedups  # noqa: E402
from runtime.worker.child.orchestrations import Outcome  # noqa: E402
from runtime.worker.child.sessions import SessionCache  # noqa: E402

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
IID = "bench-instance"

Generated = Generator[Any, Any, Any]


def chain(context: df.DurableOrchestrationContext) -> Generated:
    total = 0
    for n in range(context.get_input()):
        total += yield context.call_activity("Double", n)
    return total


def fan_out(context: df.DurableOrchestrationContext) -> Generated:
    tasks = [context.call_activity("Double", n) for n in range(context.get_input())]
    return sum((yield context.task_all(tasks)))


def drive(fn: Callable[[Any], Generated], size: int, keep_from: int,
          cache: SessionCache) -> tuple[list[str], list[float], list[str]]:
    """Run one orchestration to the end through `cache`, one reply per episode.

    Returns the contexts of the episodes from `keep_from` on (older ones are dropped to
    bound memory), the session's seconds for every episode, and its states."""
    handle = df.Orchestrator.create(fn)
    now = T0
    past: list[dict[str, Any]] = []
    control = [history.execution_started(IID, "x1", "Orch", json.dumps(json.dumps(size)), now)]
    work: list[dict[str, Any]] = []
    kept: list[str] = []
    seconds: list[float] = []
    states: list[str] = []
    while control or work:
        now += timedelta(seconds=1)
        if not control:
            scheduled = work.pop(0)
            value = json.loads(scheduled["Input"]) * 2
            control.append(history.task_completed(scheduled["EventId"], json.dumps(value), now))
            continue
        episode = engine.plan_episode(IID, past, [control.pop(0)], now)
        context = engine.build_context(episode)
        if len(seconds) >= keep_from:
            kept.append(context)
        started = time.perf_counter()
        outcome = Outcome.of(lambda c=context: cache.run(handle, c))
        seconds.append(time.perf_counter() - started)
        states.append(outcome.text)
        state = engine.parse_sdk_result(outcome.value, None)
        result = engine.apply_state(episode, state, ["Double"], now)
        past = list(episode.past_events) + result.new_events
        work.extend(m.event for m in result.outgoing if m.kind == "activity")
        if result.runtime_status != "Running":
            break
    return kept, seconds, states


def full_replays(fn: Callable[[Any], Generated], contexts: list[str],
                 original: bool) -> tuple[list[float], list[str]]:
    seconds: list[float] = []
    states: list[str] = []
    for context in contexts:
        handle = df.Orchestrator.create(fn)
        started = time.perf_counter()
        if original:
            with sdk_speedups.original_parsing():
                outcome = Outcome.of(lambda c=context, h=handle: h(c))
        else:
            outcome = Outcome.of(lambda c=context, h=handle: h(c))
        seconds.append(time.perf_counter() - started)
        states.append(outcome.text)
    return seconds, states


def report(title: str, events: int, rows: list[tuple[str, list[float]]]) -> None:
    base = sum(rows[0][1])
    print(f"\n{title} (last episode: {events} history events)")
    print(f"  {'mode':<28}{'total s':>10}{'mean ms':>10}{'last ms':>10}{'vs SDK':>9}")
    for name, seconds in rows:
        total = sum(seconds)
        print(f"  {name:<28}{total:>10.3f}{total / len(seconds) * 1000:>10.2f}"
              f"{seconds[-1] * 1000:>10.2f}{base / total:>8.1f}x")


def bench(title: str, fn: Callable[[Any], Generated], size: int, tail: int | None) -> None:
    cache = SessionCache()
    episodes = size + 1
    keep_from = 0 if tail is None else max(0, episodes - tail)
    contexts, session_seconds, session_states = drive(fn, size, keep_from, cache)
    timed = len(contexts)
    slow, slow_states = full_replays(fn, contexts, original=True)
    fast, fast_states = full_replays(fn, contexts, original=False)
    if slow_states != fast_states or slow_states != session_states[-timed:]:
        raise SystemExit(f"{title}: the modes disagree on the state JSON")
    events = len(json.loads(contexts[-1])["history"])
    label = f"{title}: {len(session_seconds)} episodes" + (
        f", the last {timed} timed" if timed < len(session_seconds) else "")
    report(label, events, [("unmodified SDK (dateutil)", slow), ("fast timestamp parse", fast),
                           ("fast parse + sessions", session_seconds[-timed:])])
    if timed < len(session_seconds):
        print(f"  (sessions over all {len(session_seconds)} episodes: "
              f"{sum(session_seconds):.3f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--tail", type=int, default=20,
                        help="fan-out episodes timed in the full-replay modes")
    args = parser.parse_args()
    sdk_speedups.patch_now()
    print(f"Python {sys.version.split()[0]}; per-episode orchestrator cost in the worker "
          f"(JSON in, state JSON out)")
    bench(f"chain of {args.chain}", chain, args.chain, None)
    bench(f"fan-out of {args.fan_out}", fan_out, args.fan_out, args.tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
