"""Why is an instance not finishing? A pure reading of what storage and the hosts show.

Given an instance's row and history, the messages waiting for it, who holds its
partition, what the running hosts and the app in the current folder know, and what a
replay of its code waits for, `explain` says in a sentence or two what the instance is
waiting on, with the fix when there is one. Each finding is a `Reason` with a kind that
tools can test (`event`, `timer`, `activity`, `sub-orchestration`, `entity`,
`suspended`, `pending`, `messages`, `no-host`, `unknown-function`, `shared-hub`,
`code-changed`, `unknown`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.durable import history
from runtime.durable.engine import entities
from runtime.durable.engine.planning import COMPLETIONS
from runtime.durable.engine.suspension import is_suspended, last_marker
from runtime.durable.history import EventType

WAITING_STATES = frozenset({"Pending", "Running", "Suspended"})


@dataclass(frozen=True)
class HostInfo:
    """A host that holds partitions of the hub (a lease owner): where it runs and, when
    it could be asked, the durable functions its app has (lower-cased names)."""

    owner: str  # the lease's owner id: "machine:port:app folder"
    partitions: tuple[int, ...]
    orchestrators: frozenset[str] | None = None  # None: unknown (host not reachable)
    activities: frozenset[str] | None = None

    @property
    def app_folder(self) -> str:
        parts = self.owner.split(":", 2)
        return parts[2] if len(parts) == 3 else ""

    @property
    def address(self) -> str:
        parts = self.owner.split(":", 2)
        return ":".join(parts[:2]) if len(parts) == 3 else self.owner


@dataclass(frozen=True)
class QueuedMessage:
    """A visible message of the instance's control queue or of the work-item queue."""

    event: Mapping[str, Any]
    inserted_on: datetime
    dequeue_count: int
    queue: str


@dataclass(frozen=True)
class Facts:
    """What was read about one instance (see `runtime/durable/inspection.py`)."""

    instance_id: str
    row: Mapping[str, Any]
    events: Sequence[Mapping[str, Any]]
    partition: int
    control_queue: str
    workitems_queue: str
    hub_name: str
    now: datetime
    holder: HostInfo | None  # the host holding the instance's partition, if any
    hosts: Sequence[HostInfo] = ()  # every host holding partitions of the hub
    queued: Sequence[QueuedMessage] = ()  # its visible control-queue messages
    work_items: Sequence[QueuedMessage] = ()  # its visible activity work items
    queues_complete: bool = True  # False when a queue was longer than what was looked at
    this_app: str | None = None  # the app folder the command runs for
    this_orchestrators: frozenset[str] | None = None  # lower-cased; None: not indexed
    waiting_events: tuple[str, ...] | None = None  # from a replay; None: not replayed
    unclaimed_events: tuple[str, ...] = ()
    replay_problem: str | None = None  # why the replay could not say what the code waits on
    code_breaks: str | None = None  # the failure the app's current code would cause
    children: Mapping[str, str] = field(default_factory=dict)  # child id -> status


@dataclass(frozen=True)
class Reason:
    kind: str
    text: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "fix": self.fix}


def explain(facts: Facts) -> list[Reason]:
    """The reasons the instance is not done, most important first; empty when it is
    finished (nothing to explain)."""
    status = str(facts.row.get("RuntimeStatus") or "")
    if status not in WAITING_STATES:
        return []
    name = str(facts.row.get("Name") or "")
    other = [m for m in facts.queued
             if history.event_type(m.event) != EventType.ExecutionStarted]
    if entities.is_entity(facts.instance_id):
        # An entity always shows Running; it only ever waits for operations.
        found = [r for r in _hosting(facts, name) if r.kind == "no-host"] if other else []
        found += [_messages(facts, other)] if other else [Reason(
            "entity", "It is a durable entity: entities always show Running, and no "
                      "operation for it is waiting.")]
        return found
    hosting = _hosting(facts, name)
    # Another app or a missing function is the root cause; no host running matters
    # after what the instance waits on, which says what to do once one runs.
    reasons = [r for r in hosting if r.kind != "no-host"]
    no_host = [r for r in hosting if r.kind == "no-host"]
    if facts.code_breaks:
        reasons.append(Reason(
            "code-changed",
            f"The code of the app in {facts.this_app} no longer replays its history, so the "
            f"instance fails when it next runs: {facts.code_breaks}",
            f"funclocal replay --instance {facts.instance_id} shows where; undo the change, "
            f"or terminate the instance."))
    # History decides whether it started: the Instances row is written after history,
    # so a host stopped in between leaves a row that still says Pending.
    if EventType.ExecutionStarted not in _kinds(facts.events):
        reasons += [_pending(facts), *no_host]
    else:
        if status == "Suspended" or is_suspended(list(facts.events)):
            reasons.append(_suspended(facts))
        reasons += _waiting(facts) + no_host
    if other:
        reasons.append(_messages(facts, other))
    return reasons


