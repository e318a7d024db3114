"""One orchestration work item as pure functions (pure).

`plan_episode` sorts the incoming messages against the stored history, `build_context`
renders what the Durable SDK's orchestrator receives, and `apply_state` turns the state
the SDK returns into new history events and outgoing messages, following the Durable
extension (OutOfProcOrchestrationShim) and DurableTask.Core's dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from runtime.durable import history
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.errors import ProtocolError

RuntimeStatus = Literal["Running", "Completed", "Failed", "Terminated"]

OUT_OF_PROC_DATA = "\n\n$OutOfProcData$:"
STACK_LABEL = "\nStack:"

# Values the Azure Storage provider of the extension sends with every context.
CONTEXT_SETTINGS: dict[str, Any] = {
    "upperSchemaVersion": 1,
    "upperSchemaVersionNew": 2,
    "longRunningTimerIntervalDuration": "3.00:00:00",
    "maximumShortTimerDuration": "6.00:00:00",
    "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
}

# actionType numbers of the out-of-process protocol (extension AsyncActionType).
CALL_ACTIVITY = 0
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
WHEN_ANY = 11
WHEN_ALL = 12
ACTION_NAMES = {
    0: "CallActivity", 1: "CallActivityWithRetry", 2: "CallSubOrchestrator",
    3: "CallSubOrchestratorWithRetry", 4: "ContinueAsNew", 5: "CreateTimer",
    6: "WaitForExternalEvent", 7: "CallEntity", 8: "CallHttp", 9: "SignalEntity",
    10: "ScheduledSignalEntity", 11: "WhenAny", 12: "WhenAll",
}

# A completion event names its scheduling event through this field.
_COMPLETIONS: dict[EventType, tuple[str, EventType]] = {
    EventType.TaskCompleted: ("TaskScheduledId", EventType.TaskScheduled),
    EventType.TaskFailed: ("TaskScheduledId", EventType.TaskScheduled),
    EventType.SubOrchestrationInstanceCompleted:
        ("TaskScheduledId", EventType.SubOrchestrationInstanceCreated),
    EventType.SubOrchestrationInstanceFailed:
        ("TaskScheduledId", EventType.SubOrchestrationInstanceCreated),
    EventType.TimerFired: ("TimerId", EventType.TimerCreated),
}
_SCHEDULING = frozenset(kind for _, kind in _COMPLETIONS.values())


@dataclass(frozen=True)
class OutgoingMessage:
    kind: Literal["activity", "orchestration"]
    target_instance_id: str
    target_execution_id: str | None
    event: dict[str, Any]
    visible_at: datetime | None = None


@dataclass(frozen=True)
class Episode:
    instance_id: str
    execution_id: str | None
    past_events: list[dict[str, Any]]
    new_events: list[dict[str, Any]]
    discarded: list[int]
    deferred: list[int]
    needs_replay: bool
    terminated_reason: str | None
    orchestrator_name: str
    input_text: str | None


@dataclass(frozen=True)
class EpisodeResult:
    new_events: list[dict[str, Any]]
    outgoing: list[OutgoingMessage]
    runtime_status: RuntimeStatus
    output_text: str | None
    custom_status_text: str | None


# --- planning -------------------------------------------------------------------------


@dataclass
class _Ledger:
    """Scheduling events (id -> event) and completed ids of one execution."""

    scheduled: dict[int, dict[str, Any]] = field(default_factory=dict)
    completed: set[tuple[EventType, int]] = field(default_factory=set)

    def record(self, event: Mapping[str, Any]) -> None:
        kind = history.event_type(event)
        if kind in _SCHEDULING:
            self.scheduled[int(event["EventId"])] = dict(event)
        elif kind in _COMPLETIONS:
            id_field, scheduled_kind = _COMPLETIONS[kind]
            self.completed.add((scheduled_kind, int(event[id_field])))


def _ledger(events: Iterable[Mapping[str, Any]]) -> _Ledger:
    ledger = _Ledger()
    for event in events:
        ledger.record(event)
    return ledger


def _find(events: Iterable[Mapping[str, Any]], kind: EventType) -> dict[str, Any] | None:
    for event in events:
        if history.event_type(event) == kind:
            return dict(event)
    return None


def _execution_id(start: Mapping[str, Any] | None) -> str | None:
    if start is None:
        return None
    instance = start.get("OrchestrationInstance") or {}
    value = instance.get("ExecutionId")
    return str(value) if value is not None else None


def _has_ended(events: Iterable[Mapping[str, Any]]) -> bool:
    return any(history.event_type(e) in history.END_OF_EXECUTION for e in events)


def _as_new(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    copy = dict(event)
    copy["IsPlayed"] = False
    copy.setdefault("EventId", -1)
    if not copy.get("Timestamp"):
        copy["Timestamp"] = history.format_timestamp(now)
    return copy


def plan_episode(instance_id: str, past_events: list[dict[str, Any]],
                 incoming: list[dict[str, Any]], now: datetime) -> Episode:
    """Decide which incoming messages this episode consumes, drops or puts back."""
    past = list(past_events)
    start = _find(past, EventType.ExecutionStarted)
    ended = _has_ended(past)
    ledger = _ledger(past)
    new_start: dict[str, Any] | None = None
    appended: list[dict[str, Any]] = []
    discarded: list[int] = []
    deferred: list[int] = []
    terminated_reason: str | None = None

    for index, event in enumerate(incoming):
        kind = history.event_type(event)
        if kind == EventType.ExecutionStarted:
            if start is None or (ended and new_start is None
                                 and _execution_id(event) != _execution_id(start)):
                # A first start, or a new execution reusing the id of a finished one:
                # DTFx then writes the new history over the old from row 0.
                start = new_start = _as_new(event, now)
                past, ended, ledger, appended = [], False, _Ledger(), []
            else:
                discarded.append(index)  # a duplicate, or stale while another runs
            continue
        if start is None or ended:
            discarded.append(index)
            continue
        if kind in _COMPLETIONS:
            id_field, scheduled_kind = _COMPLETIONS[kind]
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
        execution_id=_execution_id(start),
        past_events=past,
        new_events=new_events,
        discarded=discarded,
        deferred=deferred,
        needs_replay=bool(new_events) and terminated_reason is None,
        terminated_reason=terminated_reason,
        orchestrator_name=str(start.get("Name") or "") if start is not None else "",
        input_text=None if input_text is None else str(input_text),
    )


# --- the orchestrator's context -------------------------------------------------------


def build_context(episode: Episode) -> str:
    """The orchestration trigger payload, as the extension's binding renders it."""
    played = [dict(e, IsPlayed=True) for e in episode.past_events]
    fresh = [dict(e, IsPlayed=False) for e in episode.new_events]
    start = _find(episode.past_events, EventType.ExecutionStarted) or \
        _find(episode.new_events, EventType.ExecutionStarted)
    parent = (start or {}).get("ParentInstance") or {}
    parent_instance = (parent.get("OrchestrationInstance") or {}).get("InstanceId")
    context: dict[str, Any] = {
        "history": played + fresh,
        "input": history.json_or_raw(episode.input_text)
        if episode.input_text is not None else None,
        "instanceId": episode.instance_id,
        "isReplaying": bool(played),
        "parentInstanceId": parent_instance,
    }
    context.update(CONTEXT_SETTINGS)
    return _dumps(context)


