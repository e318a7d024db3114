"""The engine's handling of retries, sub-orchestrations, continue-as-new, suspension,
rewind, versioning and nondeterminism: pure functions, and whole orchestrations driven
through the real SDK by the in-memory loop (support/memory_loop.py)."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest
from support.memory_loop import IID, T0, XID, InMemoryLoop

from runtime.durable import engine, history
from runtime.durable.engine import KnownFunctions
from runtime.durable.engine.rewind import rewind_history
from runtime.durable.engine.suspension import is_suspended, visible_events
from runtime.durable.engine.versioning import MISMATCH, allows, compare_versions
from runtime.durable.history import EventType, OrchestrationStatus

NOW = T0 + timedelta(minutes=5)
Gen = Generator[Any, Any, Any]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [EventType(e["EventType"]).name for e in events]


def ids(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(kind, number) of scheduling and completion events, in history order."""
    found = []
    for event in events:
        kind = EventType(event["EventType"])
        if kind in (EventType.TaskScheduled, EventType.TimerCreated,
                    EventType.SubOrchestrationInstanceCreated):
            found.append((kind.name, event["EventId"]))
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed):
            found.append((kind.name, event["TaskScheduledId"]))
        elif kind == EventType.TimerFired:
            found.append((kind.name, event["TimerId"]))
    return found


def episode_time_of(events: list[dict[str, Any]], kind: EventType, nth: int = 0) -> datetime:
    """The orchestration's current time when the nth event of `kind` was processed: the
    OrchestratorStarted of its episode (DTFx's CurrentUtcDateTime)."""
    seen = -1
    current = ""
    for event in events:
        if event["EventType"] == EventType.OrchestratorStarted:
            current = event["Timestamp"]
        elif event["EventType"] == kind:
            seen += 1
            if seen == nth:
                return history.parse_timestamp(current)
    raise AssertionError(f"no {kind.name} number {nth}")


def flaky(failures: int) -> Any:
    attempts: dict[str, int] = {}

    def activity(key: str) -> str:
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] <= failures:
            raise RuntimeError(f"{key} attempt {attempts[key]}")
        return f"{key} ok"
    return activity


# --- retries --------------------------------------------------------------------------


def test_a_retried_activity_takes_a_timer_between_attempts() -> None:
    def orch(context: df.DurableOrchestrationContext) -> Gen:
        options = df.RetryOptions(first_retry_interval_in_milliseconds=5000,
                                  max_number_of_attempts=3)
        value = yield context.call_activity_with_retry("Flaky", options, "k")
        after = yield context.call_activity("Hello", "other")
        return [value, after]

    loop = InMemoryLoop(orch, {"Flaky": flaky(2), "Hello": str.upper}).start().run()
    assert loop.value == ["k ok", "OTHER"]
    assert ids(loop.history) == [
        ("TaskScheduled", 0), ("TaskFailed", 0), ("TimerCreated", 1), ("TimerFired", 1),
        ("TaskScheduled", 2), ("TaskFailed", 2), ("TimerCreated", 3), ("TimerFired", 3),
        ("TaskScheduled", 4), ("TaskCompleted", 4),
        # the next call takes the next number, after every number the retries took
        ("TaskScheduled", 5), ("TaskCompleted", 5)]
    timer = [e for e in loop.history if e["EventType"] == EventType.TimerCreated][0]
    # FireAt = the orchestration's time when it saw the failure + the retry interval.
    assert history.parse_timestamp(timer["FireAt"]) == \
        episode_time_of(loop.history, EventType.TaskFailed) + timedelta(seconds=5)