def summary(facts: Facts, reasons: Sequence[Reason]) -> str:
    """One line: the instance, its status, and its first reason."""
    name = facts.row.get("Name") or "?"
    status = facts.row.get("RuntimeStatus") or "?"
    head = f"Instance '{facts.instance_id}' ({name}) is {status}"
    return f"{head}." if not reasons else f"{head}: {reasons[0].text}"


# -- hosting ------------------------------------------------------------------------------

def _hosting(facts: Facts, name: str) -> list[Reason]:
    holder = facts.holder
    lowered = name.lower()
    partition = f"partition {facts.partition} ({facts.control_queue})"
    if holder is None:
        text = (f"No host is running task hub '{facts.hub_name}': nobody holds {partition}, "
                f"so its messages wait there.")
        reasons = [Reason("no-host", text, "Start the app: funclocal start")]
        if facts.this_orchestrators is not None and lowered not in facts.this_orchestrators:
            reasons.append(_unknown_here(facts, name))
        return reasons
    same_app = facts.this_app is not None and holder.app_folder == facts.this_app
    if not same_app and facts.this_app is not None:
        knows = holder.orchestrators is not None and lowered in holder.orchestrators
        here = facts.this_orchestrators is None or lowered in facts.this_orchestrators
        if here or not knows:
            doing = ("does not have the orchestrator '" + name + "'" if
                     holder.orchestrators is not None and not knows else
                     "runs its messages with that app's code")
            return [Reason(
                "shared-hub",
                f"Task hub '{facts.hub_name}' is shared with another app: {partition} is "
                f"held by the host of {holder.app_folder or holder.owner} "
                f"({holder.address}), which {doing}.",
                "Give each app its own hubName in host.json "
                "(extensions.durableTask.hubName), or stop the other app's host.")]
    if holder.orchestrators is not None and lowered not in holder.orchestrators:
        known = ", ".join(sorted(holder.orchestrators)) or "none"
        text = (f"No running host knows the orchestrator '{name}': the host holding "
                f"{partition} ({holder.address}, app {holder.app_folder}) has only: {known}.")
        return [Reason("unknown-function", text,
                       f"Add the orchestrator '{name}' to the app (or terminate the "
                       f"instance: funclocal instances terminate {facts.instance_id}).")]
    return []


def _unknown_here(facts: Facts, name: str) -> Reason:
    known = ", ".join(sorted(facts.this_orchestrators or ())) or "none"
    return Reason(
        "unknown-function",
        f"The app in {facts.this_app} has no orchestrator '{name}' (it has: {known}), so a "
        f"host started here would fail the instance; no running host knows it either.",
        f"Run the app that defines '{name}', or terminate the instance: "
        f"funclocal instances terminate {facts.instance_id}")


# -- the instance's own state -------------------------------------------------------------

def _suspended(facts: Facts) -> Reason:
    marker = last_marker(list(facts.events))
    reason = (marker or {}).get("Reason") or facts.row.get("Output")
    since = (marker or {}).get("Timestamp")
    text = "It is suspended"
    if since:
        text += f" since {history.readable_time(since)}"
    if reason:
        text += f" (reason: {reason})"
    text += ": events and results that arrive wait in its history until it is resumed."
    return Reason("suspended", text, f"funclocal instances resume {facts.instance_id}")


def _pending(facts: Facts) -> Reason:
    start = next((m for m in facts.queued
                  if history.event_type(m.event) == EventType.ExecutionStarted), None)
    if start is not None:
        since = history.readable_time(start.inserted_on)
        where = (f"its start message waits in {start.queue} since {since}"
                 f" (delivered {start.dequeue_count} time{_s(start.dequeue_count)})")
        text = f"It has not started: {where}."
        return Reason("pending", text, None)
    text = ("It has not started, and its start message is not visible in "
            f"{facts.control_queue}: a host is starting it now (a message is hidden while "
            "a host holds it), or the message is gone.")
    return Reason("pending", text, None)


def _waiting(facts: Facts) -> list[Reason]:
    events = list(facts.events)
    reasons: list[Reason] = []
    done = _completed_ids(events)
    for event in events:
        kind = history.event_type(event)
        task_id = int(event.get("EventId", -1))
        if task_id in done:
            continue
        if kind == EventType.TaskScheduled:
            reasons.append(_activity(facts, event, task_id))
        elif kind == EventType.TimerCreated:
            reasons.append(_timer(facts, event))
        elif kind == EventType.SubOrchestrationInstanceCreated:
            child = str(event.get("InstanceId"))
            status = facts.children.get(child, "not found")
            reasons.append(Reason(
                "sub-orchestration",
                f"It waits for the sub-orchestration '{event.get('Name')}' (instance "
                f"'{child}', {status}).", f"funclocal instances why {child}"))
    reasons += _entity_calls(events, done)
    if facts.waiting_events:
        for name in facts.waiting_events:
            text = f"It waits for the external event '{name}'; nothing has raised it yet."
            near = [u for u in facts.unclaimed_events if u.lower() == name.lower()]
            if near:
                text += (f" An event '{near[0]}' was raised, but event names are "
                         "case-sensitive.")
            reasons.insert(0, Reason("event", text,
                                     f"funclocal instances raise {facts.instance_id} {name} "
                                     "'<JSON data>'"))
    elif facts.waiting_events is None and facts.replay_problem and not reasons and \
            not facts.code_breaks:
        reasons.append(Reason("unknown", f"History shows no work in flight; what the code "
                                         f"waits for is unknown: {facts.replay_problem}"))
    return reasons


