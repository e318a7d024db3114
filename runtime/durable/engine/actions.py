"""The orchestrator's actions, one handler per actionType (pure).

The SDK returns the actions of the whole execution so far (schema V2/V3: one inner
list, in the order the code yielded them). `parse_actions` turns them into task specs
(`specs.py`) through `HANDLERS`, a table keyed by the out-of-process actionType (the
extension's AsyncActionType). Each spec knows, for the replay in `replay.py`:
- whether it takes a sequence number (`takes_id`),
- the history event and outgoing message that schedule it (`schedule`),
- the history event kind it is recorded as and DTFx's name for it (`recorded_as`,
  `dtfx_action`), which `determinism.py` compares against what history holds.

To support a new action: write its spec class and add one entry to `HANDLERS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from runtime.durable import history
from runtime.durable.engine import entities, wording
from runtime.durable.engine.context import dumps
from runtime.durable.engine.specs import (
    HTTP_ACTIVITY,
    ActivitySpec,
    CompoundSpec,
    ContinueAsNewSpec,
    EntitySpec,
    ExternalEventSpec,
    HttpSpec,
    Rejected,
    RetrySpec,
    Spec,
    SubOrchestrationSpec,
    TimerSpec,
)
from runtime.errors import ProtocolError

MAX_DELAY = timedelta(days=6)  # the Azure Storage provider's longest time-based delay

# actionType numbers of the out-of-process protocol (extension AsyncActionType).
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
SCHEDULED_SIGNAL_ENTITY = 10
WHEN_ANY = 11
WHEN_ALL = 12
ACTION_NAMES = {
    0: "CallActivity", 1: "CallActivityWithRetry", 2: "CallSubOrchestrator",
    3: "CallSubOrchestratorWithRetry", 4: "ContinueAsNew", 5: "CreateTimer",
    6: "WaitForExternalEvent", 7: "CallEntity", 8: "CallHttp", 9: "SignalEntity",
    10: "ScheduledSignalEntity", 11: "WhenAny", 12: "WhenAll",
}


# --- the handlers ---------------------------------------------------------------------

Handler = Callable[[Mapping[str, Any], "Parser"], Spec]


def _call_activity(action: Mapping[str, Any], parser: Parser) -> Spec:
    return ActivitySpec(action, _function_name(action, "CallActivity"),
                        _input_text(action.get("input")))


def _create_timer(action: Mapping[str, Any], parser: Parser) -> Spec:
    fire_text = action.get("fireAt")
    try:
        fire_at = history.parse_timestamp(str(fire_text))
    except ValueError as exc:
        raise ProtocolError(f"A CreateTimer action has a bad fireAt: {fire_text!r}") from exc
    return TimerSpec(action, fire_at, bool(action.get("isCanceled")))


def _wait_for_event(action: Mapping[str, Any], parser: Parser) -> Spec:
    return ExternalEventSpec(action, str(action.get("externalEventName") or ""))


def _compound(action: Mapping[str, Any], parser: Parser) -> Spec:
    children = tuple(parser.parse_list(action.get("compoundActions") or []))
    return CompoundSpec(action, children, action.get("actionType") == WHEN_ALL)


def _function_name(action: Mapping[str, Any], label: str) -> str:
    name = action.get("functionName")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"A {label} action has no functionName: {dict(action)!r}")
    return name


def _sub_orchestrator(action: Mapping[str, Any], parser: Parser) -> Spec:
    instance_id = action.get("instanceId")
    version = action.get("version")
    return SubOrchestrationSpec(
        action, _function_name(action, "CallSubOrchestrator"),
        _orchestration_input(action.get("input")),
        None if instance_id is None else str(instance_id),
        None if version is None else str(version))


def _milliseconds(options: Mapping[str, Any], key: str) -> timedelta | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(f"The retry options' {key} must be a number of milliseconds, "
                       f"not {value!r}.")
    return timedelta(milliseconds=value)


def _with_retry(action: Mapping[str, Any], parser: Parser) -> Spec:
    """CallActivityWithRetry / CallSubOrchestratorWithRetry; the options the SDK sends
    (first interval and attempts) and the ones the extension also reads, with the
    framework's defaults for the rest (RetryOptionsConverter, RetryOptions)."""
    action_type = action.get("actionType")
    inner_action = dict(action)
    inner_action["actionType"] = CALL_ACTIVITY if action_type == CALL_ACTIVITY_WITH_RETRY \
        else CALL_SUB_ORCHESTRATOR
    inner = parser.parse(inner_action)
    options = action.get("retryOptions")
    if not isinstance(options, dict):
        raise Rejected(f"The {ACTION_NAMES[int(str(action_type))]} action for "
                       f"'{inner.name}' has no retryOptions.")
    first = _milliseconds(options, "firstRetryIntervalInMilliseconds")
    attempts = options.get("maxNumberOfAttempts")
    what = f"The retry options of '{inner.name}'"
    if first is None or first <= timedelta(0):
        raise Rejected(f"{what} are invalid: firstRetryIntervalInMilliseconds must be greater "
                       f"than 0 (got {options.get('firstRetryIntervalInMilliseconds')!r}).")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise Rejected(f"{what} are invalid: maxNumberOfAttempts must be at least 1 "
                       f"(got {attempts!r}); the call would never run.")
    max_interval = _milliseconds(options, "maxRetryIntervalInMilliseconds") or MAX_DELAY
    if first > MAX_DELAY or max_interval > MAX_DELAY:
        raise Rejected(f"{what} are invalid: the Azure Storage provider supports a maximum of "
                       "6 days for time-based delays.")
    backoff = options.get("backoffCoefficient", 1.0)
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff <= 0:
        raise Rejected(f"{what} are invalid: backoffCoefficient must be a positive number.")
    return RetrySpec(action, inner, first, attempts, float(backoff), max_interval,
                     _milliseconds(options, "retryTimeoutInMilliseconds"))


