"""How an episode ends (pure): the SDK's state applied to history, completion, failure,
termination, and the Instances row fields each outcome writes.

DurableTask.Core ends an execution only once no scheduled work is outstanding (timers
the code cancelled do not count), writes ExecutionCompleted then OrchestratorCompleted,
and stores a failure's message as the result (FailOrchestration).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from runtime.durable import history
from runtime.durable.engine import wording
from runtime.durable.engine.actions import parse_actions, walk
from runtime.durable.engine.context import custom_status_text, dumps
from runtime.durable.engine.model import (
    Continuation,
    Episode,
    EpisodeResult,
    KnownFunctions,
    OutgoingMessage,
    RuntimeStatus,
)
from runtime.durable.engine.planning import find
from runtime.durable.engine.replay import ReplayOutcome, replay, target_of
from runtime.durable.engine.specs import Rejected
from runtime.durable.engine.suspension import is_suspended, last_marker
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.errors import ProtocolError

DEFAULT_MAX_ACTIONS = 100000


def apply_state(episode: Episode, state: Mapping[str, Any],
                known: KnownFunctions | Collection[str], now: datetime,
                max_actions: int = DEFAULT_MAX_ACTIONS,
                default_version: str | None = None) -> EpisodeResult:
    """New history, messages and status for the state the orchestrator returned.

    `known` is the app's durable functions (a collection of names means activities);
    `default_version` is given to sub-orchestrations started without one. Actions the
    app cannot run, malformed states and nondeterminism fail the instance with the
    extension's or the framework's message.
    """
    known = KnownFunctions.coerce(known)
    custom_status = custom_status_text(dict(state))
    target = target_of(episode, default_version)
    try:
        specs = parse_actions(state, max_actions)
        for spec in walk(specs):
            spec.check(known, target)
        found = replay(episode, specs, now, default_version)
    except (Rejected, ProtocolError) as exc:
        return _fail(episode, str(exc), now, custom_status, next_event_id(episode))

    error = state.get("error")
    finished = bool(error) or bool(state.get("isDone"))
    if not finished or found.open_ids:
        # Work scheduled by this state keeps the instance running, even when it is done.
        status: RuntimeStatus = "Suspended" if is_suspended(episode.all_events) else "Running"
        return EpisodeResult(
            episode.new_events + found.scheduled + [history.orchestrator_completed(now)],
            found.outgoing, status, None, custom_status,
            awaiting_events=tuple(found.waiting_events))
    # What the last episode scheduled without waiting for it (signals, mostly) is still
    # recorded and sent: the extension replays every action before it completes or fails
    # the instance, and DTFx sends the messages of a finishing execution.
    if error:
        return _fail(episode, str(error), now, custom_status, found.next_id, found)
    if found.continue_as_new is not None:
        # The next generation starts in the same work item (DTFx's dispatcher loop); this
        # generation's events are not kept, its messages are sent.
        return EpisodeResult(
            episode.new_events + found.scheduled + [
                history.continue_as_new(found.next_id, found.continue_as_new, now),
                history.orchestrator_completed(now)],
            found.outgoing, "ContinuedAsNew", found.continue_as_new, custom_status,
            Continuation(found.continue_as_new, found.carried))
    output_text = dumps(state["output"]) if state.get("output") is not None else None
    return _finish(episode, OrchestrationStatus.Completed, output_text, now, custom_status,
                   found.next_id, found)


def hold(episode: Episode, now: datetime) -> EpisodeResult | None:
    """The episode's events recorded without running the code, while the instance is
    suspended and nothing the orchestrator could see has changed; None otherwise (run
    it). DTFx's executor holds such events back, so the code could not progress."""
    if not is_suspended(episode.all_events) or any(
            e.get("EventType") == EventType.ExecutionResumed for e in episode.new_events):
        return None
    return EpisodeResult(episode.new_events + [history.orchestrator_completed(now)], [],
                         "Suspended", None, None, replayed=False)


