"""What the Durable SDK's orchestrator receives, and reading what it returns (pure).

The context is the extension's OrchestrationTriggerAttributeBindingProvider payload; the
state is the SDK's OrchestratorState JSON, either returned or, when the orchestrator
raised, embedded in the exception text after `$OutOfProcData$:` (the extension's
OutOfProcExceptionHelpers).
"""

from __future__ import annotations

import json
from typing import Any

from runtime.durable import history
from runtime.durable.engine.model import Episode
from runtime.durable.engine.planning import find
from runtime.durable.engine.suspension import visible_events
from runtime.durable.history import EventType
from runtime.errors import ProtocolError

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


def dumps(value: Any) -> str:
    """Newtonsoft's compact form: no spaces, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build_context(episode: Episode) -> str:
    """The orchestration trigger payload, as the extension's binding renders it: past
    events played, new ones not, the input re-parsed, the parent instance id."""
    played = [dict(e, IsPlayed=True) for e in episode.past_events]
    fresh = [dict(e, IsPlayed=False) for e in episode.new_events]
    shown = visible_events(played + fresh)  # events held while suspended come later
    start = find(episode.past_events, EventType.ExecutionStarted) or \
        find(episode.new_events, EventType.ExecutionStarted)
    parent = (start or {}).get("ParentInstance") or {}
    parent_instance = (parent.get("OrchestrationInstance") or {}).get("InstanceId")
    context: dict[str, Any] = {
        "history": shown,
        "input": history.json_or_raw(episode.input_text)
        if episode.input_text is not None else None,
        "instanceId": episode.instance_id,
        "isReplaying": bool(played),
        "parentInstanceId": parent_instance,
    }
    context.update(CONTEXT_SETTINGS)
    return dumps(context)


def parse_sdk_result(returned: str | None, raised: str | None) -> dict[str, Any]:
    """The orchestrator state from what the SDK returned or the text of what it raised.

    Raises ProtocolError when neither holds a state object; an exception without the
    `$OutOfProcData$` marker becomes a state with that text as its error.
    """
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


def custom_status_text(state: dict[str, Any]) -> str | None:
    """The state's customStatus as compact JSON text (None when unset)."""
    value = state.get("customStatus")
    return dumps(value) if value is not None else None


__all__ = ["CONTEXT_SETTINGS", "OUT_OF_PROC_DATA", "build_context", "custom_status_text",
           "dumps", "parse_sdk_result"]