def _dumps(value: Any) -> str:
    # Newtonsoft's compact form: no spaces, non-ASCII kept as is.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_sdk_result(returned: str | None, raised: str | None) -> dict[str, Any]:
    """The orchestrator state from what the SDK returned or the text of what it raised."""
    if returned is not None:
        return _state_object(returned)
    if raised is None:
        raise ProtocolError("The orchestrator function returned nothing.")
    marker = raised.find(OUT_OF_PROC_DATA)
    if marker < 0:
        return {"isDone": False, "actions": [], "error": raised}
    payload = raised[marker + len(OUT_OF_PROC_DATA):]
    stack = payload.find(STACK_LABEL)
    if stack >= 0:
        payload = payload[:stack]
    return _state_object(payload)


def _state_object(text: str) -> dict[str, Any]:
    try:
        # raw_decode tolerates whatever the worker appended after the JSON.
        value, _ = json.JSONDecoder().raw_decode(text.strip())
    except ValueError as exc:
        raise ProtocolError(
            f"The orchestrator returned a state that is not JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict) or not isinstance(value.get("actions", []), list):
        raise ProtocolError(
            f"The orchestrator returned an unexpected state: {text[:200]!r}")
    return value


# --- applying the SDK's state ---------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    """An id-taking action with the sequence number the extension would give it."""

    task_id: int
    action: dict[str, Any]
    fire_at: datetime | None = None


class _Rejected(Exception):
    """The actions cannot be carried out; the orchestration fails with this message."""


def apply_state(episode: Episode, state: dict[str, Any], known_activities: Collection[str],
                now: datetime, max_actions: int = 100000) -> EpisodeResult:
    """New history, messages and status for the state the orchestrator returned."""
    custom_status = _custom_status(state)
    try:
        planned = _walk_actions(state, max_actions)
        _check_replay(planned, episode.past_events)
        _check_activities(planned, known_activities)
    except (_Rejected, ProtocolError) as exc:
        return _fail(episode, str(exc), now, custom_status, _next_event_id(episode))

    ledger = _ledger(episode.past_events + episode.new_events)
    scheduled: list[dict[str, Any]] = []
    outgoing: list[OutgoingMessage] = []
    cancelled: set[int] = set()
    for item in planned:
        if item.fire_at is not None and item.action.get("isCanceled"):
            cancelled.add(item.task_id)
            continue
        if item.task_id in ledger.scheduled:
            continue  # replayed: its scheduling event is already in history
        event, message = _schedule(episode, item, now)
        ledger.record(event)
        scheduled.append(event)
        outgoing.append(message)

    error = state.get("error")
    finished = bool(error) or bool(state.get("isDone"))
    # DTFx ends an execution only once no scheduled work is outstanding (timers the code
    # cancelled do not count), so work scheduled by this state always keeps it running.
    open_tasks = [task_id for task_id, event in ledger.scheduled.items()
                  if (history.event_type(event), task_id) not in ledger.completed
                  and task_id not in cancelled]
    if not finished or open_tasks:
        return EpisodeResult(
            episode.new_events + scheduled + [history.orchestrator_completed(now)],
            outgoing, "Running", None, custom_status)
    if error:
        return _fail(episode, str(error), now, custom_status, len(planned))
    output_text = _dumps(state["output"]) if state.get("output") is not None else None
    return _finish(episode, OrchestrationStatus.Completed, output_text, now, custom_status,
                   len(planned))


def terminate(episode: Episode, now: datetime) -> EpisodeResult:
    """End the instance for an ExecutionTerminated message without running its code."""
    reason = _find(episode.new_events, EventType.ExecutionTerminated)
    if reason is None:
        raise ValueError("terminate() needs an episode holding an ExecutionTerminated event")
    return _finish(episode, OrchestrationStatus.Terminated, reason.get("Input"), now, None,
                   _next_event_id(episode))


def fail(episode: Episode, message: str, now: datetime) -> EpisodeResult:
    """Fail the instance without its code's state (unknown orchestrator, dead worker...)."""
    return _fail(episode, message, now, None, _next_event_id(episode))


def _fail(episode: Episode, message: str, now: datetime, custom_status: str | None,
          event_id: int) -> EpisodeResult:
    # DTFx's FailOrchestration stores the message as the result; it is kept as JSON text
    # here like every other output, which the status API shows as the same string.
    output_text = _dumps(f"Orchestrator function '{episode.orchestrator_name}' failed: {message}")
    return _finish(episode, OrchestrationStatus.Failed, output_text, now, custom_status,
                   event_id)


_FINAL: dict[OrchestrationStatus, RuntimeStatus] = {
    OrchestrationStatus.Completed: "Completed",
    OrchestrationStatus.Failed: "Failed",
    OrchestrationStatus.Terminated: "Terminated",
}


def _finish(episode: Episode, status: OrchestrationStatus, output_text: str | None,
            now: datetime, custom_status: str | None, event_id: int) -> EpisodeResult:
    """End the execution: ExecutionCompleted, then OrchestratorCompleted (DTFx's order)."""
    return EpisodeResult(
        episode.new_events + [
            history.execution_completed(status, output_text, now, event_id=event_id),
            history.orchestrator_completed(now)],
        [], _FINAL[status], output_text, custom_status)


def _next_event_id(episode: Episode) -> int:
    ids = [int(e.get("EventId", -1)) for e in episode.past_events + episode.new_events]
    return max([-1, *ids]) + 1


def _custom_status(state: Mapping[str, Any]) -> str | None:
    value = state.get("customStatus")
    return _dumps(value) if value is not None else None


def _walk_actions(state: Mapping[str, Any], max_actions: int) -> list[_Planned]:
    """Number the id-taking actions depth-first, as the extension replays them."""
    actions = state.get("actions") or []
    if isinstance(actions, list) and len(actions) > 1:
        raise _Rejected(
            "With OOProc schema V3, expected actions array to be of length 1 in outer layer "
            f"but got size: {len(actions)}")
    planned: list[_Planned] = []

    def visit(items: Any) -> None:
        if not isinstance(items, list):
            raise ProtocolError(f"Expected a list of actions, got {items!r:.200}")
        for action in items:
            if not isinstance(action, dict):
                raise ProtocolError(f"Expected an action object, got {action!r:.200}")
            action_type = action.get("actionType")
            if action_type in (WHEN_ANY, WHEN_ALL):
                visit(action.get("compoundActions") or [])
            elif action_type == WAIT_FOR_EXTERNAL_EVENT:
                continue  # matched by name, not by sequence number
            elif action_type in (CALL_ACTIVITY, CREATE_TIMER):
                if len(planned) >= max_actions:
                    raise _Rejected(
                        f"Maximum amount of orchestration actions ({max_actions}) has been "
                        "reached. This value can be configured in host.json file as "
                        "MaxOrchestrationActions.")
                fire_at = _fire_at(action) if action_type == CREATE_TIMER else None
                planned.append(_Planned(len(planned), action, fire_at))
            else:
                label = ACTION_NAMES.get(action_type, "unknown") \
                    if isinstance(action_type, int) else "unknown"
                raise _Rejected(
                    f"The orchestrator used the Durable action '{label}' (actionType "
                    f"{action_type!r}), which this local host does not support yet.")

    if not isinstance(actions, list):
        raise ProtocolError(f"The state's actions are not a list: {actions!r:.200}")
    visit(actions[0] if actions else [])
    return planned


def _fire_at(action: Mapping[str, Any]) -> datetime:
    fire_text = action.get("fireAt")
    try:
        return history.parse_timestamp(str(fire_text))
    except ValueError as exc:
        raise ProtocolError(f"A CreateTimer action has a bad fireAt: {fire_text!r}") from exc


def _check_replay(planned: list[_Planned], past_events: list[dict[str, Any]]) -> None:
    """Fail like DTFx when the code now schedules something else at a recorded id."""
    by_id = {item.task_id: item.action for item in planned}
    for event in past_events:
        kind = history.event_type(event)
        if kind not in (EventType.TaskScheduled, EventType.TimerCreated):
            continue
        task_id = int(event["EventId"])
        action = by_id.get(task_id)
        if action is None:
            continue  # e.g. retry attempts, which the SDK does not list as actions
        action_type = action.get("actionType")
        produced = ("ScheduleTaskOrchestratorAction" if action_type == CALL_ACTIVITY
                    else "CreateTimerOrchestratorAction")
        if kind == EventType.TaskScheduled and action_type != CALL_ACTIVITY:
            raise _Rejected(_nondeterministic(
                f"A previous execution of this orchestration scheduled an activity task with "
                f"sequence number {task_id} named '{event.get('Name')}', but the current "
                f"orchestration replay instead produced a {produced} action with this "
                "sequence number."))
        if kind == EventType.TaskScheduled and \
                str(event.get("Name", "")).lower() != str(action.get("functionName")).lower():
            raise _Rejected(_nondeterministic(
                f"A previous execution of this orchestration scheduled an activity task with "
                f"sequence number {task_id} named '{event.get('Name')}', but the current "
                f"orchestration replay instead scheduled an activity task named "
                f"'{action.get('functionName')}' with this sequence number. "))
        if kind == EventType.TimerCreated and action_type != CREATE_TIMER:
            raise _Rejected(_nondeterministic(
                f"A previous execution of this orchestration scheduled a timer task with "
                f"sequence number {task_id} but the current orchestration replay instead "
                f"produced a {produced} action with this sequence number."))


def _nondeterministic(detail: str) -> str:
    return (f"Non-Deterministic workflow detected: {detail} Was a change made to the "
            "orchestrator code after this instance had already started running?")


def _check_activities(planned: list[_Planned], known_activities: Collection[str]) -> None:
    known = {name.lower() for name in known_activities}
    for item in planned:
        if item.action.get("actionType") != CALL_ACTIVITY:
            continue
        name = item.action.get("functionName")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"A CallActivity action has no functionName: {item.action!r}")
        if name.lower() not in known:
            raise _Rejected(unknown_activity_message(name, known_activities))