def next_generation(episode: Episode, continuation: Continuation, execution_id: str,
                    now: datetime) -> Episode:
    """The first episode of the execution that `continue_as_new` starts: the same
    instance, name, version and parent, a new execution id and input, and the events
    carried over (DTFx: OrchestratorStarted, ExecutionStarted, carried events)."""
    start = find(episode.all_events, EventType.ExecutionStarted) or {}
    new_start = history.execution_started(
        episode.instance_id, execution_id, episode.orchestrator_name, continuation.input_text,
        now, parent_instance=start.get("ParentInstance"), version=str(start.get("Version") or ""))
    carried = [dict(e, IsPlayed=False) for e in continuation.carried]
    return Episode(
        instance_id=episode.instance_id, execution_id=execution_id, past_events=[],
        new_events=[history.orchestrator_started(now), new_start, *carried], discarded=[],
        deferred=[], needs_replay=True, terminated_reason=None,
        orchestrator_name=episode.orchestrator_name, input_text=continuation.input_text)


def terminate(episode: Episode, now: datetime) -> EpisodeResult:
    """End the instance for an ExecutionTerminated message without running its code.
    Raises ValueError for an episode without one."""
    reason = find(episode.new_events, EventType.ExecutionTerminated)
    if reason is None:
        raise ValueError("terminate() needs an episode holding an ExecutionTerminated event")
    return _finish(episode, OrchestrationStatus.Terminated, reason.get("Input"), now, None,
                   next_event_id(episode))


def fail(episode: Episode, message: str, now: datetime) -> EpisodeResult:
    """Fail the instance without its code's state (unknown orchestrator, dead worker...)."""
    return _fail(episode, message, now, None, next_event_id(episode))


def _fail(episode: Episode, message: str, now: datetime, custom_status: str | None,
          event_id: int, found: ReplayOutcome | None = None) -> EpisodeResult:
    # DTFx's FailOrchestration stores the message as the result; it is kept as JSON text
    # here like every other output, which the status API shows as the same string.
    output_text = dumps(wording.orchestrator_failed(episode.orchestrator_name, message))
    return _finish(episode, OrchestrationStatus.Failed, output_text, now, custom_status,
                   event_id, found)


_FINAL: dict[OrchestrationStatus, RuntimeStatus] = {
    OrchestrationStatus.Completed: "Completed",
    OrchestrationStatus.Failed: "Failed",
    OrchestrationStatus.Terminated: "Terminated",
}


def _finish(episode: Episode, status: OrchestrationStatus, output_text: str | None,
            now: datetime, custom_status: str | None, event_id: int,
            found: ReplayOutcome | None = None) -> EpisodeResult:
    """End the execution: what the episode scheduled, ExecutionCompleted, then
    OrchestratorCompleted (DTFx's order); send what it scheduled and tell a parent
    orchestration how its child ended."""
    reply = _parent_reply(episode, status, output_text, now)
    scheduled = found.scheduled if found is not None else []
    outgoing = list(found.outgoing) if found is not None else []
    return EpisodeResult(
        episode.new_events + scheduled + [
            history.execution_completed(status, output_text, now, event_id=event_id),
            history.orchestrator_completed(now)],
        outgoing + ([reply] if reply is not None else []), _FINAL[status], output_text,
        custom_status)


def _parent_reply(episode: Episode, status: OrchestrationStatus, output_text: str | None,
                  now: datetime) -> OutgoingMessage | None:
    """SubOrchestrationInstanceCompleted/Failed for the parent, if there is one
    (DTFx ProcessWorkflowCompletedTaskDecision): a failed or terminated child is a
    failure with the child's message as Reason."""
    start = find(episode.all_events, EventType.ExecutionStarted) or {}
    parent = start.get("ParentInstance")
    if not isinstance(parent, dict):
        return None
    instance = parent.get("OrchestrationInstance") or {}
    task_id = int(parent.get("TaskScheduleId", -1))
    if status == OrchestrationStatus.Completed:
        event = history.sub_orchestration_completed(task_id, output_text, now)
    else:
        reason = history.json_or_raw(output_text)
        message = reason if isinstance(reason, str) else output_text
        details = None if status == OrchestrationStatus.Terminated else f"Message: {message}"
        event = history.sub_orchestration_failed(task_id, message, details, now)
    return OutgoingMessage("orchestration", str(instance.get("InstanceId")),
                           instance.get("ExecutionId"), event)


