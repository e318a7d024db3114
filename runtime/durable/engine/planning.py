"""Planning an orchestration work item: which incoming messages an episode consumes,
drops or puts back (pure).

Follows DurableTask.Core's dispatcher and DurableTask.AzureStorage's session handling:
a first ExecutionStarted opens the history; a new start may reuse the id of a finished
instance (the new history is then written over the old from row 0); completions already
in history are duplicates; a completion whose scheduling event is not in history yet is
out of order and retried later (the sender's checkpoint may still be landing); anything
for a finished execution is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.durable import history
from runtime.durable.engine import entities
from runtime.durable.engine.model import Episode
from runtime.durable.history import EventType

# A completion event names its scheduling event through this field.
COMPLETIONS: dict[EventType, tuple[str, EventType]] = {
    EventType.TaskCompleted: ("TaskScheduledId", EventType.TaskScheduled),
    EventType.TaskFailed: ("TaskScheduledId", EventType.TaskScheduled),
    EventType.SubOrchestrationInstanceCompleted:
        ("TaskScheduledId", EventType.SubOrchestrationInstanceCreated),
    EventType.SubOrchestrationInstanceFailed:
        ("TaskScheduledId", EventType.SubOrchestrationInstanceCreated),
    EventType.TimerFired: ("TimerId", EventType.TimerCreated),
}
SCHEDULING = frozenset(kind for _, kind in COMPLETIONS.values())


@dataclass
class Ledger:
    """Scheduling events (id -> event) and completed ids of one execution."""

    scheduled: dict[int, dict[str, Any]] = field(default_factory=dict)
    completed: set[tuple[EventType, int]] = field(default_factory=set)

    def record(self, event: Mapping[str, Any]) -> None:
        kind = history.event_type(event)
        if kind in SCHEDULING:
            self.scheduled[int(event["EventId"])] = dict(event)
        elif kind in COMPLETIONS:
            id_field, scheduled_kind = COMPLETIONS[kind]
            self.completed.add((scheduled_kind, int(event[id_field])))

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> Ledger:
        ledger = cls()
        for event in events:
            ledger.record(event)
        return ledger


def find(events: Iterable[Mapping[str, Any]], kind: EventType) -> dict[str, Any] | None:
    """The first event of `kind`, or None."""
    for event in events:
        if history.event_type(event) == kind:
            return dict(event)
    return None


def execution_id_of(start: Mapping[str, Any] | None) -> str | None:
    """The ExecutionId an ExecutionStarted event names."""
    if start is None:
        return None
    instance = start.get("OrchestrationInstance") or {}
    value = instance.get("ExecutionId")
    return str(value) if value is not None else None


def has_ended(events: Iterable[Mapping[str, Any]]) -> bool:
    return any(history.event_type(e) in history.END_OF_EXECUTION for e in events)


def is_stale(event: Mapping[str, Any], message_execution_id: str | None,
             current_execution_id: str | None) -> bool:
    """True for a message addressed to an execution that has since been replaced (the id
    was reused, or the instance continued as new): such replies are dropped. Messages
    without an execution id, and new starts, are never stale."""
    if current_execution_id is None or not message_execution_id \
            or message_execution_id == current_execution_id:
        return False
    return event.get("EventType") != EventType.ExecutionStarted


def _entity_calls(events: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The request ids of the entity calls in `events`, and those already answered."""
    sent: set[str] = set()
    answered: set[str] = set()
    for event in events:
        kind = event.get("EventType")
        if kind == EventType.EventSent:
            request_id = entities.sent_request_id(event.get("Input"))
            if request_id is not None:
                sent.add(request_id)
        elif kind == EventType.EventRaised and entities.is_response(event):
            answered.add(str(event.get("Name")))
    return sent, answered


def instance_version(episode: Episode) -> str:
    """The version the instance was started with (its ExecutionStarted's Version)."""
    start = find(episode.all_events, EventType.ExecutionStarted) or {}
    return str(start.get("Version") or "")


