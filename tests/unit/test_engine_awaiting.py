"""The engine reports which external events a running instance still waits for (the
test harness's time skipping stops for them), driven by the real SDK."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from support.memory_loop import InMemoryLoop

from runtime.durable.engine import Episode, EpisodeResult


class Recording(InMemoryLoop):
    """Keeps every episode's result."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.results: list[EpisodeResult] = []

    def replay(self, episode: Episode) -> EpisodeResult:
        result = super().replay(episode)
        self.results.append(result)
        return result


def approval(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(days=3)
    timer = context.create_timer(deadline)
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return "approved"
    return (yield context.call_activity("escalate", 1))


def two_events(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("A")
    second = yield context.wait_for_external_event("B")
    return [first, second]


def test_an_instance_waiting_for_an_event_or_a_timer_names_the_event() -> None:
    loop = Recording(approval, {"escalate": lambda _: "escalated"}).start()
    loop.run_orchestrator()
    assert loop.results[-1].awaiting_events == ("Approval",)


def test_once_the_timer_won_the_event_is_no_longer_awaited() -> None:
    loop = Recording(approval, {"escalate": lambda _: "escalated"}).start().run()
    assert loop.value == "escalated"
    # The episode the timer woke scheduled the activity: the event wait lost its race.
    after_timer = [r for r in loop.results if r.runtime_status == "Running"][-1]
    assert after_timer.awaiting_events == ()


def test_a_raised_event_ends_the_wait_and_the_next_one_is_named() -> None:
    loop = Recording(two_events, {}).start()
    loop.run_orchestrator()
    assert loop.results[-1].awaiting_events == ("A",)
    loop.raise_event("A", 1)
    loop.run_orchestrator()
    assert loop.results[-1].awaiting_events == ("B",)
    loop.raise_event("B", 2)
    loop.run()
    assert loop.value == [1, 2] and loop.results[-1].awaiting_events == ()