def reject_start(start: dict[str, Any], status: str, now: datetime) -> OutgoingMessage | None:
    """The parent's failure for a sub-orchestration that could not start because an
    instance with its id is still running (nothing of that instance is touched)."""
    parent = start.get("ParentInstance")
    if not isinstance(parent, dict):
        return None
    instance = parent.get("OrchestrationInstance") or {}
    child = (start.get("OrchestrationInstance") or {}).get("InstanceId")
    reason = (f"The sub-orchestration '{start.get('Name')}' could not start: an orchestration "
              f"instance with the ID '{child}' and the status {status} already exists.")
    event = history.sub_orchestration_failed(int(parent.get("TaskScheduleId", -1)), reason,
                                             None, now)
    return OutgoingMessage("orchestration", str(instance.get("InstanceId")),
                           instance.get("ExecutionId"), event)


def next_event_id(episode: Episode) -> int:
    """One past the highest sequence number in the episode's history."""
    ids = [int(e.get("EventId", -1)) for e in episode.past_events + episode.new_events]
    return max([-1, *ids]) + 1


def instance_fields(episode: Episode, result: EpisodeResult, now: datetime) -> dict[str, Any]:
    """The Instances row columns a checkpoint merges (AzureTableTrackingStore's update
    after each episode): status, custom status ("null" when unset), the execution, and
    output and completion time once the execution has ended."""
    fields: dict[str, Any] = {
        "ExecutionId": episode.execution_id,
        "LastUpdatedTime": now,
        "RuntimeStatus": result.runtime_status,
        "Name": episode.orchestrator_name,
    }
    if result.replayed:
        fields["CustomStatus"] = result.custom_status_text or "null"
    start = find(episode.new_events, EventType.ExecutionStarted)
    if start is not None:
        # A new execution (a sub-orchestration's first row, or a new generation).
        parent = (start.get("ParentInstance") or {}).get("OrchestrationInstance") or {}
        fields.update({"Version": start.get("Version") or "", "Input": start.get("Input"),
                       "CreatedTime": history.parse_timestamp(str(start["Timestamp"])),
                       "ParentInstanceId": parent.get("InstanceId")})
    if result.runtime_status in ("Running", "Suspended"):
        marker = last_marker(episode.new_events)
        if marker is not None:  # DTFx stores the suspend or resume reason as the output
            fields["Output"] = marker.get("Reason")
    else:
        fields["Output"] = result.output_text
        fields["CompletedTime"] = now
    return fields


def final_status(event: Mapping[str, Any]) -> str:
    """The runtime status an ExecutionCompleted (or ExecutionTerminated) event records."""
    if event.get("EventType") == EventType.ExecutionTerminated:
        return "Terminated"
    return OrchestrationStatus(int(event.get("OrchestrationStatus", 1))).name


def final_output(event: Mapping[str, Any]) -> str | None:
    """The output text an ExecutionCompleted (or ExecutionTerminated) event records."""
    if event.get("EventType") == EventType.ExecutionTerminated:
        value = event.get("Input")
    else:
        value = event.get("Result")
    return None if value is None else str(value)


def final_event(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event that ended the execution (ExecutionCompleted or ExecutionTerminated)."""
    return next((e for e in reversed(events) if e.get("EventType") in (
        EventType.ExecutionCompleted, EventType.ExecutionTerminated)), None)


__all__ = ["DEFAULT_MAX_ACTIONS", "apply_state", "fail", "final_event", "final_output",
           "final_status", "hold", "instance_fields", "next_event_id", "next_generation",
           "reject_start", "terminate"]
