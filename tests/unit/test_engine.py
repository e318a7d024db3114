from __future__ import annotations

import json
import os
from collections.abc import Generator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest
from support.memory_loop import IID, T0, XID, InMemoryLoop, Orchestrator

from runtime.durable import engine, history
from runtime.durable.engine import Episode, EpisodeResult, OutgoingMessage
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.errors import ProtocolError

NOW = T0 + timedelta(minutes=5)
GOLDEN = Path(__file__).parent / "golden"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [EventType(e["EventType"]).name for e in events]


def started(input_text: str | None = "null", execution_id: str = XID,
            name: str = "Orch") -> dict[str, Any]:
    return history.execution_started(IID, execution_id, name, input_text, T0)


def one_task_history() -> list[dict[str, Any]]:
    """A running instance that scheduled activity 0 ('Hello') and timer 1."""
    return [history.orchestrator_started(T0), started(),
            history.task_scheduled(0, "Hello", None, T0),
            history.timer_created(1, at(3600), T0),
            history.orchestrator_completed(T0)]


def completed_history() -> list[dict[str, Any]]:
    return [history.orchestrator_started(T0), started(),
            history.execution_completed(OrchestrationStatus.Completed, "1", T0),
            history.orchestrator_completed(T0)]


def plan(past: list[dict[str, Any]], *incoming: dict[str, Any]) -> Episode:
    return engine.plan_episode(IID, past, list(incoming), NOW)


# --- plan_episode ---------------------------------------------------------------------


def test_a_fresh_start_opens_the_first_episode() -> None:
    episode = plan([], started('"\\"x\\""'))
    assert kinds(episode.new_events) == ["OrchestratorStarted", "ExecutionStarted"]
    assert episode.new_events[0]["Timestamp"] == history.format_timestamp(NOW)
    assert episode.new_events[1]["Timestamp"] == history.format_timestamp(T0)  # kept
    assert (episode.execution_id, episode.orchestrator_name) == (XID, "Orch")
    assert episode.input_text == '"\\"x\\""'
    assert episode.needs_replay
    assert (episode.discarded, episode.deferred, episode.terminated_reason) == ([], [], None)


def test_messages_for_an_unknown_instance_are_discarded() -> None:
    episode = plan([], history.event_raised("go", "1", T0), history.task_completed(0, "1", T0))
    assert episode.discarded == [0, 1]
    assert episode.execution_id is None
    assert episode.new_events == []
    assert not episode.needs_replay


@pytest.mark.parametrize(("incoming", "discarded", "deferred", "appended"), [
    # duplicate start of the same execution
    ([started()], [0], [], []),
    # a stale start of another execution while this one runs
    ([started(execution_id="other")], [0], [], []),
    # a completion for a scheduled task
    ([history.task_completed(0, '"hi"', T0)], [], [], ["TaskCompleted"]),
    ([history.task_failed(0, "r", "d", T0)], [], [], ["TaskFailed"]),
    ([history.timer_fired(1, at(3600), T0)], [], [], ["TimerFired"]),
    # the same completion twice in one batch
    ([history.task_completed(0, "1", T0), history.task_completed(0, "1", T0)],
     [1], [], ["TaskCompleted"]),
    # a failure after a success for the same task
    ([history.task_completed(0, "1", T0), history.task_failed(0, "r", None, T0)],
     [1], [], ["TaskCompleted"]),
    # completions whose scheduling event is not in history yet: out of order
    ([history.task_completed(7, "1", T0), history.timer_fired(8, T0, T0)], [], [0, 1], []),
    # a completion naming a timer's id is garbage
    ([history.task_completed(1, "1", T0), history.timer_fired(0, T0, T0)], [0, 1], [], []),
    # external events are always appended, in order
    ([history.event_raised("a", "1", T0), history.event_raised("b", "2", T0)], [], [],
     ["EventRaised", "EventRaised"]),
])
def test_incoming_messages_against_a_running_instance(
        incoming: list[dict[str, Any]], discarded: list[int], deferred: list[int],
        appended: list[str]) -> None:
    episode = plan(one_task_history(), *incoming)
    assert episode.discarded == discarded
    assert episode.deferred == deferred
    if appended:
        assert kinds(episode.new_events) == ["OrchestratorStarted", *appended]
        assert all(e["IsPlayed"] is False for e in episode.new_events)
    else:
        assert episode.new_events == []
    assert episode.needs_replay == bool(appended)


