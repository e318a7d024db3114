"""Extended sessions against full replays by the unmodified SDK, episode by episode.

Each orchestration runs in an in-memory task hub (the real engine, the real SDK). Every
episode's context goes both to a session cache, with the fast timestamp parser, and to
a fresh `Orchestrator.create` handler with dateutil; the two state JSON strings (or the
messages of what they raised) must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest
from support.memory_loop import IID, XID, InMemoryLoop, Orchestrator

from runtime.worker.child import sdk_speedups
from runtime.worker.child.orchestrations import MISMATCH, OrchestratorRunner, Outcome
from runtime.worker.child.sessions import SessionCache, is_sdk_orchestrator

Generated = Generator[Any, Any, Any]


@pytest.fixture(autouse=True)
def fast_parser() -> Iterator[None]:
    sdk_speedups.patch_now()
    yield
    sdk_speedups.uninstall()


class Hub(InMemoryLoop):
    """Every episode's orchestrator call made twice: by the session cache and in full."""

    max_steps = 20000

    def __init__(self, fn: Orchestrator, cache: SessionCache | None = None, *,
                 batch_size: int = 32, per_step: int | None = 1, reverse: bool = False,
                 duplicates: bool = False, execution_id: str = XID) -> None:
        super().__init__(fn, ACTIVITIES, batch_size=batch_size, activities_per_step=per_step,
                         duplicate_replies=duplicates, reverse=reverse,
                         execution_id=execution_id)
        self.cache = cache if cache is not None else SessionCache()

    def call_orchestrator(self, context: str) -> tuple[str | None, str | None]:
        with sdk_speedups.original_parsing():
            expected = Outcome.of(lambda: df.Orchestrator.create(self.fn)(context))
        got = Outcome.of(lambda: self.cache.run(self.handle, context))
        assert got.text == expected.text, f"episode {len(self.states) + 1}"
        self.states.append(expected.text)
        raised = str(expected.error) if expected.error is not None else None
        return expected.value, raised


def explode(value: Any) -> Any:
    raise RuntimeError(f"exploded on {value}")


ACTIVITIES: dict[str, Callable[[Any], Any]] = {
    "Double": lambda n: n * 2,
    "Hello": lambda name: f"Hello {name}!",
    "Explode": explode,
}


# --- orchestrators ----------------------------------------------------------------------


def chain(context: df.DurableOrchestrationContext) -> Generated:
    total = 0
    for n in range(context.get_input()):
        total += yield context.call_activity("Double", n)
    return total


def fan_out(context: df.DurableOrchestrationContext) -> Generated:
    tasks = [context.call_activity("Double", n) for n in range(context.get_input())]
    values = yield context.task_all(tasks)
    return {"count": len(values), "sum": sum(values)}


def first_of_two(context: df.DurableOrchestrationContext) -> Generated:
    fast = context.call_activity("Hello", "fast")
    slow = context.call_activity("Hello", "slow")
    winner = yield context.task_any([fast, slow])
    loser = slow if winner is fast else fast
    later = yield loser  # completed in an earlier episode by now, or still running
    again = yield context.call_activity("Hello", winner.result)
    return [winner.result, later, again]


def recovers(context: df.DurableOrchestrationContext) -> Generated:
    try:
        yield context.call_activity("Explode", "fuel")
    except Exception as exc:
        context.set_custom_status({"recovered": str(exc).splitlines()[0]})
        return (yield context.call_activity("Hello", "after"))
    return "unreachable"


def gives_up(context: df.DurableOrchestrationContext) -> Generated:
    yield context.call_activity("Hello", "x")
    yield context.call_activity("Hello", "y")
    raise ValueError("the orchestrator gave up")


def does_not_catch(context: df.DurableOrchestrationContext) -> Generated:
    yield context.call_activity("Hello", "first")
    yield context.call_activity("Explode", "second")
    return "unreachable"


def approvals(context: df.DurableOrchestrationContext) -> Generated:
    context.set_custom_status("waiting")
    first = yield context.wait_for_external_event("Approval")
    context.set_custom_status({"first": first})
    greeting = yield context.call_activity("Hello", first)
    second = yield context.wait_for_external_event("Approval")
    either = yield context.task_any([context.wait_for_external_event("A"),
                                     context.wait_for_external_event("B")])
    return [greeting, second, either.result]


def timers(context: df.DurableOrchestrationContext) -> Generated:
    stamps = [context.current_utc_datetime.isoformat()]
    for seconds in (5, 30, 90):
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
        stamps.append(context.current_utc_datetime.isoformat())
        context.set_custom_status(len(stamps))
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    work = context.call_activity("Hello", "race")
    winner = yield context.task_any([deadline, work])
    if winner is work:
        deadline.cancel()
    return {"stamps": stamps, "won": winner.result, "uuid": str(context.new_uuid()),
            "guid": str(context.new_guid())}


