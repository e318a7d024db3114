"""Nondeterminism: the code no longer schedules what history recorded (pure).

The messages are DurableTask.Core's (TaskOrchestrationContext.Handle*Event), word for
word, so that what a user sees locally is what they would search for: the recorded
event, its sequence number, and what the replay produced instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.durable import history
from runtime.durable.engine import wording
from runtime.durable.engine.actions import Spec
from runtime.durable.history import EventType

CHANGED = ("Was a change made to the orchestrator code after this instance had already "
           "started running?")


def mismatch(recorded: Mapping[str, Any], spec: Spec, task_id: int) -> str | None:
    """The full nondeterminism message when `spec`, replayed at `task_id`, is not what
    `recorded` (history's event at that number) says; None when they agree."""
    kind = history.event_type(recorded)
    if kind == spec.recorded_as and (spec.name is None or str(recorded.get("Name") or "")
                                     .lower() == spec.name.lower()):
        return None  # the common case, replayed work, decided without building text
    name = recorded.get("Name")
    produced = spec.dtfx_action
    same_kind = spec.recorded_as == kind
    same_name = str(name or "").lower() == str(spec.name or "").lower()
    detail: str | None = None
    if kind == EventType.TaskScheduled:
        if not same_kind:
            detail = (f"A previous execution of this orchestration scheduled an activity task "
                      f"with sequence number {task_id} named '{name}', but the current "
                      f"orchestration replay instead produced a {produced} action with this "
                      f"sequence number. {CHANGED}")
        elif not same_name:
            detail = (f"A previous execution of this orchestration scheduled an activity task "
                      f"with sequence number {task_id} named '{name}', but the current "
                      f"orchestration replay instead scheduled an activity task named "
                      f"'{spec.name}' with this sequence number.  {CHANGED}")
    elif kind == EventType.TimerCreated:
        if not same_kind:
            # "named but" is the framework's own wording.
            detail = (f"A previous execution of this orchestration scheduled a timer task with "
                      f"sequence number {task_id} named but the current orchestration replay "
                      f"instead produced a {produced} action with this sequence number. "
                      f"{CHANGED}")
    elif kind == EventType.SubOrchestrationInstanceCreated:
        what = (f"A previous execution of this orchestration scheduled a sub-orchestration "
                f"task with sequence ID {task_id} and name '{name}' (version "
                f"'{recorded.get('Version') or ''}', instance ID "
                f"'{recorded.get('InstanceId')}'), but the current orchestration replay "
                f"instead ")
        if not same_kind:
            detail = f"{what}produced a {produced} action at this sequence number. {CHANGED}"
        elif not same_name:
            detail = (f"{what}scheduled a sub-orchestration task with name {spec.name} at "
                      f"this sequence number. {CHANGED}")
    elif kind == EventType.EventSent:
        what = (f"A previous execution of this orchestration scheduled a send event task with "
                f"sequence ID {task_id}, type 'EventSent', name '{name}', instance ID "
                f"'{recorded.get('InstanceId')}', but the current orchestration replay "
                f"instead scheduled ")
        if not same_kind:
            detail = f"{what}a {produced} task at this sequence number. {CHANGED}"
        elif not same_name:
            detail = (f"{what}a send event task with name {spec.name}at this sequence "
                      f"number. {CHANGED}")
    return None if detail is None else wording.nondeterministic(detail)


def not_replayed(recorded: Mapping[str, Any]) -> str:
    """The message for a scheduling event in history that the replay never produced."""
    kind = history.event_type(recorded)
    task_id = recorded.get("EventId")
    name = recorded.get("Name")
    version = recorded.get("Version") or ""
    if kind == EventType.TaskScheduled:
        what = (f"an activity task with sequence ID {task_id} and name '{name}' (version "
                f"'{version}'), but")
    elif kind == EventType.TimerCreated:
        what = f"a timer task with sequence number {task_id} but"
    elif kind == EventType.SubOrchestrationInstanceCreated:
        what = (f"a sub-orchestration task with sequence ID {task_id} and name '{name}' "
                f"(version '{version}', instance ID '{recorded.get('InstanceId')}'), but")
    else:
        what = (f"a send event task with sequence ID {task_id}, type '{kind.name}' name "
                f"'{name}', instance ID '{recorded.get('InstanceId')}', but")
    return wording.nondeterministic(
        f"A previous execution of this orchestration scheduled {what} the current replay "
        f"execution hasn't (yet?) scheduled this task. {CHANGED}")


__all__ = ["CHANGED", "mismatch", "not_replayed"]