def test_completions_already_in_history_are_duplicates() -> None:
    past = one_task_history() + [history.orchestrator_started(at(1)),
                                 history.task_completed(0, "1", at(1)),
                                 history.orchestrator_completed(at(1))]
    episode = plan(past, history.task_completed(0, "1", T0), history.event_raised("e", "1", T0))
    assert episode.discarded == [0]
    assert kinds(episode.new_events) == ["OrchestratorStarted", "EventRaised"]


def test_messages_after_the_end_are_discarded() -> None:
    episode = plan(completed_history(), history.event_raised("e", "1", T0),
                   history.task_completed(0, "1", T0),
                   history.execution_terminated('"late"', T0), started())
    assert episode.discarded == [0, 1, 2, 3]
    assert episode.new_events == [] and not episode.needs_replay
    assert episode.terminated_reason is None


def test_a_new_execution_may_reuse_a_finished_instance_id() -> None:
    episode = plan(completed_history(), started('"2"', execution_id="exec-2"),
                   history.event_raised("e", "1", T0))
    assert episode.past_events == []
    assert episode.execution_id == "exec-2"
    assert kinds(episode.new_events) == ["OrchestratorStarted", "ExecutionStarted",
                                         "EventRaised"]
    assert episode.input_text == '"2"' and episode.needs_replay


def test_the_start_goes_first_even_when_it_arrives_second() -> None:
    episode = plan([], history.event_raised("early", "1", T0), started())
    # an event that raced ahead of the start of its instance is not lost
    assert episode.discarded == [0]
    episode = plan([], started(), history.event_raised("e", "1", T0), started())
    assert kinds(episode.new_events) == ["OrchestratorStarted", "ExecutionStarted",
                                         "EventRaised"]
    assert episode.discarded == [2]


def test_termination_skips_the_replay() -> None:
    episode = plan(one_task_history(), history.event_raised("e", "1", T0),
                   history.execution_terminated('"stop"', T0),
                   history.task_completed(9, "1", T0),
                   history.execution_terminated('"again"', T0))
    assert episode.terminated_reason == '"stop"'
    assert not episode.needs_replay
    # late replies would only be dropped later: drop them now
    assert (episode.deferred, episode.discarded) == ([], [2])
    assert kinds(episode.new_events) == ["OrchestratorStarted", "EventRaised",
                                         "ExecutionTerminated", "ExecutionTerminated"]


def test_plan_does_not_touch_its_arguments() -> None:
    past = one_task_history()
    incoming = [history.task_completed(0, "1", T0)]
    incoming[0]["IsPlayed"] = True
    before = json.dumps([past, incoming])
    plan(past, *incoming)
    assert json.dumps([past, incoming]) == before


# --- build_context --------------------------------------------------------------------


@pytest.mark.parametrize(("input_text", "expected"), [
    ("null", None), (None, None), ('"\\"Tokyo\\""', '"Tokyo"'), ('{"a": [1]}', {"a": [1]}),
    ("not json", "not json"), ("3", 3),
])
def test_context_input_is_reparsed(input_text: str | None, expected: Any) -> None:
    context = json.loads(engine.build_context(plan([], started(input_text))))
    assert context["input"] == expected


def test_context_marks_past_events_played() -> None:
    episode = plan(one_task_history(), history.task_completed(0, '"hi"', T0))
    context = json.loads(engine.build_context(episode))
    assert list(context) == ["history", "input", "instanceId", "isReplaying",
                             "parentInstanceId", "upperSchemaVersion", "upperSchemaVersionNew",
                             "longRunningTimerIntervalDuration", "maximumShortTimerDuration",
                             "defaultHttpAsyncRequestSleepTimeMillseconds"]
    assert [e["IsPlayed"] for e in context["history"]] == [True] * 5 + [False] * 2
    assert kinds(context["history"]) == kinds(one_task_history()) + [
        "OrchestratorStarted", "TaskCompleted"]
    assert context["isReplaying"] is True
    assert context["instanceId"] == IID and context["parentInstanceId"] is None
    # the stored events keep their flags
    assert all(e["IsPlayed"] is False for e in episode.past_events)


