"""Suspension, as DurableTask.Core's TaskOrchestrationExecutor applies it (pure).

The SDK ignores ExecutionSuspended/ExecutionResumed, so the host decides what it sees:
events that arrive while an instance is suspended are held back (eventsWhileSuspended)
and delivered right after the ExecutionResumed that ends the suspension, in the order
they arrived. History keeps them where they arrived; only the orchestrator's view moves
them. Termination is never held back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runtime.durable.history import EventType

_NEVER_HELD = frozenset({EventType.ExecutionTerminated, EventType.OrchestratorStarted,
                         EventType.OrchestratorCompleted, EventType.ExecutionSuspended,
                         EventType.ExecutionResumed})


def visible_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` in the order the orchestrator must see them; events still held back
    (the instance is suspended) are left out. The events themselves are not copied."""
    if not any(e.get("EventType") == EventType.ExecutionSuspended for e in events):
        return list(events)  # the common case: nothing is held
    shown: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    suspended = False
    for event in events:
        kind = event.get("EventType")
        if kind == EventType.ExecutionSuspended:
            suspended = True
        elif kind == EventType.ExecutionResumed and suspended:
            suspended = False
            shown.append(event)
            shown.extend(held)
            held = []
            continue
        elif suspended and kind not in _NEVER_HELD:
            held.append(event)
            continue
        shown.append(event)
    return shown


def is_suspended(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the last suspension marker in `events` is an ExecutionSuspended."""
    state = False
    for event in events:
        kind = event.get("EventType")
        if kind == EventType.ExecutionSuspended:
            state = True
        elif kind == EventType.ExecutionResumed:
            state = False
    return state


def held_back(events: list[dict[str, Any]]) -> bool:
    """Whether any event in `events` would be held back from the orchestrator."""
    return len(visible_events(events)) < len(events)


def last_marker(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The last ExecutionSuspended or ExecutionResumed event, if any."""
    found: Mapping[str, Any] | None = None
    for event in events:
        if event.get("EventType") in (EventType.ExecutionSuspended, EventType.ExecutionResumed):
            found = event
    return found


__all__ = ["held_back", "is_suspended", "last_marker", "visible_events"]