def _activity(facts: Facts, event: Mapping[str, Any], task_id: int) -> Reason:
    name = event.get("Name")
    scheduled = event.get("Timestamp")
    text = f"It waits for the activity '{name}' (scheduled {history.readable_time(scheduled)})"
    item = next((m for m in facts.work_items
                 if int(m.event.get("EventId", -2)) == task_id), None)
    result = next((m for m in facts.queued if history.event_type(m.event) in (
        EventType.TaskCompleted, EventType.TaskFailed) and
        int(m.event.get("TaskScheduledId", -2)) == task_id), None)
    fix: str | None = None
    if result is not None:
        text += f"; its result waits in {result.queue} for a host to record it."
    elif item is not None:
        text += (f"; its work item waits in {item.queue} (delivered {item.dequeue_count} "
                 f"time{_s(item.dequeue_count)})")
        if not facts.hosts:
            text += ", and no host is running to take it."
            fix = "Start the app: funclocal start"
        else:
            text += "."
    elif not facts.hosts:
        text += (f"; its work item is not visible in {facts.workitems_queue}: it is locked by "
                 "a host that stopped (it becomes visible when the lock ends, within 30 "
                 "seconds), and no host is running to take it.")
        fix = "Start the app: funclocal start"
    else:
        text += (f"; its work item is not visible in {facts.workitems_queue}: a host is "
                 "running it now (a work item is hidden while a host holds it).")
    return Reason("activity", text, fix)


def _timer(facts: Facts, event: Mapping[str, Any]) -> Reason:
    fire_at = event.get("FireAt")
    due = history.parse_timestamp(str(fire_at)) if fire_at else None
    if due is None:
        return Reason("timer", "It waits for a durable timer.", None)
    if due > facts.now:
        return Reason("timer", f"It waits for a durable timer due at {history.readable_time(due)} "
                               f"(in {_span((due - facts.now).total_seconds())}).", None)
    text = f"It waits for a durable timer that was due at {history.readable_time(due)}"
    if facts.holder is None:
        return Reason("timer", text + "; it fires once a host runs.",
                      "Start the app: funclocal start")
    return Reason("timer", text + "; its message is being delivered.", None)


def _entity_calls(events: list[Mapping[str, Any]], done: set[int]) -> list[Reason]:
    answered = {str(e.get("Name")) for e in events
                if history.event_type(e) == EventType.EventRaised}
    reasons: list[Reason] = []
    for event in events:
        if history.event_type(event) != EventType.EventSent:
            continue
        request = entities.parse_request(0, {"EventType": EventType.EventRaised,
                                             "Name": entities.OPERATION_EVENT,
                                             "Input": event.get("Input")})
        if request is None or request.signal or request.request_id in answered:
            continue
        reasons.append(Reason(
            "entity", f"It waits for the entity '{event.get('InstanceId')}' to answer the "
                      f"operation '{request.operation}'.",
            f"funclocal instances why {event.get('InstanceId')}"))
    return reasons


def _messages(facts: Facts, queued: list[QueuedMessage]) -> Reason:
    shown = ", ".join(_message_name(m.event) for m in queued[:5])
    more = f" and {len(queued) - 5} more" if len(queued) > 5 else ""
    oldest = min(m.inserted_on for m in queued)
    text = (f"{len(queued)} message{_s(len(queued))} for it wait in {facts.control_queue} "
            f"({shown}{more}; the oldest since {history.readable_time(oldest)}).")
    return Reason("messages", text, None)


# -- helpers ------------------------------------------------------------------------------

def _completed_ids(events: list[Mapping[str, Any]]) -> set[int]:
    done: set[int] = set()
    for event in events:
        kind = history.event_type(event)
        if kind in COMPLETIONS:
            done.add(int(event.get(COMPLETIONS[kind][0], -1)))
    return done


def _kinds(events: Sequence[Mapping[str, Any]]) -> set[EventType]:
    return {history.event_type(e) for e in events}


def _message_name(event: Mapping[str, Any]) -> str:
    kind = history.event_type(event)
    name = event.get("Name")
    return f"{kind.name} '{name}'" if name else kind.name


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


__all__ = ["WAITING_STATES", "Facts", "HostInfo", "QueuedMessage", "Reason", "explain",
           "summary"]