def unknown_activity_message(name: str, known_activities: Iterable[str]) -> str:
    """The extension's wording for a call to an activity that is not registered."""
    names = list(known_activities)
    message = (f"The function '{name}' doesn't exist, is disabled, or is not an activity "
               "function. Additional info: ")
    if names:
        return message + "The following are the known activity functions: '" + \
            "', '".join(names) + "'."
    return message + "No activity functions are currently registered!"


def _schedule(episode: Episode, item: _Planned,
              now: datetime) -> tuple[dict[str, Any], OutgoingMessage]:
    if item.fire_at is not None:
        return (history.timer_created(item.task_id, item.fire_at, now),
                OutgoingMessage("orchestration", episode.instance_id, episode.execution_id,
                                history.timer_fired(item.task_id, item.fire_at, now),
                                visible_at=item.fire_at))
    name = str(item.action["functionName"])
    input_text = item.action.get("input")
    if input_text is not None and not isinstance(input_text, str):
        input_text = _dumps(input_text)
    # The extension keeps inputs out of history (storeInputsInOrchestrationHistory off);
    # the activity still needs its input, so the message carries it.
    return (history.task_scheduled(item.task_id, name, None, now),
            OutgoingMessage("activity", episode.instance_id, episode.execution_id,
                            history.task_scheduled(item.task_id, name, input_text, now)))


def final_status(event: dict[str, Any]) -> str:
    """The runtime status an ExecutionCompleted (or ExecutionTerminated) event records."""
    if event.get("EventType") == EventType.ExecutionTerminated:
        return "Terminated"
    return OrchestrationStatus(int(event.get("OrchestrationStatus", 1))).name


def final_output(event: dict[str, Any]) -> str | None:
    """The output text an ExecutionCompleted (or ExecutionTerminated) event records."""
    if event.get("EventType") == EventType.ExecutionTerminated:
        value = event.get("Input")
    else:
        value = event.get("Result")
    return None if value is None else str(value)
