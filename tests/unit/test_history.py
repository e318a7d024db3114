from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.durable_functions.models.history import HistoryEvent, HistoryEventType

from runtime.durable import history
from runtime.durable.history import EventType, OrchestrationStatus

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
T0_TEXT = "2024-05-01T12:00:00.1234560Z"
T1 = T0 + timedelta(seconds=1)
T1_TEXT = "2024-05-01T12:00:01.1234560Z"

# The keys of the events in the extension's captured context (host-protocol.md 2.4).
CAPTURED = json.loads("""[
 {"EventType":12,"EventId":-1,"IsPlayed":false,"Timestamp":"2019-12-08T23:18:41.3240927Z"},
 {"OrchestrationInstance":{"InstanceId":"48d0","ExecutionId":"fd18"},"EventType":0,
  "ParentInstance":null,"Name":"HelloSeq","Version":"","Input":"null","Tags":null,
  "EventId":-1,"IsPlayed":true,"Timestamp":"2019-12-08T23:18:41.3240927Z"},
 {"EventType":4,"Name":"Hello","Version":"","Input":null,"EventId":0,"IsPlayed":false,
  "Timestamp":"2019-12-08T23:18:41.3240927Z"},
 {"EventType":13,"EventId":-1,"IsPlayed":false,"Timestamp":"2019-12-08T23:18:41.3240927Z"},
 {"EventType":5,"TaskScheduledId":0,"Result":"\\"Hello Tokyo!\\"","EventId":-1,
  "IsPlayed":false,"Timestamp":"2019-12-08T23:18:41.3240927Z"}
]""")


# --- enums ----------------------------------------------------------------------------


def test_event_types_match_the_sdk() -> None:
    for sdk_type in HistoryEventType:
        assert EventType(sdk_type.value).value == sdk_type.value
    assert [EventType.ExecutionStarted.value, EventType.ExecutionResumed.value,
            EventType.ExecutionRewound.value] == [0, 20, 21]
    assert EventType(12).name == "OrchestratorStarted"


def test_orchestration_status_values_are_dtfx() -> None:
    assert [(s.name, s.value) for s in OrchestrationStatus] == [
        ("Running", 0), ("Completed", 1), ("ContinuedAsNew", 2), ("Failed", 3),
        ("Canceled", 4), ("Terminated", 5), ("Pending", 6), ("Suspended", 7)]


# --- timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (T0, T0_TEXT),
    (datetime(2024, 5, 1, 12, 0, 0), "2024-05-01T12:00:00.0000000Z"),  # naive means UTC
    (datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
     "2024-05-01T12:00:00.0000050Z"),
    (datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
     "1999-12-31T23:59:59.9999990Z"),
])
def test_format_timestamp(value: datetime, text: str) -> None:
    assert history.format_timestamp(value) == text