def first_episode() -> Episode:
    """A fresh HelloCities instance, as the golden files hold it."""
    start = history.execution_started(IID, XID, "HelloCities", json.dumps(json.dumps(["Tokyo"])),
                                      T0)
    return engine.plan_episode(IID, [], [start], T0)


def test_context_for_a_fresh_instance_matches_golden() -> None:
    golden(GOLDEN / "first_context.json", engine.build_context(first_episode()))


# --- parse_sdk_result -----------------------------------------------------------------

STATE = {"isDone": False, "schemaVersion": 2, "actions": [[]]}


def test_a_returned_state_is_parsed() -> None:
    assert engine.parse_sdk_result(json.dumps(STATE), None) == STATE


@pytest.mark.parametrize("tail", ["", "\nStack: at foo()\n  at bar()", " trailing words"])
def test_the_state_is_cut_out_of_a_raised_exception(tail: str) -> None:
    state = {**STATE, "error": "boom\nwith lines"}
    raised = "ValueError: boom\nwith lines\n\n$OutOfProcData$:" + json.dumps(state) + tail
    assert engine.parse_sdk_result(None, raised) == state


def test_an_exception_without_state_becomes_an_error() -> None:
    assert engine.parse_sdk_result(None, "Worker died") == {
        "isDone": False, "actions": [], "error": "Worker died"}


@pytest.mark.parametrize(("returned", "raised"), [
    (None, None), ("not json", None), ("[1]", None), ('{"actions": 3}', None),
    (None, "x\n\n$OutOfProcData$:{broken"),
])
def test_garbage_from_the_sdk_is_a_protocol_error(returned: str | None,
                                                  raised: str | None) -> None:
    with pytest.raises(ProtocolError):
        engine.parse_sdk_result(returned, raised)


# --- apply_state ----------------------------------------------------------------------


def activity(name: str, value: Any = None) -> dict[str, Any]:
    return {"actionType": 0, "functionName": name, "input": json.dumps(value)}


def timer(fire_at: datetime, cancelled: bool = False) -> dict[str, Any]:
    return {"actionType": 5, "fireAt": fire_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "isCanceled": cancelled}


def external(name: str) -> dict[str, Any]:
    return {"actionType": 6, "externalEventName": name, "reason": "ExternalEvent"}


def when(kind: int, *children: dict[str, Any]) -> dict[str, Any]:
    return {"actionType": kind, "compoundActions": list(children)}


def state(*actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"isDone": False, "schemaVersion": 2, "actions": [list(actions)], **extra}


def fresh() -> Episode:
    return plan([], started())


def apply(episode: Episode, sdk_state: dict[str, Any],
          known: tuple[str, ...] = ("Hello", "Other"), **kwargs: Any) -> EpisodeResult:
    return engine.apply_state(episode, sdk_state, known, NOW, **kwargs)


def test_a_new_activity_is_scheduled_and_sent_with_its_input() -> None:
    result = apply(fresh(), state(activity("Hello", "Tokyo")))
    assert kinds(result.new_events) == ["OrchestratorStarted", "ExecutionStarted",
                                        "TaskScheduled", "OrchestratorCompleted"]
    assert result.new_events[2] == history.task_scheduled(0, "Hello", None, NOW)
    assert result.outgoing == [OutgoingMessage(
        "activity", IID, XID, history.task_scheduled(0, "Hello", '"Tokyo"', NOW))]
    assert (result.runtime_status, result.output_text, result.custom_status_text) == (
        "Running", None, None)