def custom_status_steps(context: df.DurableOrchestrationContext) -> Generated:
    for step in range(5):
        context.set_custom_status({"step": step, "at": context.current_utc_datetime.isoformat()})
        yield context.call_activity("Double", step)
    context.set_custom_status(None)
    return "done"


def logs_when_live(context: df.DurableOrchestrationContext) -> Generated:
    # Reading is_replaying late, after the first await: the session must notice.
    yield context.call_activity("Hello", "one")
    if not context.is_replaying:
        context.set_custom_status("live at two")
    yield context.call_activity("Hello", "two")
    yield context.call_activity("Hello", "three")
    return "ok"


def counts_history(context: df.DurableOrchestrationContext) -> Generated:
    yield context.call_activity("Hello", "one")
    context.set_custom_status(len(context.histories))
    yield context.call_activity("Hello", "two")
    return len(context.histories)


def not_a_generator(context: df.DurableOrchestrationContext) -> Any:
    return {"input": context.get_input()}


# --- the comparisons --------------------------------------------------------------------


def test_a_chain_of_100_continues_every_episode_after_the_first() -> None:
    hub = Hub(chain).start(100).run()
    assert (hub.status, hub.value) == ("Completed", sum(2 * n for n in range(100)))
    assert len(hub.states) == 101
    assert (hub.cache.stats.replayed, hub.cache.stats.continued) == (1, 100)
    assert len(hub.cache) == 0  # the finished instance left no session behind


@pytest.mark.parametrize(("per_step", "batch", "reverse", "duplicates"), [
    (4, 32, False, False), (None, 32, False, False), (None, 7, True, True), (13, 5, True, False),
])
def test_a_fan_out_of_200(per_step: int | None, batch: int, reverse: bool,
                          duplicates: bool) -> None:
    hub = Hub(fan_out, per_step=per_step, batch_size=batch, reverse=reverse,
              duplicates=duplicates).start(200).run()
    assert hub.status == "Completed"
    assert hub.value == {"count": 200, "sum": sum(2 * n for n in range(200))}
    assert hub.cache.stats.replayed == 1
    assert hub.cache.stats.continued == len(hub.states) - 1


@pytest.mark.parametrize("per_step", [1, None])
def test_task_any_and_a_loser_yielded_later(per_step: int | None) -> None:
    hub = Hub(first_of_two, per_step=per_step).start().run()
    assert hub.status == "Completed"
    assert hub.value == ["Hello fast!", "Hello slow!", "Hello Hello fast!!"]


@pytest.mark.parametrize(("fn", "status"), [
    (recovers, "Completed"), (gives_up, "Failed"), (does_not_catch, "Failed")])
def test_failures(fn: Orchestrator, status: str) -> None:
    hub = Hub(fn).start().run()
    assert hub.status == status
    assert len(hub.states) >= 2


def test_external_events_before_and_after_the_wait() -> None:
    hub = Hub(approvals).start()
    hub.raise_event("Approval", "early")  # arrives with the start: completes a wait later
    hub.run()
    assert hub.status == "Running"
    assert json.loads(hub.custom_status or "null") == {"first": "early"}
    hub.raise_event("Approval", "second")
    hub.run()
    hub.raise_event("B", "bee")
    hub.raise_event("A", "ay")
    hub.run()
    assert (hub.status, hub.value) == ("Completed", ["Hello early!", "second", "bee"])
    assert hub.cache.stats.continued >= 3


def test_timers_the_clock_and_a_cancelled_deadline() -> None:
    hub = Hub(timers).start().run()
    assert hub.status == "Completed"
    value = hub.value
    assert len(value["stamps"]) == 4 and value["won"] == "Hello race!"
    assert hub.cache.stats.continued == len(hub.states) - 1


def test_custom_status_at_every_step() -> None:
    hub = Hub(custom_status_steps).start().run()
    assert (hub.status, hub.value, hub.custom_status) == ("Completed", "done", None)


@pytest.mark.parametrize("fn", [logs_when_live, counts_history])
def test_a_function_reading_replay_flags_falls_back_to_full_replays(fn: Orchestrator) -> None:
    hub = Hub(fn).start().run()
    assert hub.status == "Completed"
    stats = hub.cache.stats
    # The second episode continued a session, saw the read, and was redone in full;
    # from then on every episode of the function is a plain full replay.
    assert (stats.replayed, stats.continued, stats.redone) == (1, 1, 1)
    assert stats.plain == len(hub.states) - 2


def test_a_plain_function_is_called_as_is() -> None:
    hub = Hub(not_a_generator).start({"a": 1}).run()
    assert (hub.status, hub.value) == ("Completed", {"input": {"a": 1}})
    assert len(hub.cache) == 0


# --- when a session must not be used ----------------------------------------------------


def contexts_of_a_chain(count: int) -> list[str]:
    hub = Hub(chain).start(count).run()
    return hub.contexts


