"""The orchestrator's actions, one handler per actionType (pure).

The SDK returns the actions of the whole execution so far (schema V2/V3: one inner
list, in the order the code yielded them). `parse_actions` turns them into task specs
through `HANDLERS`, a table keyed by the out-of-process actionType (the extension's
AsyncActionType). Each spec knows, for the replay in `replay.py`:
- whether it takes a sequence number (`takes_id`),
- the history event and outgoing message that schedule it (`schedule`),
- the history event kind it is recorded as and DTFx's name for it (`recorded_as`,
  `dtfx_action`), which `determinism.py` compares against what history holds.

To support a new action: write its spec class and add one entry to `HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from runtime.durable import history
from runtime.durable.engine import wording
from runtime.durable.engine.context import dumps
from runtime.durable.engine.model import KnownFunctions, OutgoingMessage
from runtime.durable.history import EventType
from runtime.errors import ProtocolError

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


class Rejected(Exception):
    """The actions cannot be carried out; the orchestration fails with this message."""


@dataclass(frozen=True)
class Target:
    """Where scheduled work is addressed: the orchestration that schedules it."""

    instance_id: str
    execution_id: str | None


@dataclass(frozen=True)
class Spec:
    """One action as the replay sees it."""

    action: Mapping[str, Any]
    takes_id: ClassVar[bool] = False
    recorded_as: ClassVar[EventType | None] = None
    dtfx_action: ClassVar[str] = ""

    @property
    def name(self) -> str | None:
        """The function or event name history records for it (None for timers)."""
        return None

    def check(self, known: KnownFunctions) -> None:
        """Raise Rejected when the app cannot run this action (unknown function)."""

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any], OutgoingMessage | None]:
        """The history event recording this action at `task_id`, and its message."""
        raise NotImplementedError


@dataclass(frozen=True)
class ActivitySpec(Spec):
    function_name: str = ""
    input_text: str | None = None
    takes_id: ClassVar[bool] = True
    recorded_as: ClassVar[EventType | None] = EventType.TaskScheduled
    dtfx_action: ClassVar[str] = "ScheduleTaskOrchestratorAction"

    @property
    def name(self) -> str | None:
        return self.function_name

    def check(self, known: KnownFunctions) -> None:
        if not known.has("activities", self.function_name):
            raise Rejected(wording.unknown_activity_message(self.function_name,
                                                            known.activities))

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any], OutgoingMessage | None]:
        # The extension keeps inputs out of history (storeInputsInOrchestrationHistory
        # off); the activity still needs its input, so the message carries it.
        return (history.task_scheduled(task_id, self.function_name, None, now),
                OutgoingMessage("activity", target.instance_id, target.execution_id,
                                history.task_scheduled(task_id, self.function_name,
                                                       self.input_text, now)))


@dataclass(frozen=True)
class TimerSpec(Spec):
    fire_at: datetime | None = None
    cancelled: bool = False
    takes_id: ClassVar[bool] = True
    recorded_as: ClassVar[EventType | None] = EventType.TimerCreated
    dtfx_action: ClassVar[str] = "CreateTimerOrchestratorAction"

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any], OutgoingMessage | None]:
        assert self.fire_at is not None
        return (history.timer_created(task_id, self.fire_at, now),
                OutgoingMessage("orchestration", target.instance_id, target.execution_id,
                                history.timer_fired(task_id, self.fire_at, now),
                                visible_at=self.fire_at))


@dataclass(frozen=True)
class ExternalEventSpec(Spec):
    """A wait for a raised event: matched by name, it takes no sequence number."""

    event_name: str = ""

    @property
    def name(self) -> str | None:
        return self.event_name


@dataclass(frozen=True)
class CompoundSpec(Spec):
    """task_all (wait_all) or task_any over child specs, started together."""

    children: tuple[Spec, ...] = ()
    wait_all: bool = True


# --- the handlers ---------------------------------------------------------------------

Handler = Callable[[Mapping[str, Any], "Parser"], Spec]


def _call_activity(action: Mapping[str, Any], parser: Parser) -> Spec:
    name = action.get("functionName")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"A CallActivity action has no functionName: {dict(action)!r}")
    return ActivitySpec(action, name, _input_text(action.get("input")))


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


HANDLERS: dict[int, Handler] = {
    CALL_ACTIVITY: _call_activity,
    CREATE_TIMER: _create_timer,
    WAIT_FOR_EXTERNAL_EVENT: _wait_for_event,
    WHEN_ANY: _compound,
    WHEN_ALL: _compound,
}


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
    """Every spec, compound children included, depth-first."""
    found: list[Spec] = []
    for spec in specs:
        found.append(spec)
        if isinstance(spec, CompoundSpec):
            found.extend(walk(list(spec.children)))
    return found


__all__ = ["ACTION_NAMES", "HANDLERS", "ActivitySpec", "CompoundSpec", "ExternalEventSpec",
           "Rejected", "Spec", "Target", "TimerSpec", "parse_actions", "walk"]
