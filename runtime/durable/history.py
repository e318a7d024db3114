"""History events in the DTFx JSON shape (pure).

An event is a plain dict exactly as Newtonsoft serializes a DurableTask.Core HistoryEvent
for the orchestration trigger context: PascalCase keys, integer `EventType`, nulls
included, `EventId` (-1 unless the event schedules work), `IsPlayed` and `Timestamp`.
Payload fields (Input, Result) hold JSON *text*.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    """DurableTask.Core `EventType`; member names are the names DTFx prints."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


class OrchestrationStatus(IntEnum):
    """DurableTask.Core `OrchestrationStatus` (ExecutionCompleted.OrchestrationStatus)."""

    Running = 0
    Completed = 1
    ContinuedAsNew = 2
    Failed = 3
    Canceled = 4
    Terminated = 5
    Pending = 6
    Suspended = 7


# Events that end an execution: nothing may be appended after one of them.
END_OF_EXECUTION = frozenset({EventType.ExecutionCompleted, EventType.ExecutionFailed,
                              EventType.ExecutionTerminated, EventType.ContinueAsNew})


# --- timestamps -----------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$")


def format_timestamp(dt: datetime) -> str:
    """.NET round-trip style UTC time: 7 fraction digits and `Z` (naive means UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond:06d}0Z"


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (any fraction length; no zone means UTC)."""
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    # Python keeps microseconds; .NET's 7th digit (100 ns) is dropped, not rounded.
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                     micros, tzinfo=tz)
    return value.astimezone(timezone.utc)


def readable_time(value: Any) -> str:
    """A time as people read it: `2026-05-01 12:00:00Z`, from a datetime (naive means UTC)
    or history text; "" for None or "", other values (text that is not a time) as they
    are. Used by the console, `instances why` and the CLI's tables."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = parse_timestamp(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return str(moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"))
    return str(value)


# --- constructors ---------------------------------------------------------------------


def _event(event_type: EventType, fields: Mapping[str, Any], ts: datetime,
           event_id: int = -1) -> dict[str, Any]:
    event: dict[str, Any] = {"EventType": int(event_type)}
    event.update(fields)
    event["EventId"] = event_id
    event["IsPlayed"] = False
    event["Timestamp"] = format_timestamp(ts)
    return event


def execution_started(instance_id: str, execution_id: str, name: str, input_text: str | None,
                      ts: datetime, parent_instance: dict[str, Any] | None = None,
                      version: str = "", scheduled_start_time: datetime | None = None,
                      generation: int | None = None) -> dict[str, Any]:
    return _event(EventType.ExecutionStarted, {
        "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
        "ParentInstance": parent_instance,
        "Name": name,
        # The SDK reads Version unconditionally; it must be present even when empty.
        "Version": version,
        "Input": input_text,
        "Tags": None,
        "Correlation": None,
        "ScheduledStartTime": (format_timestamp(scheduled_start_time)
                               if scheduled_start_time is not None else None),
        "Generation": generation,
    }, ts)


def execution_completed(status: OrchestrationStatus, result_text: str | None, ts: datetime,
                        failure_details: dict[str, Any] | None = None,
                        event_id: int = -1) -> dict[str, Any]:
    return _event(EventType.ExecutionCompleted, {
        "OrchestrationStatus": int(status),
        "Result": result_text,
        "FailureDetails": failure_details,
    }, ts, event_id)


def execution_terminated(reason_text: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.ExecutionTerminated, {"Input": reason_text}, ts)


def execution_suspended(reason: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.ExecutionSuspended, {"Reason": reason}, ts)


def execution_resumed(reason: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.ExecutionResumed, {"Reason": reason}, ts)


def orchestrator_started(ts: datetime) -> dict[str, Any]:
    return _event(EventType.OrchestratorStarted, {}, ts)


def orchestrator_completed(ts: datetime) -> dict[str, Any]:
    return _event(EventType.OrchestratorCompleted, {}, ts)


def task_scheduled(event_id: int, name: str, input_text: str | None,
                   ts: datetime) -> dict[str, Any]:
    return _event(EventType.TaskScheduled,
                  {"Name": name, "Version": "", "Input": input_text}, ts, event_id)


def task_completed(scheduled_id: int, result_text: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.TaskCompleted,
                  {"TaskScheduledId": scheduled_id, "Result": result_text}, ts)


def task_failed(scheduled_id: int, reason: str | None, details: str | None,
                ts: datetime) -> dict[str, Any]:
    return _event(EventType.TaskFailed,
                  {"TaskScheduledId": scheduled_id, "Reason": reason, "Details": details}, ts)


def sub_orchestration_created(event_id: int, name: str, instance_id: str,
                              input_text: str | None, ts: datetime,
                              version: str = "") -> dict[str, Any]:
    return _event(EventType.SubOrchestrationInstanceCreated, {
        "Name": name, "Version": version, "InstanceId": instance_id, "Input": input_text,
    }, ts, event_id)


def parent_instance(instance_id: str, execution_id: str, name: str, version: str,
                    task_schedule_id: int) -> dict[str, Any]:
    """A child's ParentInstance (DTFx ParentInstance: note `TaskScheduleId`, no "d")."""
    return {"Name": name, "OrchestrationInstance": {"InstanceId": instance_id,
                                                    "ExecutionId": execution_id},
            "TaskScheduleId": task_schedule_id, "Version": version}