def _continue_as_new(action: Mapping[str, Any], parser: Parser) -> Spec:
    return ContinueAsNewSpec(action, _orchestration_input(action.get("input")))


def _entity(action: Mapping[str, Any], parser: Parser) -> Spec:
    """call_entity (7) and signal_entity (9): the operation's input is the SDK's JSON
    text, serialised once more as the extension's SetInput does."""
    entity_id = action.get("instanceId")
    if not isinstance(entity_id, str) or not entity_id.startswith("@"):
        raise ProtocolError(f"An entity action has no entity instanceId: {dict(action)!r:.200}")
    return EntitySpec(action, entity_id, str(action.get("operation") or ""),
                      entities.operation_input(action.get("input")),
                      action.get("actionType") == SIGNAL_ENTITY)


def _call_http(action: Mapping[str, Any], parser: Parser) -> Spec:
    request = action.get("httpRequest")
    if not isinstance(request, dict) or not request.get("uri"):
        raise ProtocolError(f"A CallHttp action has no httpRequest uri: {dict(action)!r:.200}")
    # The extension schedules the built-in activity with the request as its one argument.
    return HttpSpec(action, HTTP_ACTIVITY, json.dumps([request], separators=(",", ":")))


HANDLERS: dict[int, Handler] = {
    CALL_ACTIVITY: _call_activity,
    CALL_ACTIVITY_WITH_RETRY: _with_retry,
    CALL_SUB_ORCHESTRATOR: _sub_orchestrator,
    CALL_SUB_ORCHESTRATOR_WITH_RETRY: _with_retry,
    CONTINUE_AS_NEW: _continue_as_new,
    CREATE_TIMER: _create_timer,
    WAIT_FOR_EXTERNAL_EVENT: _wait_for_event,
    CALL_HTTP: _call_http,
    CALL_ENTITY: _entity,
    SIGNAL_ENTITY: _entity,
    WHEN_ANY: _compound,
    WHEN_ALL: _compound,
}


def _orchestration_input(value: Any) -> str:
    """An orchestration's ExecutionStarted.Input from an action's input: the SDK's JSON
    text is serialised once more by the extension (as a client start's is), so that the
    context hands the SDK the text back and `get_input()` decodes it."""
    return "null" if value is None else dumps(value)


def _input_text(value: Any) -> str | None:
    """An action's input is JSON text already (the SDK df_dumps it); anything else is
    encoded here."""
    if value is None or isinstance(value, str):
        return value
    return dumps(value)


class Parser:
    """Turns the SDK's action lists into specs, counting the ones that take a number."""

    def __init__(self, max_actions: int) -> None:
        self.max_actions = max_actions
        self.numbered = 0

    def parse_list(self, items: Any) -> list[Spec]:
        if not isinstance(items, list):
            raise ProtocolError(f"Expected a list of actions, got {items!r:.200}")
        return [self.parse(action) for action in items]

    def parse(self, action: Any) -> Spec:
        if not isinstance(action, dict):
            raise ProtocolError(f"Expected an action object, got {action!r:.200}")
        action_type = action.get("actionType")
        handler = HANDLERS.get(action_type) if isinstance(action_type, int) else None
        if handler is None:
            label = ACTION_NAMES.get(action_type, "unknown") \
                if isinstance(action_type, int) else "unknown"
            raise Rejected(wording.unsupported_action(label, action_type))
        spec = handler(action, self)
        if spec.takes_id:
            if self.numbered >= self.max_actions:
                raise Rejected(wording.too_many_actions(self.max_actions))
            self.numbered += 1
        return spec


def parse_actions(state: Mapping[str, Any], max_actions: int) -> list[Spec]:
    """The top-level specs of an SDK state, in yield order. Raises Rejected (the
    orchestration fails with its message) or ProtocolError (a malformed state)."""
    actions = state.get("actions") or []
    if not isinstance(actions, list):
        raise ProtocolError(f"The state's actions are not a list: {actions!r:.200}")
    if len(actions) > 1:
        raise Rejected(
            "With OOProc schema V3, expected actions array to be of length 1 in outer layer "
            f"but got size: {len(actions)}")
    return Parser(max_actions).parse_list(actions[0] if actions else [])


def walk(specs: list[Spec]) -> list[Spec]:
    """Every spec, compound children and retried calls included, depth-first."""
    found: list[Spec] = []
    for spec in specs:
        found.append(spec)
        if isinstance(spec, CompoundSpec):
            found.extend(walk(list(spec.children)))
        elif isinstance(spec, RetrySpec):
            found.extend(walk([spec.inner]))
    return found


__all__ = ["ACTION_NAMES", "HANDLERS", "Parser", "Rejected", "Spec", "parse_actions", "walk"]
