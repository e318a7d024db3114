"""An instance's history as typed events, and as text for failure messages.

The events are the ones the task hub stores (the Durable Task Framework's history, as
`showHistory` lists them, plus the OrchestratorStarted/Completed markers that delimit
episodes). Payloads are decoded once from their stored JSON text, as the status API's
`historyEvents` show them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.durable.history import (
    EventType,
    OrchestrationStatus,
    event_type,
    json_or_raw,
    parse_timestamp,
)

_FAILURES = (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed)


@dataclass(frozen=True)
class HistoryEvent:
    """One history event of an orchestration instance.

    `type` is the framework's EventType (`EventType.TaskCompleted`...); `timestamp` is
    durable time (virtual in a test environment). The other fields are set where the
    event has them, else None:
    - `name`: the orchestrator (ExecutionStarted), activity (TaskScheduled),
      sub-orchestrator (SubOrchestrationInstanceCreated) or event (EventRaised,
      EventSent);
    - `input`, `result`: payloads, decoded once from their JSON text (an input the
      Python SDK's client sent is JSON text itself: the SDK encodes it before posting);
    - `reason`, `details`: failures, terminations, suspensions;
    - `fire_at`: a timer's due time; `task_id`: the sequence number this event completes
      (TaskScheduledId, TimerId); `instance_id`: a sub-orchestration's or an event's
      target instance; `status`: how an execution ended (ExecutionCompleted);
    - `raw`: the event as stored.
    """

    type: EventType
    timestamp: datetime
    event_id: int = -1
    name: str | None = None
    input: Any = None
    result: Any = None
    reason: str | None = None
    details: str | None = None
    fire_at: datetime | None = None
    task_id: int | None = None
    instance_id: str | None = None
    status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_stored(cls, event: Mapping[str, Any]) -> HistoryEvent:
        """The typed view of a stored event (DTFx JSON shape)."""
        kind = event_type(event)
        fire_at = event.get("FireAt")
        status = event.get("OrchestrationStatus")
        reason = event.get("Reason")
        if kind == EventType.ExecutionTerminated:
            reason = json_or_raw(event.get("Input"))
        task_id = event.get("TaskScheduledId", event.get("TimerId"))
        return cls(
            type=kind,
            timestamp=parse_timestamp(str(event.get("Timestamp"))),
            event_id=int(event.get("EventId", -1)),
            name=event.get("Name"),
            input=json_or_raw(event.get("Input")) if kind != EventType.ExecutionTerminated
            else None,
            result=json_or_raw(event.get("Result")),
            reason=None if reason is None else str(reason),
            details=event.get("Details"),
            fire_at=parse_timestamp(str(fire_at)) if fire_at else None,
            task_id=None if task_id is None else int(task_id),
            instance_id=event.get("InstanceId"),
            status=OrchestrationStatus(status).name
            if isinstance(status, int) and status in OrchestrationStatus._value2member_map_
            else None,
            raw=dict(event))

    def describe(self) -> str:
        """One line: the event, what it names and carries (long values shortened)."""
        parts = [self.type.name]
        if self.event_id >= 0:
            parts.append(f"#{self.event_id}")
        if self.task_id is not None:
            parts.append(f"(of #{self.task_id})")
        if self.name:
            parts.append(repr(self.name))
        if self.instance_id:
            parts.append(f"instance={self.instance_id}")
        if self.fire_at is not None:
            parts.append(f"fire_at={_time(self.fire_at)}")
        if self.status:
            parts.append(f"status={self.status}")
        if self.input is not None:
            parts.append(f"input={_short(self.input)}")
        if self.result is not None:
            parts.append(f"result={_short(self.result)}")
        if self.reason:
            parts.append(f"reason={_short(self.reason, as_json=False)}")
        return " ".join(parts)


def typed(events: Iterable[Mapping[str, Any]]) -> list[HistoryEvent]:
    return [HistoryEvent.from_stored(e) for e in events]


def pending_timers(events: Iterable[HistoryEvent]) -> list[datetime]:
    """Due times of the timers created and not fired yet, earliest first."""
    created: dict[int, datetime] = {}
    for event in events:
        if event.type == EventType.TimerCreated and event.fire_at is not None:
            created[event.event_id] = event.fire_at
        elif event.type == EventType.TimerFired and event.task_id is not None:
            created.pop(event.task_id, None)
    return sorted(created.values())


def format_history(events: Iterable[HistoryEvent], *, indent: str = "  ") -> str:
    """The events as a numbered list, one line each, with their durable time."""
    lines = [f"{indent}{i:>3}  {_time(e.timestamp)}  {e.describe()}"
             for i, e in enumerate(events)]
    return "\n".join(lines) if lines else f"{indent}(no history)"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _short(value: Any, limit: int = 120, *, as_json: bool = True) -> str:
    text = json.dumps(value, default=str) if as_json or not isinstance(value, str) else value
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = ["EventType", "HistoryEvent", "format_history", "pending_timers", "typed"]