def test_the_last_failed_attempt_is_followed_by_a_timer_then_the_error() -> None:
    def orch(context: df.DurableOrchestrationContext) -> Gen:
        options = df.RetryOptions(first_retry_interval_in_milliseconds=1000,
                                  max_number_of_attempts=2)
        try:
            yield context.call_activity_with_retry("Flaky", options, "k")
        except Exception as error:
            return str(error).split(" \n ")[0]

    loop = InMemoryLoop(orch, {"Flaky": flaky(5)}).start().run()
    assert loop.value == "Activity function 'Flaky' failed: RuntimeError: k attempt 2"
    assert ids(loop.history) == [
        ("TaskScheduled", 0), ("TaskFailed", 0), ("TimerCreated", 1), ("TimerFired", 1),
        ("TaskScheduled", 2), ("TaskFailed", 2), ("TimerCreated", 3), ("TimerFired", 3)]
    dummy = [e for e in loop.history if e["EventType"] == EventType.TimerCreated][-1]
    # DTFx's "dummy timer for back-compat": due at once.
    assert history.parse_timestamp(dummy["FireAt"]) == \
        episode_time_of(loop.history, EventType.TaskFailed, 1)


@pytest.mark.parametrize("reverse", [False, True])
def test_retries_in_a_fan_out_number_as_the_sdk_does(reverse: bool) -> None:
    def orch(context: df.DurableOrchestrationContext) -> Gen:
        options = df.RetryOptions(first_retry_interval_in_milliseconds=1000,
                                  max_number_of_attempts=3)
        return (yield context.task_all([
            context.call_activity_with_retry("Flaky", options, f"k{n}") for n in range(4)]))

    loop = InMemoryLoop(orch, {"Flaky": flaky(2)}, activities_per_step=None,
                        reverse=reverse).start().run()
    assert loop.value == ["k0 ok", "k1 ok", "k2 ok", "k3 ok"]
    scheduled = [e["EventId"] for e in loop.history if e["EventType"] == EventType.TaskScheduled]
    timers = [e["EventId"] for e in loop.history if e["EventType"] == EventType.TimerCreated]
    assert sorted(scheduled + timers) == list(range(4 * 5))


@pytest.mark.parametrize(("options", "message"), [
    ({"firstRetryIntervalInMilliseconds": 1000, "maxNumberOfAttempts": 0},
     "maxNumberOfAttempts must be at least 1 (got 0); the call would never run."),
    ({"firstRetryIntervalInMilliseconds": 8 * 24 * 3600 * 1000, "maxNumberOfAttempts": 2},
     "the Azure Storage provider supports a maximum of 6 days for time-based delays."),
    ({"firstRetryIntervalInMilliseconds": 0, "maxNumberOfAttempts": 2},
     "firstRetryIntervalInMilliseconds must be greater than 0 (got 0)."),
])
def test_invalid_retry_options_fail_with_a_clear_message(options: dict[str, Any],
                                                         message: str) -> None:
    episode = engine.plan_episode(IID, [], [history.execution_started(
        IID, XID, "Orch", "null", T0)], NOW)
    state = {"isDone": False, "actions": [[{"actionType": 12, "compoundActions": [{
        "actionType": 1, "functionName": "Hello", "input": "null",
        "retryOptions": options}]}]]}
    result = engine.apply_state(episode, state, ("Hello",), NOW)
    assert result.runtime_status == "Failed"
    assert json.loads(result.output_text or "") == (
        f"Orchestrator function 'Orch' failed: The retry options of 'Hello' are invalid: "
        f"{message}")


# --- sub-orchestrations ---------------------------------------------------------------


def sub_state(**action: Any) -> dict[str, Any]:
    return {"isDone": False, "actions": [[{"actionType": 2, "functionName": "Child",
                                           "input": '"x"', "instanceId": None,
                                           "version": None, **action}]]}


def first_episode() -> engine.Episode:
    return engine.plan_episode(IID, [], [history.execution_started(
        IID, XID, "Orch", "null", T0, version="2.0")], NOW)