@pytest.mark.parametrize(("text", "value"), [
    (T0_TEXT, T0),
    ("2019-12-08T23:18:41.3240927Z", datetime(2019, 12, 8, 23, 18, 41, 324092,
                                               tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00.123456Z", T0),     # the SDK's %f form (fireAt)
    ("2024-05-01T12:00:00.1Z", T0.replace(microsecond=100000)),
    ("2024-05-01T12:00:00Z", T0.replace(microsecond=0)),
    ("2024-05-01T12:00:00", T0.replace(microsecond=0)),
    ("2024-05-01T12:00:00+00:00", T0.replace(microsecond=0)),
    ("2024-05-01T07:00:00.5-05:00", T0.replace(microsecond=500000)),
    ("2024-05-01T13:30:00+0130", T0.replace(microsecond=0)),
])
def test_parse_timestamp(text: str, value: datetime) -> None:
    parsed = history.parse_timestamp(text)
    assert parsed == value
    assert parsed.tzinfo == timezone.utc


@pytest.mark.parametrize("text", ["", "yesterday", "2024-05-01", "2024-05-01T12:00:00Zulu",
                                  "2024-13-01T12:00:00Z"])
def test_parse_timestamp_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        history.parse_timestamp(text)


def test_timestamps_round_trip() -> None:
    assert history.parse_timestamp(history.format_timestamp(T0)) == T0
    assert history.format_timestamp(history.parse_timestamp(T0_TEXT)) == T0_TEXT


# --- constructors ---------------------------------------------------------------------


def _base(event_type: int, event_id: int = -1) -> dict[str, Any]:
    return {"EventId": event_id, "IsPlayed": False, "Timestamp": T0_TEXT,
            "EventType": event_type}


CONSTRUCTED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (history.execution_started("i1", "e1", "Orch", '"x"', T0),
     {**_base(0), "OrchestrationInstance": {"InstanceId": "i1", "ExecutionId": "e1"},
      "ParentInstance": None, "Name": "Orch", "Version": "", "Input": '"x"', "Tags": None,
      "Correlation": None, "ScheduledStartTime": None, "Generation": None}),
    (history.execution_started("i1", "e1", "Orch", None, T0, version="2",
                               scheduled_start_time=T1, generation=3),
     {**_base(0), "OrchestrationInstance": {"InstanceId": "i1", "ExecutionId": "e1"},
      "ParentInstance": None, "Name": "Orch", "Version": "2", "Input": None, "Tags": None,
      "Correlation": None, "ScheduledStartTime": T1_TEXT, "Generation": 3}),
    (history.execution_completed(OrchestrationStatus.Completed, "[1]", T0),
     {**_base(1), "OrchestrationStatus": 1, "Result": "[1]", "FailureDetails": None}),
    (history.execution_completed(OrchestrationStatus.Failed, '"x"', T0, event_id=4),
     {**_base(1, 4), "OrchestrationStatus": 3, "Result": '"x"', "FailureDetails": None}),
    (history.execution_terminated('"bye"', T0), {**_base(3), "Input": '"bye"'}),
    (history.execution_suspended("r", T0), {**_base(19), "Reason": "r"}),
    (history.execution_resumed(None, T0), {**_base(20), "Reason": None}),
    (history.orchestrator_started(T0), _base(12)),
    (history.orchestrator_completed(T0), _base(13)),
    (history.task_scheduled(3, "Hello", '"Tokyo"', T0),
     {**_base(4, 3), "Name": "Hello", "Version": "", "Input": '"Tokyo"'}),
    (history.task_completed(3, '"Hi"', T0),
     {**_base(5), "TaskScheduledId": 3, "Result": '"Hi"'}),
    (history.task_failed(3, "boom", '{"Message":"boom"}', T0),
     {**_base(6), "TaskScheduledId": 3, "Reason": "boom", "Details": '{"Message":"boom"}'}),
    (history.sub_orchestration_created(2, "Child", "c1", "null", T0),
     {**_base(7, 2), "Name": "Child", "Version": "", "InstanceId": "c1", "Input": "null"}),
    (history.sub_orchestration_completed(2, "1", T0),
     {**_base(8), "TaskScheduledId": 2, "Result": "1"}),
    (history.sub_orchestration_failed(2, "r", "d", T0),
     {**_base(9), "TaskScheduledId": 2, "Reason": "r", "Details": "d"}),
    (history.timer_created(1, T1, T0), {**_base(10, 1), "FireAt": T1_TEXT}),
    (history.timer_fired(1, T1, T0), {**_base(11), "TimerId": 1, "FireAt": T1_TEXT}),
    (history.event_raised("go", '{"a":1}', T0),
     {**_base(15), "Name": "go", "Input": '{"a":1}'}),
    (history.event_sent(5, "@counter@k", "op", "{}", T0),
     {**_base(14, 5), "InstanceId": "@counter@k", "Name": "op", "Input": "{}"}),
    (history.continue_as_new(6, '"next"', T0),
     {**_base(16, 6), "OrchestrationStatus": 2, "Result": '"next"', "FailureDetails": None}),
]


@pytest.mark.parametrize(("event", "expected"), CONSTRUCTED)
def test_constructors_build_dtfx_json(event: dict[str, Any], expected: dict[str, Any]) -> None:
    assert event == expected
    assert next(iter(event)) == "EventType"
    assert list(event)[-3:] == ["EventId", "IsPlayed", "Timestamp"]
    assert json.loads(json.dumps(event)) == event


@pytest.mark.parametrize(("event", "expected"), CONSTRUCTED)
def test_the_sdk_reads_every_constructed_event(event: dict[str, Any],
                                               expected: dict[str, Any]) -> None:
    parsed = HistoryEvent(**event)
    assert parsed.event_type == event["EventType"]
    assert parsed.event_id == event["EventId"]
    assert parsed.timestamp == T0


def test_constructors_have_the_captured_field_sets() -> None:
    made = [history.orchestrator_started(T0),
            history.execution_started("48d0", "fd18", "HelloSeq", "null", T0),
            history.task_scheduled(0, "Hello", None, T0),
            history.orchestrator_completed(T0),
            history.task_completed(0, '"Hello Tokyo!"', T0)]
    for ours, captured in zip(made, CAPTURED, strict=True):
        # ExecutionStarted carries newer DTFx fields on top of the 2019 capture.
        assert set(captured) <= set(ours)
        extra = set(ours) - set(captured)
        assert extra <= {"Correlation", "ScheduledStartTime", "Generation"}
        for key in captured:
            if key not in ("IsPlayed", "Timestamp"):
                assert ours[key] == captured[key], key


def test_event_type_reads_ints_and_enums() -> None:
    assert history.event_type({"EventType": 5}) is EventType.TaskCompleted
    with pytest.raises(ValueError):
        history.event_type({"EventType": 99})


@pytest.mark.parametrize(("text", "value"), [
    (None, None), ('"a"', "a"), ("[1, 2]", [1, 2]), ("  {\"a\": null} ", {"a": None}),
    ("not json", "not json"), ("  padded  ", "padded"), ("", ""), ("null", None),
])
def test_json_or_raw(text: str | None, value: Any) -> None:
    assert history.json_or_raw(text) == value


# --- status history -------------------------------------------------------------------


def _chain_history() -> list[dict[str, Any]]:
    t = [T0 + timedelta(seconds=n) for n in range(4)]
    return [
        history.orchestrator_started(t[0]),
        history.execution_started("i1", "e1", "Orch", '"in"', t[0]),
        history.task_scheduled(0, "Hello", None, t[0]),
        history.timer_created(1, t[3], t[0]),
        history.orchestrator_completed(t[0]),
        history.orchestrator_started(t[1]),
        history.task_completed(0, '"Hello Tokyo!"', t[1]),
        history.task_scheduled(2, "Fails", '"x"', t[1]),
        history.orchestrator_completed(t[1]),
        history.orchestrator_started(t[2]),
        history.event_raised("go", '{"a":1}', t[2]),
        history.task_failed(2, "Activity function 'Fails' failed: ValueError: no", "{}", t[2]),
        history.task_scheduled(3, "Pending", None, t[2]),
        history.orchestrator_completed(t[2]),
        history.orchestrator_started(t[3]),
        history.timer_fired(1, t[3], t[3]),
        history.execution_completed(OrchestrationStatus.Completed, '["Hello Tokyo!"]', t[3],
                                    event_id=4),
        history.orchestrator_completed(t[3]),
    ]


def _ts(n: int) -> str:
    return history.format_timestamp(T0 + timedelta(seconds=n))


def test_status_history_shapes_like_the_extension() -> None:
    assert history.to_status_history(_chain_history(), show_output=False) == [
        # Input at the top-level input's encoding level (the stored text re-parsed).
        {"EventType": "ExecutionStarted", "Input": "in", "Correlation": None,
         "ScheduledStartTime": None, "Generation": None, "Timestamp": _ts(0),
         "FunctionName": "Orch"},
        {"EventType": "TimerCreated", "FireAt": _ts(3), "Timestamp": _ts(0)},
        {"EventType": "TaskCompleted", "Timestamp": _ts(1), "ScheduledTime": _ts(0),
         "FunctionName": "Hello", "Input": None},
        {"EventType": "EventRaised", "Name": "go", "Input": '{"a":1}', "Timestamp": _ts(2)},
        {"EventType": "TaskFailed",
         "Reason": "Activity function 'Fails' failed: ValueError: no", "Details": "{}",
         "Timestamp": _ts(2), "ScheduledTime": _ts(1), "FunctionName": "Fails",
         "Input": '"x"'},
        # A task still running keeps its TaskScheduled entry.
        {"EventType": "TaskScheduled", "Name": "Pending", "Input": None, "Timestamp": _ts(2)},
        {"EventType": "TimerFired", "FireAt": _ts(3), "Timestamp": _ts(3)},
        {"EventType": "ExecutionCompleted", "OrchestrationStatus": "Completed",
         "FailureDetails": None, "Timestamp": _ts(3)},
    ]


def test_status_history_with_output_parses_results() -> None:
    items = history.to_status_history(_chain_history(), show_output=True)
    completed = [i for i in items if i["EventType"] == "TaskCompleted"]
    assert completed[0]["Result"] == "Hello Tokyo!"
    assert items[-1]["Result"] == ["Hello Tokyo!"]
    failed = [i for i in items if i["EventType"] == "TaskFailed"]
    assert "Result" not in failed[0]


def test_status_history_without_input() -> None:
    items = history.to_status_history(_chain_history(), show_output=False, show_input=False)
    assert all("Input" not in item for item in items)
    assert items[0]["FunctionName"] == "Orch"


def test_status_history_does_not_touch_its_input() -> None:
    events = _chain_history()
    before = json.dumps(events)
    history.to_status_history(events, show_output=True)
    assert json.dumps(events) == before


def test_status_history_of_a_failed_instance() -> None:
    events = [history.orchestrator_started(T0),
              history.execution_started("i1", "e1", "Orch", "null", T0),
              history.execution_completed(OrchestrationStatus.Failed,
                                          '"Orchestrator function \'Orch\' failed: boom"', T0),
              history.orchestrator_completed(T0)]
    items = history.to_status_history(events, show_output=True)
    assert items[-1]["OrchestrationStatus"] == "Failed"
    assert items[-1]["Result"] == "Orchestrator function 'Orch' failed: boom"
