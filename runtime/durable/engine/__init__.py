"""One orchestration work item as pure functions: no I/O, no asyncio, no clock.

- `planning`: which incoming messages an episode consumes, drops or puts back;
- `context`: the orchestrator's context JSON, and reading the SDK's state;
- `actions`: one handler per out-of-process actionType (the action table);
- `replay`: the actions replayed against history as the extension does, giving each
  its sequence number; `determinism`: the framework's nondeterminism messages;
- `outcomes`: completion, failure, termination and the Instances row fields;
- `activity`, `wording`: activity results and the extension's messages.

The dispatcher's workers call these; the unit tests drive them with the real SDK.
"""

from runtime.durable.engine import activity, entities, suspension, versioning, wording
from runtime.durable.engine.actions import ACTION_NAMES, HANDLERS
from runtime.durable.engine.context import (
    CONTEXT_SETTINGS,
    OUT_OF_PROC_DATA,
    build_context,
    parse_sdk_result,
)
from runtime.durable.engine.model import (
    Continuation,
    Episode,
    EpisodeResult,
    KnownFunctions,
    OutgoingMessage,
    RuntimeStatus,
)
from runtime.durable.engine.outcomes import (
    apply_state,
    fail,
    final_event,
    final_output,
    final_status,
    hold,
    instance_fields,
    next_event_id,
    next_generation,
    reject_start,
    terminate,
)
from runtime.durable.engine.planning import instance_version, is_stale, plan_episode
from runtime.durable.engine.specs import HTTP_ACTIVITY, Rejected
from runtime.durable.engine.wording import unknown_activity_message

__all__ = [
    "ACTION_NAMES", "CONTEXT_SETTINGS", "HANDLERS", "HTTP_ACTIVITY", "OUT_OF_PROC_DATA",
    "Continuation", "Episode", "EpisodeResult", "KnownFunctions", "OutgoingMessage",
    "Rejected", "RuntimeStatus", "activity", "entities", "apply_state", "build_context", "fail",
    "final_event", "final_output", "final_status", "hold", "instance_fields", "is_stale",
    "next_event_id", "next_generation", "parse_sdk_result", "plan_episode", "reject_start",
    "instance_version", "suspension", "terminate", "unknown_activity_message", "versioning",
    "wording",
]