def test_a_sub_orchestration_starts_its_child_with_a_parent() -> None:
    known = KnownFunctions.of(orchestrators=["Child"])
    result = engine.apply_state(first_episode(), sub_state(), known, NOW)
    created = result.new_events[2]
    assert (kinds([created]), created["EventId"], created["Name"], created["InstanceId"]) == (
        ["SubOrchestrationInstanceCreated"], 0, "Child", f"{XID}:0")
    [message] = result.outgoing
    start = message.event
    assert (message.target_instance_id, start["Name"], start["Input"]) == (
        f"{XID}:0", "Child", '"\\"x\\""')
    assert start["ParentInstance"] == {
        "Name": "Orch", "OrchestrationInstance": {"InstanceId": IID, "ExecutionId": XID},
        "TaskScheduleId": 0, "Version": "2.0"}
    assert message.target_execution_id == start["OrchestrationInstance"]["ExecutionId"]


@pytest.mark.parametrize(("action", "message"), [
    ({"functionName": "Nope"},
     "The function 'Nope' doesn't exist, is disabled, or is not an orchestrator function. "
     "Additional info: The following are the known orchestrator functions: 'Child'."),
    ({"instanceId": IID.upper()},
     "The instance ID of a sub-orchestration must be different than the instance ID of a "
     "parent orchestration."),
])
def test_bad_sub_orchestrations_fail_the_parent(action: dict[str, Any], message: str) -> None:
    known = KnownFunctions.of(orchestrators=["Child"])
    result = engine.apply_state(first_episode(), sub_state(**action), known, NOW)
    assert json.loads(result.output_text or "") == f"Orchestrator function 'Orch' failed: " \
                                                   f"{message}"


def test_a_finished_child_tells_its_parent() -> None:
    parent = history.parent_instance("p", "px", "Parent", "", 7)
    start = history.execution_started("c", "cx", "Child", "null", T0, parent_instance=parent)
    episode = engine.plan_episode("c", [], [start], NOW)
    done = engine.apply_state(episode, {"isDone": True, "output": 5, "actions": [[]]}, (), NOW)
    [reply] = done.outgoing
    assert (reply.target_instance_id, reply.target_execution_id) == ("p", "px")
    assert (kinds([reply.event]), reply.event["TaskScheduledId"], reply.event["Result"]) == (
        ["SubOrchestrationInstanceCompleted"], 7, "5")
    failed = engine.apply_state(episode, {"isDone": False, "error": "boom", "actions": [[]]},
                                (), NOW)
    [reply] = failed.outgoing
    assert (reply.event["Reason"], reply.event["Details"]) == (
        "Orchestrator function 'Child' failed: boom",
        "Message: Orchestrator function 'Child' failed: boom")


def test_a_child_id_held_by_a_running_instance_is_refused_to_the_parent() -> None:
    running = [history.orchestrator_started(T0),
               history.execution_started("c", "old", "Child", "null", T0),
               history.orchestrator_completed(T0)]
    parent = history.parent_instance("p", "px", "Parent", "", 3)
    new_start = history.execution_started("c", "new", "Child", "null", T0,
                                          parent_instance=parent)
    episode = engine.plan_episode("c", running, [new_start], NOW)
    assert episode.discarded == [0] and len(episode.refused_starts) == 1
    reply = engine.reject_start(episode.refused_starts[0], "Running", NOW)
    assert reply is not None and reply.target_instance_id == "p"
    assert reply.event["Reason"] == (
        "The sub-orchestration 'Child' could not start: an orchestration instance with the ID "
        "'c' and the status Running already exists.")


# --- continue-as-new ------------------------------------------------------------------


def test_continue_as_new_starts_a_new_execution_in_the_same_work_item() -> None:
    def orch(context: df.DurableOrchestrationContext) -> Gen:
        n = context.get_input()
        if n < 3:
            yield context.call_activity("Hello", n)
            context.continue_as_new(n + 1)
            return None
        return n

    loop = InMemoryLoop(orch, {"Hello": lambda n: n}).start(0).run()
    assert loop.value == 3 and loop.generations == 3
    # Only the last generation is kept, with its own execution id.
    assert kinds(loop.history) == ["OrchestratorStarted", "ExecutionStarted",
                                   "ExecutionCompleted", "OrchestratorCompleted"]
    assert loop.history[1]["OrchestrationInstance"]["ExecutionId"] == f"{XID}-g3"
    assert loop.history[1]["Input"] == '"3"'