def generic_event(event_id: int, data: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.GenericEvent, {"Data": data}, ts, event_id)


def sub_orchestration_completed(scheduled_id: int, result_text: str | None,
                                ts: datetime) -> dict[str, Any]:
    return _event(EventType.SubOrchestrationInstanceCompleted,
                  {"TaskScheduledId": scheduled_id, "Result": result_text}, ts)


def sub_orchestration_failed(scheduled_id: int, reason: str | None, details: str | None,
                             ts: datetime) -> dict[str, Any]:
    return _event(EventType.SubOrchestrationInstanceFailed,
                  {"TaskScheduledId": scheduled_id, "Reason": reason, "Details": details}, ts)


def timer_created(event_id: int, fire_at: datetime, ts: datetime) -> dict[str, Any]:
    return _event(EventType.TimerCreated, {"FireAt": format_timestamp(fire_at)}, ts, event_id)


def timer_fired(timer_id: int, fire_at: datetime, ts: datetime) -> dict[str, Any]:
    return _event(EventType.TimerFired,
                  {"TimerId": timer_id, "FireAt": format_timestamp(fire_at)}, ts)


def event_raised(name: str, input_text: str | None, ts: datetime) -> dict[str, Any]:
    return _event(EventType.EventRaised, {"Name": name, "Input": input_text}, ts)


def event_sent(event_id: int, instance_id: str, name: str, input_text: str | None,
               ts: datetime) -> dict[str, Any]:
    return _event(EventType.EventSent,
                  {"InstanceId": instance_id, "Name": name, "Input": input_text}, ts, event_id)


def continue_as_new(event_id: int, result_text: str | None, ts: datetime) -> dict[str, Any]:
    # DTFx's ContinueAsNewEvent is an ExecutionCompletedEvent with its own type.
    return _event(EventType.ContinueAsNew, {
        "OrchestrationStatus": int(OrchestrationStatus.ContinuedAsNew),
        "Result": result_text,
        "FailureDetails": None,
    }, ts, event_id)


# --- reading --------------------------------------------------------------------------


_EVENT_TYPES = {int(member): member for member in EventType}


def event_type(event: Mapping[str, Any]) -> EventType:
    """The event's EventType (KeyError for an unknown number)."""
    value = event["EventType"]
    try:
        return _EVENT_TYPES[value]
    except (KeyError, TypeError):
        return EventType(int(value))


def json_or_raw(text: str | None) -> Any:
    """A stored payload as the status API shows it: parsed JSON, else the trimmed text."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text


def to_status_history(events: Iterable[Mapping[str, Any]], show_output: bool,
                      show_input: bool = True) -> list[dict[str, Any]]:
    """The `historyEvents` array of the instance status API.

    Mirrors the extension's DurableClient: EventType becomes its name; EventId, IsPlayed
    and the OrchestratorStarted/Completed markers go; a completion absorbs its scheduling
    event (FunctionName, ScheduledTime, and Input when shown); outputs appear, re-parsed,
    only when asked for.
    """
    items: list[dict[str, Any]] = []
    scheduling: dict[tuple[EventType, Any], int] = {}
    absorbed: set[int] = set()
    for event in events:
        kind = event_type(event)
        if kind in (EventType.OrchestratorStarted, EventType.OrchestratorCompleted):
            continue
        item = dict(event)
        item["EventType"] = kind.name
        if kind in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated):
            scheduling[(kind, event.get("EventId"))] = len(items)
            item.pop("Version", None)
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed,
                      EventType.SubOrchestrationInstanceCompleted,
                      EventType.SubOrchestrationInstanceFailed):
            scheduled_kind = (EventType.TaskScheduled
                              if kind in (EventType.TaskCompleted, EventType.TaskFailed)
                              else EventType.SubOrchestrationInstanceCreated)
            index = scheduling.get((scheduled_kind, event.get("TaskScheduledId")))
            if index is not None:
                source = items[index]
                item["ScheduledTime"] = source.get("Timestamp")
                item["FunctionName"] = source.get("Name")
                if show_input:
                    item["Input"] = source.get("Input")
                absorbed.add(index)
            item.pop("TaskScheduledId", None)
            _result(item, show_output and kind in (EventType.TaskCompleted,
                                                   EventType.SubOrchestrationInstanceCompleted))
        elif kind == EventType.ExecutionStarted:
            name = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
            item["FunctionName"] = name
            # At the encoding level of the status's top-level "input".
            item["Input"] = json_or_raw(item.get("Input"))
        elif kind == EventType.ExecutionCompleted:
            status = item.get("OrchestrationStatus")
            if isinstance(status, int) and status in OrchestrationStatus._value2member_map_:
                item["OrchestrationStatus"] = OrchestrationStatus(status).name
            _result(item, show_output)
        elif kind == EventType.TimerFired:
            item.pop("TimerId", None)
        if not show_input:
            item.pop("Input", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
        items.append(item)
    return [item for index, item in enumerate(items) if index not in absorbed]


def _result(item: dict[str, Any], show: bool) -> None:
    if show:
        if "Result" in item:
            item["Result"] = json_or_raw(item["Result"])
    else:
        item.pop("Result", None)