def _as_new(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    copy = dict(event)
    copy["IsPlayed"] = False
    copy.setdefault("EventId", -1)
    if not copy.get("Timestamp"):
        copy["Timestamp"] = history.format_timestamp(now)
    return copy


def plan_episode(instance_id: str, past_events: list[dict[str, Any]],
                 incoming: list[dict[str, Any]], now: datetime) -> Episode:
    """Decide which incoming messages this episode consumes, drops or puts back.

    `past_events` is the current execution's stored history; `incoming` the events of the
    received messages in queue order. Neither is modified.
    """
    past = list(past_events)
    start = find(past, EventType.ExecutionStarted)
    ended = has_ended(past)
    ledger = Ledger.of(past)
    new_start: dict[str, Any] | None = None
    appended: list[dict[str, Any]] = []
    discarded: list[int] = []
    deferred: list[int] = []
    refused: list[dict[str, Any]] = []
    terminated_reason: str | None = None
    calls: tuple[set[str], set[str]] | None = None  # entity request ids sent, answered

    for index, event in enumerate(incoming):
        kind = history.event_type(event)
        if kind == EventType.ExecutionStarted:
            if start is None or (ended and new_start is None
                                 and execution_id_of(event) != execution_id_of(start)):
                # A first start, or a new execution reusing the id of a finished one:
                # DTFx then writes the new history over the old from row 0.
                start = new_start = _as_new(event, now)
                past, ended, ledger, appended = [], False, Ledger(), []
            else:
                discarded.append(index)  # a duplicate, or stale while another runs
                if (not ended and event.get("ParentInstance")
                        and execution_id_of(event) != execution_id_of(start)):
                    # A parent starts a child whose id a running instance holds: the
                    # parent hears why, the running instance is left alone.
                    refused.append(dict(event))
            continue
        if start is None or ended:
            discarded.append(index)
            continue
        if kind in COMPLETIONS:
            id_field, scheduled_kind = COMPLETIONS[kind]
            task_id = int(event[id_field])
            scheduling = ledger.scheduled.get(task_id)
            if (scheduled_kind, task_id) in ledger.completed:
                discarded.append(index)
            elif scheduling is None:
                # The sender's checkpoint may not have landed yet: retry later.
                deferred.append(index)
            elif history.event_type(scheduling) != scheduled_kind:
                discarded.append(index)
            else:
                ledger.completed.add((scheduled_kind, task_id))
                appended.append(_as_new(event, now))
            continue
        if kind == EventType.EventRaised and entities.is_response(event):
            # An entity's answer: once only, and only after the call is in history.
            calls = calls if calls is not None else _entity_calls(past + appended)
            name = str(event.get("Name"))
            if name in calls[1]:
                discarded.append(index)
            elif name not in calls[0]:
                deferred.append(index)
            else:
                calls[1].add(name)
                appended.append(_as_new(event, now))
            continue
        if kind == EventType.ExecutionTerminated and terminated_reason is None:
            reason = event.get("Input")
            terminated_reason = "" if reason is None else str(reason)
        appended.append(_as_new(event, now))

    if terminated_reason is not None:
        # The instance ends now; late replies would only be dropped on their next try.
        discarded = sorted(discarded + deferred)
        deferred = []

    new_events: list[dict[str, Any]] = []
    if start is not None and (new_start is not None or appended):
        new_events = [history.orchestrator_started(now)]
        if new_start is not None:
            new_events.append(new_start)
        new_events.extend(appended)
    input_text = start.get("Input") if start is not None else None
    return Episode(
        instance_id=instance_id,
        execution_id=execution_id_of(start),
        past_events=past,
        new_events=new_events,
        discarded=discarded,
        deferred=deferred,
        needs_replay=bool(new_events) and terminated_reason is None,
        terminated_reason=terminated_reason,
        orchestrator_name=str(start.get("Name") or "") if start is not None else "",
        input_text=None if input_text is None else str(input_text),
        refused_starts=refused,
    )


__all__ = ["COMPLETIONS", "SCHEDULING", "Ledger", "execution_id_of", "find", "has_ended",
           "instance_version", "is_stale", "plan_episode"]