def test_events_raised_after_continue_as_new_reach_the_next_generation() -> None:
    start = history.execution_started(IID, XID, "Orch", '"0"', T0)
    past = [history.orchestrator_started(T0), start, history.orchestrator_completed(T0)]
    raised = history.event_raised("go", '"late"', NOW)
    episode = engine.plan_episode(IID, past, [raised], NOW)
    state = {"isDone": True, "actions": [[{"actionType": 4, "input": "1"}]]}
    result = engine.apply_state(episode, state, (), NOW)
    assert result.runtime_status == "ContinuedAsNew" and result.continued is not None
    assert [e["Name"] for e in result.continued.carried] == ["go"]
    nxt = engine.next_generation(episode, result.continued, "x2", NOW)
    assert kinds(nxt.new_events) == ["OrchestratorStarted", "ExecutionStarted", "EventRaised"]
    assert nxt.execution_id == "x2" and nxt.new_events[1]["Input"] == '"1"'


# --- suspension -----------------------------------------------------------------------


def test_events_that_arrive_while_suspended_wait_for_the_resume() -> None:
    events = [history.orchestrator_started(T0), history.execution_started(IID, XID, "O", "1", T0),
              history.execution_suspended("why", T0), history.task_completed(0, "1", T0),
              history.event_raised("e", "2", T0), history.execution_terminated('"t"', T0)]
    assert is_suspended(events)
    assert kinds(visible_events(events)) == [
        "OrchestratorStarted", "ExecutionStarted", "ExecutionSuspended", "ExecutionTerminated"]
    resumed = [*events[:5], history.orchestrator_started(NOW),
               history.execution_resumed("go", NOW)]
    assert not is_suspended(resumed)
    assert kinds(visible_events(resumed)) == [
        "OrchestratorStarted", "ExecutionStarted", "ExecutionSuspended", "OrchestratorStarted",
        "ExecutionResumed", "TaskCompleted", "EventRaised"]


def test_a_suspended_instance_records_events_without_running_its_code() -> None:
    past = [history.orchestrator_started(T0), history.execution_started(IID, XID, "O", "1", T0),
            history.orchestrator_completed(T0)]
    episode = engine.plan_episode(IID, past, [history.execution_suspended("why", NOW),
                                              history.event_raised("e", "2", NOW)], NOW)
    held = engine.hold(episode, NOW)
    assert held is not None
    assert (held.runtime_status, held.replayed, held.outgoing) == ("Suspended", False, [])
    fields = engine.instance_fields(episode, held, NOW)
    assert fields["RuntimeStatus"] == "Suspended" and fields["Output"] == "why"
    assert "CustomStatus" not in fields  # the code did not run: its status stands


# --- rewind ---------------------------------------------------------------------------


def test_rewind_turns_failures_into_generic_events() -> None:
    events = [history.orchestrator_started(T0), history.execution_started(IID, XID, "O", "1", T0),
              history.task_scheduled(0, "Ok", None, T0), history.task_completed(0, "1", T0),
              history.task_scheduled(1, "Bad", None, T0),
              history.sub_orchestration_created(2, "Child", "kid", None, T0),
              history.task_failed(1, "r", "d", T0),
              history.sub_orchestration_failed(2, "r2", "d2", T0),
              history.execution_completed(OrchestrationStatus.Failed, '"x"', T0, event_id=3)]
    rewound = rewind_history(events)
    assert kinds(rewound.events) == [
        "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "TaskCompleted",
        "GenericEvent", "SubOrchestrationInstanceCreated", "GenericEvent", "GenericEvent",
        "GenericEvent"]
    assert [e.get("Reason") for e in rewound.events[4:]] == [
        "Rewound: TaskScheduled", "Rewound: SubOrchestrationInstanceCreated",
        "Rewound: TaskFailed", "Rewound: SubOrchestrationInstanceFailed",
        "Rewound: ExecutionCompleted"]
    assert rewound.failed_children == ["kid"] and not rewound.is_leaf