def test_a_timer_sends_its_fired_event_to_itself_for_later() -> None:
    fire_at = datetime(2024, 5, 1, 13, 0, 0, 250000, tzinfo=timezone.utc)
    result = apply(fresh(), state(timer(fire_at)))
    assert result.new_events[2] == history.timer_created(0, fire_at, NOW)
    assert result.outgoing == [OutgoingMessage(
        "orchestration", IID, XID, history.timer_fired(0, fire_at, NOW), visible_at=fire_at)]


def test_ids_follow_the_actions_depth_first() -> None:
    sdk_state = state(external("approve"), activity("Hello", 1),
                      when(12, activity("Other", 2), activity("Hello", 3)),
                      when(11, external("x"), timer(at(60)), activity("Hello", 4)))
    result = apply(fresh(), sdk_state)
    scheduled = [e for e in result.new_events if e["EventId"] >= 0]
    assert [(e["EventId"], e.get("Name")) for e in scheduled] == [
        (0, "Hello"), (1, "Other"), (2, "Hello"), (3, None), (4, "Hello")]
    assert [m.event["Input"] for m in result.outgoing if m.kind == "activity"] == [
        "1", "2", "3", "4"]


def test_replayed_actions_schedule_nothing() -> None:
    episode = plan(one_task_history(), history.task_completed(0, '"hi"', T0))
    result = apply(episode, state(when(11, activity("Hello"), timer(at(3600)))))
    assert kinds(result.new_events) == ["OrchestratorStarted", "TaskCompleted",
                                        "OrchestratorCompleted"]
    assert result.outgoing == []


def test_a_timer_cancelled_before_it_was_created_is_skipped() -> None:
    result = apply(fresh(), state(timer(at(60), cancelled=True), activity("Hello")))
    assert [e["EventId"] for e in result.new_events if e["EventId"] >= 0] == [1]


