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
from runtime.durable.engine.actions import Rejected, parse_actions, walk
from runtime.durable.engine.context import custom_status_text, dumps
from runtime.durable.engine.model import Episode, EpisodeResult, KnownFunctions, RuntimeStatus
from runtime.durable.engine.planning import find
from runtime.durable.engine.replay import replay
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.errors import ProtocolError

DEFAULT_MAX_ACTIONS = 100000


def apply_state(episode: Episode, state: Mapping[str, Any],
                known: KnownFunctions | Collection[str], now: datetime,
                max_actions: int = DEFAULT_MAX_ACTIONS) -> EpisodeResult:
    """New history, messages and status for the state the orchestrator returned.

    `known` is the app's durable functions (a collection of names means activities).
    Actions the app cannot run, malformed states and nondeterminism fail the instance
    with the extension's or the framework's message.
    """
    known = KnownFunctions.coerce(known)
    custom_status = custom_status_text(dict(state))
    try:
        specs = parse_actions(state, max_actions)
        for spec in walk(specs):
            spec.check(known)
        found = replay(episode, specs, now)
    except (Rejected, ProtocolError) as exc:
        return _fail(episode, str(exc), now, custom_status, next_event_id(episode))

    error = state.get("error")
    finished = bool(error) or bool(state.get("isDone"))
    if not finished or found.open_ids:
        # Work scheduled by this state keeps the instance running, even when it is done.
        return EpisodeResult(
            episode.new_events + found.scheduled + [history.orchestrator_completed(now)],
            found.outgoing, "Running", None, custom_status)
    if error:
        return _fail(episode, str(error), now, custom_status, found.next_id)
    output_text = dumps(state["output"]) if state.get("output") is not None else None
    return _finish(episode, OrchestrationStatus.Completed, output_text, now, custom_status,
                   found.next_id)


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
          event_id: int) -> EpisodeResult:
    # DTFx's FailOrchestration stores the message as the result; it is kept as JSON text
    # here like every other output, which the status API shows as the same string.
    output_text = dumps(wording.orchestrator_failed(episode.orchestrator_name, message))
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
        "CustomStatus": result.custom_status_text or "null",
        "Name": episode.orchestrator_name,
    }
    if result.runtime_status != "Running":
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
           "final_status", "instance_fields", "next_event_id", "terminate"]
