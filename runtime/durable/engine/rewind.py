"""Rewinding a failed orchestration, as DurableTask.AzureStorage does it (pure):
AzureTableTrackingStore.RewindHistoryAsync rewrites the failed execution's history in
place, so that a replay re-runs what failed and replays the rest.

- every TaskFailed becomes a GenericEvent, and so does its TaskScheduled: the code then
  schedules that activity again at the same sequence number;
- every SubOrchestrationInstanceFailed becomes a GenericEvent; the child is rewound
  too, and its completion wakes the parent (the SubOrchestrationInstanceCreated stays);
- the failed ExecutionCompleted becomes a GenericEvent: the execution is open again.

Rewritten rows keep their columns and get `Reason = "Rewound: <old type>"`, as in the
framework. The instance is then Pending until a GenericEvent message (the reason as
Data) wakes the deepest failed instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.durable.history import EventType, OrchestrationStatus

GENERIC = int(EventType.GenericEvent)


@dataclass
class Rewound:
    """The rewritten history, the failed children to rewind, and whether this instance
    waits for them (else it is woken itself)."""

    events: list[dict[str, Any]]
    failed_children: list[str] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.failed_children


def _generic(event: dict[str, Any]) -> dict[str, Any]:
    rewound = dict(event)
    rewound["Reason"] = f"Rewound: {EventType(int(event['EventType'])).name}"
    rewound["EventType"] = GENERIC
    return rewound


def rewind_history(events: list[dict[str, Any]]) -> Rewound:
    """The failed execution `events`, rewritten for a rewind (see the module docstring)."""
    out = [dict(e) for e in events]
    scheduled = {int(e["EventId"]): i for i, e in enumerate(events)
                 if e.get("EventType") == EventType.TaskScheduled}
    created = {int(e["EventId"]): i for i, e in enumerate(events)
               if e.get("EventType") == EventType.SubOrchestrationInstanceCreated}
    result = Rewound(out)
    for index, event in enumerate(events):
        kind = event.get("EventType")
        if kind == EventType.TaskFailed:
            origin = scheduled.get(int(event.get("TaskScheduledId", -1)))
            if origin is not None:
                out[origin] = _generic(events[origin])
            out[index] = _generic(event)
        elif kind == EventType.SubOrchestrationInstanceFailed:
            origin = created.get(int(event.get("TaskScheduledId", -1)))
            if origin is not None:
                out[origin] = dict(events[origin],
                                   Reason="Rewound: SubOrchestrationInstanceCreated")
                child = events[origin].get("InstanceId")
                if child:
                    result.failed_children.append(str(child))
            out[index] = _generic(event)
        elif kind == EventType.ExecutionCompleted and \
                event.get("OrchestrationStatus") == OrchestrationStatus.Failed:
            out[index] = _generic(event)
    return result


__all__ = ["Rewound", "rewind_history"]