def test_done_completes_with_compact_json_output() -> None:
    result = apply(fresh(), state(isDone=True, output={"ü": [1, 2.5, None]}))
    assert result.runtime_status == "Completed"
    assert result.output_text == '{"ü":[1,2.5,null]}'
    assert kinds(result.new_events)[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
    assert result.new_events[-2] == history.execution_completed(
        OrchestrationStatus.Completed, '{"ü":[1,2.5,null]}', NOW, event_id=0)


def test_done_without_output_stores_null() -> None:
    result = apply(fresh(), state(isDone=True))
    assert (result.runtime_status, result.output_text) == ("Completed", None)
    assert result.new_events[-2]["Result"] is None


def test_completion_carries_the_next_sequence_number() -> None:
    episode = plan(one_task_history(), history.task_completed(0, "1", T0),
                   history.timer_fired(1, at(3600), T0))
    result = apply(episode, state(activity("Hello"), timer(at(3600)), isDone=True, output=1))
    assert result.new_events[-2]["EventId"] == 2


def test_done_waits_for_tasks_still_open() -> None:
    # task_any(activity, timer) won by the activity: DTFx keeps the instance running
    # until the uncancelled timer fires too.
    episode = plan(one_task_history(), history.task_completed(0, '"hi"', T0))
    sdk_state = state(when(11, activity("Hello"), timer(at(3600))), isDone=True, output="hi")
    result = apply(episode, sdk_state)
    assert (result.runtime_status, result.output_text) == ("Running", None)
    assert kinds(result.new_events)[-1] == "OrchestratorCompleted"
    cancelled = state(when(11, activity("Hello"), timer(at(3600), cancelled=True)),
                      isDone=True, output="hi")
    assert apply(episode, cancelled).runtime_status == "Completed"


def test_an_error_fails_the_instance() -> None:
    result = apply(fresh(), state(error="division by zero", customStatus={"step": 1}))
    assert result.runtime_status == "Failed"
    assert json.loads(result.output_text or "") == \
        "Orchestrator function 'Orch' failed: division by zero"
    assert result.custom_status_text == '{"step":1}'
    completed = result.new_events[-2]
    assert completed["OrchestrationStatus"] == OrchestrationStatus.Failed
    assert completed["Result"] == result.output_text


def test_an_error_with_work_outstanding_keeps_running() -> None:
    result = apply(fresh(), state(when(12, activity("Hello"), activity("Other")),
                                  error="first failure"))
    assert result.runtime_status == "Running"
    assert len(result.outgoing) == 2


def test_custom_status_is_compact_json() -> None:
    result = apply(fresh(), state(customStatus="half way"))
    assert result.custom_status_text == '"half way"'
    assert apply(fresh(), state()).custom_status_text is None


@pytest.mark.parametrize(("known", "message"), [
    (("Hello", "Other"), "The function 'Nope' doesn't exist, is disabled, or is not an "
     "activity function. Additional info: The following are the known activity functions: "
     "'Hello', 'Other'."),
    ((), "The function 'Nope' doesn't exist, is disabled, or is not an activity function. "
     "Additional info: No activity functions are currently registered!"),
])
def test_an_unknown_activity_fails_the_instance(known: tuple[str, ...], message: str) -> None:
    result = apply(fresh(), state(*[activity(n) for n in known], activity("Nope")), known)
    assert result.runtime_status == "Failed"
    assert json.loads(result.output_text or "") == \
        f"Orchestrator function 'Orch' failed: {message}"
    assert result.outgoing == []
    assert "TaskScheduled" not in kinds(result.new_events)


def test_activity_names_match_without_case() -> None:
    assert apply(fresh(), state(activity("hello"))).runtime_status == "Running"


@pytest.mark.parametrize(("action", "label"), [
    ({"actionType": 10, "instanceId": "@c@k", "operation": "add"}, "ScheduledSignalEntity"),
    ({"actionType": 42}, "unknown"),
])
def test_unsupported_actions_fail_with_their_name(action: dict[str, Any], label: str) -> None:
    result = apply(fresh(), state(activity("Hello"), action))
    assert result.runtime_status == "Failed"
    assert f"'{label}'" in json.loads(result.output_text or "")
    assert result.outgoing == []


@pytest.mark.parametrize("sdk_state", [
    state(timer(at(1)) | {"fireAt": "soon"}),
    state({"actionType": 0, "input": "1"}),
    {"isDone": False, "actions": [[activity("Hello")], [activity("Hello")]]},
    {"isDone": False, "actions": [{"actionType": 0}]},
])
def test_malformed_actions_fail_the_instance(sdk_state: dict[str, Any]) -> None:
    assert apply(fresh(), sdk_state).runtime_status == "Failed"


def test_too_many_actions_fail_the_instance() -> None:
    result = apply(fresh(), state(*[activity("Hello")] * 4), max_actions=3)
    assert json.loads(result.output_text or "") == (
        "Orchestrator function 'Orch' failed: Maximum amount of orchestration actions (3) has "
        "been reached. This value can be configured in host.json file as "
        "MaxOrchestrationActions.")


def test_a_changed_activity_name_is_nondeterministic() -> None:
    episode = plan(one_task_history(), history.task_completed(0, "1", T0))
    result = apply(episode, state(activity("Other"), timer(at(3600))))
    assert result.runtime_status == "Failed"
    assert json.loads(result.output_text or "") == (
        "Orchestrator function 'Orch' failed: Non-Deterministic workflow detected: A previous "
        "execution of this orchestration scheduled an activity task with sequence number 0 "
        "named 'Hello', but the current orchestration replay instead scheduled an activity "
        "task named 'Other' with this sequence number.  Was a change made to the orchestrator "
        "code after this instance had already started running?")


def test_a_timer_where_an_activity_was_is_nondeterministic() -> None:
    episode = plan(one_task_history(), history.task_completed(0, "1", T0))
    result = apply(episode, state(timer(at(5)), timer(at(3600))))
    assert "Non-Deterministic workflow detected" in (result.output_text or "")
    result = apply(episode, state(activity("Hello"), activity("Hello")))
    assert "scheduled a timer task with sequence number 1" in (result.output_text or "")


def test_terminate_ends_without_replay() -> None:
    episode = plan(one_task_history(), history.execution_terminated('"enough"', T0))
    result = engine.terminate(episode, NOW)
    assert kinds(result.new_events) == ["OrchestratorStarted", "ExecutionTerminated",
                                        "ExecutionCompleted", "OrchestratorCompleted"]
    assert result.new_events[2]["OrchestrationStatus"] == OrchestrationStatus.Terminated
    assert result.new_events[2]["Result"] == '"enough"'
    assert result.new_events[2]["EventId"] == 2
    assert (result.runtime_status, result.output_text, result.outgoing) == (
        "Terminated", '"enough"', [])
    with pytest.raises(ValueError):
        engine.terminate(fresh(), NOW)


def test_fail_ends_with_the_message() -> None:
    result = engine.fail(fresh(), "The worker process exited.", NOW)
    assert result.runtime_status == "Failed"
    assert json.loads(result.output_text or "") == \
        "Orchestrator function 'Orch' failed: The worker process exited."
    assert kinds(result.new_events) == ["OrchestratorStarted", "ExecutionStarted",
                                        "ExecutionCompleted", "OrchestratorCompleted"]
    assert all(e["Timestamp"] == history.format_timestamp(NOW)
               for e in result.new_events[2:])


# --- the in-memory loop with the real SDK ---------------------------------------------


class ActivityError(Exception):
    pass


def say_hello(city: str) -> str:
    return f"Hello {city}!"


def double(n: int) -> int:
    return n * 2


def explode(message: str) -> None:
    raise ActivityError(message)


def hello_cities(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    results = []
    for city in context.get_input():
        results.append((yield context.call_activity("Hello", city)))
    return results


def test_chaining_runs_to_completion_with_the_dtfx_history() -> None:
    run = InMemoryLoop(hello_cities, {"Hello": say_hello}).start(["Tokyo", "Seattle", "London"])
    run.run()
    assert run.status == "Completed"
    assert run.value == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert kinds(run.history) == [
        "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorCompleted",
        "OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted",
        "OrchestratorStarted", "TaskCompleted", "TaskScheduled", "OrchestratorCompleted",
        "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted", "OrchestratorCompleted"]
    assert [e["EventId"] for e in run.history if e["EventType"] == EventType.TaskScheduled] \
        == [0, 1, 2]
    assert all(e["Input"] is None for e in run.history
               if e["EventType"] == EventType.TaskScheduled)
    assert run.history[-2]["EventId"] == 3
    assert run.history[-2]["Result"] == run.output
    assert run.episodes == 4
    # later contexts replay: past events played, the clock moves with OrchestratorStarted
    last = json.loads(run.contexts[-1])
    assert last["isReplaying"] is True
    assert sum(e["IsPlayed"] for e in last["history"]) == 12


def test_first_sdk_state_matches_golden() -> None:
    returned = df.Orchestrator.create(hello_cities)(engine.build_context(first_episode()))
    golden(GOLDEN / "first_state.json", returned, parsed=True)
    result = engine.apply_state(first_episode(), engine.parse_sdk_result(returned, None),
                                ["Hello"], T0)
    assert [m.event["Input"] for m in result.outgoing] == ['"Tokyo"']


def fan_out(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    count = context.get_input()
    tasks = [context.call_activity("Double", n) for n in range(count)]
    results = yield context.task_all(tasks)
    return sum(results)


@pytest.mark.parametrize(("count", "per_step", "batch"), [(5, 1, 32), (200, None, 32)])
def test_fan_out_fan_in(count: int, per_step: int | None, batch: int) -> None:
    run = InMemoryLoop(fan_out, {"Double": double}, activities_per_step=per_step,
                       batch_size=batch).start(count)
    run.run()
    assert run.status == "Completed"
    assert run.value == sum(n * 2 for n in range(count))
    scheduled = [e for e in run.history if e["EventType"] == EventType.TaskScheduled]
    assert [e["EventId"] for e in scheduled] == list(range(count))
    # all of them in the first episode, before its OrchestratorCompleted
    assert kinds(run.history[:count + 3]) == ["OrchestratorStarted", "ExecutionStarted",
                                              *["TaskScheduled"] * count,
                                              "OrchestratorCompleted"]
    completed = [e for e in run.history if e["EventType"] == EventType.TaskCompleted]
    assert sorted(e["TaskScheduledId"] for e in completed) == list(range(count))


def test_duplicate_and_reordered_replies_are_absorbed() -> None:
    run = InMemoryLoop(fan_out, {"Double": double}, activities_per_step=None,
                       duplicate_replies=True, reverse=True, batch_size=7).start(20)
    run.run()
    assert run.status == "Completed"
    assert run.value == sum(n * 2 for n in range(20))
    assert run.discarded == 20
    completed = [e["TaskScheduledId"] for e in run.history
                 if e["EventType"] == EventType.TaskCompleted]
    assert sorted(completed) == list(range(20))


def test_a_reply_that_beats_the_checkpoint_is_retried() -> None:
    run = InMemoryLoop(hello_cities, {"Hello": say_hello}).start(["Tokyo", "Paris"])
    # the reply to task 1 arrives before the episode that schedules it is committed
    run.send(history.task_completed(1, '"early Paris"', T0))
    run.run()
    assert run.status == "Completed"
    assert run.value == ["Hello Tokyo!", "early Paris"]
    assert run.deferred >= 1
    # the real reply, produced later, is then a duplicate
    assert run.discarded == 1


def first_of_two(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    fast = context.call_activity("Hello", "fast")
    slow = context.call_activity("Hello", "slow")
    winner = yield context.task_any([fast, slow])
    return winner.result


def test_task_any_returns_the_first_and_ends_when_all_are_done() -> None:
    run = InMemoryLoop(first_of_two, {"Hello": say_hello}).start()
    run.run_orchestrator()
    assert [m["Name"] for m in run.work] == ["Hello", "Hello"]
    run.run_activities()   # "fast" replies
    run.run_orchestrator()
    assert run.status == "Running"  # "slow" is still open
    run.run()
    assert run.status == "Completed"
    assert run.value == "Hello fast!"
    assert kinds(run.history)[-4:] == ["OrchestratorStarted", "TaskCompleted",
                                       "ExecutionCompleted", "OrchestratorCompleted"]


def raises(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    yield context.call_activity("Hello", "x")
    raise ValueError("the orchestrator gave up")


def test_an_orchestrator_that_raises_fails() -> None:
    run = InMemoryLoop(raises, {"Hello": say_hello}).start()
    run.run()
    assert run.status == "Failed"
    assert run.value == "Orchestrator function 'Orch' failed: the orchestrator gave up"
    assert run.history[-2]["OrchestrationStatus"] == OrchestrationStatus.Failed


def recovers(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    try:
        yield context.call_activity("Explode", "no fuel")
    except Exception as exc:
        context.set_custom_status("recovered")
        first_line = str(exc).splitlines()[0]
        return (yield context.call_activity("Hello", first_line.strip()))
    return "unreachable"


def test_an_activity_failure_can_be_caught() -> None:
    run = InMemoryLoop(recovers, {"Explode": explode, "Hello": say_hello}).start()
    run.run()
    assert run.status == "Completed"
    assert run.value == "Hello Activity function 'Explode' failed: ActivityError: no fuel!"
    assert run.custom_status == '"recovered"'
    assert "TaskFailed" in kinds(run.history)


def uncaught(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    yield context.call_activity("Explode", "bang")
    return "unreachable"


def test_an_uncaught_activity_failure_fails_the_instance() -> None:
    run = InMemoryLoop(uncaught, {"Explode": explode}).start()
    run.run()
    assert run.status == "Failed"
    assert run.value.startswith(
        "Orchestrator function 'Orch' failed: Activity function 'Explode' failed: "
        "ActivityError: bang \n {")


def progress(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    context.set_custom_status({"done": 0})
    first = yield context.call_activity("Double", 1)
    context.set_custom_status({"done": 1})
    second = yield context.call_activity("Double", first)
    context.set_custom_status({"done": 2})
    return second


def test_custom_status_follows_the_code() -> None:
    run = InMemoryLoop(progress, {"Double": double}).start()
    run.run_orchestrator()
    assert run.custom_status == '{"done":0}'
    run.run()
    assert (run.status, run.value, run.custom_status) == ("Completed", 4, '{"done":2}')


def calls_missing(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    return (yield context.call_activity("Missing", None))


def test_an_unknown_activity_fails_with_the_extension_message() -> None:
    run = InMemoryLoop(calls_missing, {"Hello": say_hello}, known=("Hello", "Double")).start()
    run.run()
    assert run.status == "Failed"
    assert run.value == (
        "Orchestrator function 'Orch' failed: The function 'Missing' doesn't exist, is "
        "disabled, or is not an activity function. Additional info: The following are the "
        "known activity functions: 'Hello', 'Double'.")
    assert run.work == []


def sleeps(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    fire_at = context.current_utc_datetime + timedelta(hours=1)
    yield context.create_timer(fire_at)
    return context.current_utc_datetime.isoformat()


def test_a_timer_fires_at_its_time() -> None:
    run = InMemoryLoop(sleeps, {}).start()
    run.run_orchestrator()
    (queued,) = run.control
    assert queued.event["EventType"] == EventType.TimerFired
    assert queued.visible_at == T0 + timedelta(hours=1)  # the first episode's clock
    run.run()
    assert run.status == "Completed"
    assert history.parse_timestamp(run.value) >= queued.visible_at
    assert kinds(run.history)[-6:] == [
        "TimerCreated", "OrchestratorCompleted", "OrchestratorStarted", "TimerFired",
        "ExecutionCompleted", "OrchestratorCompleted"]


def with_timeout(cancel: bool) -> Orchestrator:
    def orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        deadline = context.create_timer(context.current_utc_datetime + timedelta(days=1))
        work = context.call_activity("Hello", "quick")
        winner = yield context.task_any([work, deadline])
        if cancel:
            deadline.cancel()
        return winner.result if winner == work else "timed out"
    return orchestrator


def test_a_cancelled_timeout_lets_the_instance_complete() -> None:
    run = InMemoryLoop(with_timeout(cancel=True), {"Hello": say_hello}).start()
    run.run()
    assert (run.status, run.value) == ("Completed", "Hello quick!")
    # nobody waited for the day-long timer; its late message is dropped
    assert history.parse_timestamp(run.history[-2]["Timestamp"]) < at(3600)
    assert run.discarded == 1


def test_an_uncancelled_timeout_keeps_the_instance_running_until_it_fires() -> None:
    run = InMemoryLoop(with_timeout(cancel=False), {"Hello": say_hello}).start()
    run.run()
    assert (run.status, run.value) == ("Completed", "Hello quick!")
    assert run.now >= at(86400)
    assert kinds(run.history)[-3] == "TimerFired"


def approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    answer = yield context.wait_for_external_event("Approve")
    return {"approved": answer}


def test_external_events_and_termination() -> None:
    run = InMemoryLoop(approval, {}).start()
    run.run()
    assert run.status == "Running"
    run.send(history.event_raised("Approve", json.dumps(True), run.now))
    run.run()
    assert (run.status, run.value) == ("Completed", {"approved": True})

    stopped = InMemoryLoop(approval, {}).start()
    stopped.run()
    stopped.send(history.execution_terminated('"no answer"', stopped.now))
    stopped.send(history.event_raised("Approve", "true", stopped.now))
    stopped.run()
    assert (stopped.status, stopped.value) == ("Terminated", "no answer")
    assert kinds(stopped.history)[-4:] == ["ExecutionTerminated", "EventRaised",
                                           "ExecutionCompleted", "OrchestratorCompleted"]


# --- golden files ---------------------------------------------------------------------


def golden(path: Path, text: str, parsed: bool = False) -> None:
    """Compare with a stored file; FUNCLOCAL_UPDATE_GOLDEN=1 rewrites it."""
    if os.environ.get("FUNCLOCAL_UPDATE_GOLDEN") == "1":
        path.write_text(text + "\n", encoding="utf-8")
    expected = path.read_text(encoding="utf-8").rstrip("\n")
    if parsed:
        assert json.loads(text) == json.loads(expected)
    else:
        assert text == expected