def expected_state(fn: Orchestrator, context: str) -> str:
    with sdk_speedups.original_parsing():
        return Outcome.of(lambda: df.Orchestrator.create(fn)(context)).text


def test_the_same_episode_twice_is_replayed_in_full() -> None:
    contexts = contexts_of_a_chain(3)
    cache, handle = SessionCache(), df.Orchestrator.create(chain)
    for context in (contexts[0], contexts[1], contexts[1], contexts[2]):
        assert Outcome.of(lambda c=context: cache.run(handle, c)).text == \
            expected_state(chain, context)
    assert (cache.stats.replayed, cache.stats.continued) == (2, 2)


def test_a_history_that_is_not_an_extension_is_replayed_in_full() -> None:
    contexts = contexts_of_a_chain(4)
    cache, handle = SessionCache(), df.Orchestrator.create(chain)
    cache.run(handle, contexts[0])
    cache.run(handle, contexts[1])
    # a lost checkpoint: the next episode's history does not hold the one just processed
    altered = json.loads(contexts[2])
    altered["history"][5]["Timestamp"] = "2024-05-01T12:00:03.0000000Z"
    altered["history"][6]["Result"] = "1000"
    for body in (json.dumps(altered), contexts[2], contexts[3]):
        assert Outcome.of(lambda b=body: cache.run(handle, b)).text == \
            expected_state(chain, body)
    assert (cache.stats.replayed, cache.stats.continued) == (3, 2)


def test_another_execution_or_function_is_replayed_in_full() -> None:
    contexts = contexts_of_a_chain(3)
    cache, handle = SessionCache(), df.Orchestrator.create(chain)
    cache.run(handle, contexts[0])
    other = Hub(chain, execution_id="exec-2").start(3).run().contexts
    assert cache.run(handle, other[1]) == expected_state(chain, other[1])
    assert cache.stats.continued == 0
    cache.run(handle, contexts[0])
    assert cache.run(df.Orchestrator.create(chain), contexts[1]) == \
        expected_state(chain, contexts[1])
    assert cache.stats.continued == 0
    assert cache.stats.replayed == 4


def test_sessions_are_evicted_when_idle_or_over_the_bounds() -> None:
    now = [0.0]
    cache = SessionCache(max_sessions=2, max_events=1000, idle_seconds=60.0,
                         clock=lambda: now[0])
    handle = df.Orchestrator.create(chain)
    first = contexts_of_a_chain(3)[0]
    for n in range(3):
        cache.run(handle, first.replace(f'"instanceId":"{IID}"', f'"instanceId":"i{n}"'))
    assert len(cache) == 2  # the oldest went over max_sessions
    now[0] = 59.0
    assert cache.evict_idle() == 0
    now[0] = 61.0
    assert cache.evict_idle() == 2 and len(cache) == 0
    small = SessionCache(max_events=1)
    small.run(handle, first)
    assert len(small) == 0  # 2 events: over the bound, not kept


def test_is_sdk_orchestrator() -> None:
    assert is_sdk_orchestrator(df.Orchestrator.create(chain))
    assert not is_sdk_orchestrator(chain)
    assert not is_sdk_orchestrator(lambda context: "{}")


# --- verify mode ------------------------------------------------------------------------


class Lying(SessionCache):
    def run(self, handle: Callable[[Any], str], body: str) -> str:
        return super().run(handle, body).replace("Double", "Triple")


def test_verify_mode_reports_a_mismatch_and_returns_the_unmodified_result() -> None:
    context = contexts_of_a_chain(2)[0]
    lines: list[str] = []
    runner = OrchestratorRunner(Lying(), verify=True, report=lines.append)
    handle = df.Orchestrator.create(chain)
    state = runner.run(handle, {"context": _Context(context)}, "context")
    assert state == expected_state(chain, context)
    assert len(lines) == 1 and lines[0].startswith(MISMATCH)
    assert "'inst-1'" in lines[0] and "Triple" in lines[0]
    runner = OrchestratorRunner(SessionCache(), verify=True, report=lines.append)
    assert runner.run(handle, {"context": _Context(context)}, "context") == state
    assert len(lines) == 1


def test_verify_mode_compares_what_was_raised() -> None:
    hub = Hub(gives_up).start().run()
    lines: list[str] = []
    runner = OrchestratorRunner(SessionCache(), verify=True, report=lines.append)
    handle = df.Orchestrator.create(gives_up)
    for context in hub.contexts[:-1]:
        runner.run(handle, {"context": _Context(context)}, "context")
    with pytest.raises(Exception, match="the orchestrator gave up"):
        runner.run(handle, {"context": _Context(hub.contexts[-1])}, "context")
    assert lines == []


class _Context:
    """What the OrchestrationTrigger converter hands the function: the JSON as `body`."""

    def __init__(self, body: str) -> None:
        self.body = body