# --- versioning and nondeterminism ----------------------------------------------------


@pytest.mark.parametrize(("instance", "worker", "order"), [
    ("", "", 0), ("", "1.0", -1), ("1.0", "", 1), ("1.0", "1.0.0", -1), ("1.10", "1.9", 1),
    ("2.0", "10.0", -1), ("beta", "Alpha", 1), ("A", "a", 0)])
def test_versions_compare_as_the_framework_does(instance: str, worker: str,
                                                order: int) -> None:
    assert compare_versions(instance, worker) == order


def test_version_strategies() -> None:
    assert allows("1.0", "2.0", "CurrentOrOlder") and not allows("3.0", "2.0", "CurrentOrOlder")
    assert allows("2.0", "2.0", "Strict") and not allows("1.0", "2.0", "Strict")
    assert allows("9", "1", "None")
    assert allows("1.0", None, "Strict")  # no defaultVersion: versioning is off
    assert MISMATCH == "VersionMismatch: Orchestration version did not comply with Worker " \
                       "Versioning"


def test_history_the_code_no_longer_produces_is_nondeterministic() -> None:
    past = [history.orchestrator_started(T0), history.execution_started(IID, XID, "O", "1", T0),
            history.sub_orchestration_created(0, "Child", "kid", None, T0),
            history.orchestrator_completed(T0)]
    episode = engine.plan_episode(IID, past, [history.event_raised("x", "1", NOW)], NOW)
    result = engine.apply_state(episode, {"isDone": False, "actions": [[]]}, (), NOW)
    assert json.loads(result.output_text or "") == (
        "Orchestrator function 'O' failed: Non-Deterministic workflow detected: A previous "
        "execution of this orchestration scheduled a sub-orchestration task with sequence ID 0 "
        "and name 'Child' (version '', instance ID 'kid'), but the current replay execution "
        "hasn't (yet?) scheduled this task. Was a change made to the orchestrator code after "
        "this instance had already started running?")


def test_a_renamed_sub_orchestration_is_nondeterministic() -> None:
    past = [history.orchestrator_started(T0), history.execution_started(IID, XID, "O", "1", T0),
            history.sub_orchestration_created(0, "Child", "kid", None, T0),
            history.orchestrator_completed(T0)]
    episode = engine.plan_episode(IID, past, [history.event_raised("x", "1", NOW)], NOW)
    known = KnownFunctions.of(orchestrators=["Child", "Other"])
    state = sub_state(functionName="Other")
    result = engine.apply_state(episode, state, known, NOW)
    assert "but the current orchestration replay instead scheduled a sub-orchestration task " \
           "with name Other at this sequence number." in json.loads(result.output_text or "")


# --- entity signals at the end --------------------------------------------------------


@pytest.mark.parametrize("state", [
    {"isDone": True, "output": "paid"},
    {"isDone": False, "error": "boom"},
])
def test_signals_sent_by_the_last_episode_are_recorded_and_sent(state: dict[str, Any]) -> None:
    """The extension replays every action before it completes or fails the instance, so
    a signal in the finishing episode still reaches the entity."""
    signal = {"actionType": 9, "instanceId": "@cart@c1", "operation": "empty",
              "input": None}
    known = KnownFunctions.of(entities=["cart"])
    result = engine.apply_state(first_episode(), {**state, "actions": [[signal]]}, known, NOW)
    assert kinds(result.new_events)[-3:] == [
        "EventSent", "ExecutionCompleted", "OrchestratorCompleted"]
    [message] = result.outgoing
    assert (message.target_instance_id, message.event["Name"]) == ("@cart@c1", "op")
    assert json.loads(message.event["Input"])["op"] == "empty"
    assert result.runtime_status == ("Completed" if state["isDone"] else "Failed")
