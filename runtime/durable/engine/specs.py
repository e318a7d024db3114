"""What each orchestrator action means to the replay (pure): whether it takes a sequence
number, the history event and message that schedule it, and how DurableTask.Core names
it in nondeterminism messages. `actions.py` builds these from the SDK's JSON."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from runtime.durable import history
from runtime.durable.engine import entities, wording
from runtime.durable.engine.model import KnownFunctions, OutgoingMessage
from runtime.durable.history import EventType

HTTP_ACTIVITY = "BuiltIn::HttpActivity"  # the extension's built-in HTTP activity


class Rejected(Exception):
    """The actions cannot be carried out; the orchestration fails with this message.
    `divergence` says where, when the cause is code that no longer matches history."""

    def __init__(self, message: str, divergence: Divergence | None = None) -> None:
        super().__init__(message)
        self.divergence = divergence


@dataclass(frozen=True)
class Divergence:
    """Where the replayed code and history part: the sequence number, history's event
    with that number, and the action the code produced there (None when the code
    never produced one: history holds work the code no longer schedules)."""

    sequence_number: int
    recorded: Mapping[str, Any]
    produced: Spec | None


@dataclass(frozen=True)
class Target:
    """The orchestration that schedules work: where replies come back to, and what a
    child's ParentInstance names."""

    instance_id: str
    execution_id: str | None
    name: str = ""
    version: str = ""
    parent_instance_id: str | None = None
    default_version: str | None = None  # host.json's defaultVersion, for children


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

    def check(self, known: KnownFunctions, target: Target) -> None:
        """Raise Rejected when the app cannot run this action (unknown function...)."""

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        """The history event recording this action at `task_id` (None: nothing is
        recorded), and the message it sends."""
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

    def check(self, known: KnownFunctions, target: Target) -> None:
        if not known.has("activities", self.function_name):
            raise Rejected(wording.unknown_activity_message(self.function_name,
                                                            known.activities))

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        # The extension keeps inputs out of history (storeInputsInOrchestrationHistory
        # off); the activity still needs its input, so the message carries it.
        return (history.task_scheduled(task_id, self.function_name, None, now),
                OutgoingMessage("activity", target.instance_id, target.execution_id,
                                history.task_scheduled(task_id, self.function_name,
                                                       self.input_text, now)))


@dataclass(frozen=True)
class HttpSpec(ActivitySpec):
    """call_http: the extension's built-in HTTP activity, with the request as input."""

    def check(self, known: KnownFunctions, target: Target) -> None:
        return None


@dataclass(frozen=True)
class TimerSpec(Spec):
    fire_at: datetime | None = None
    cancelled: bool = False
    takes_id: ClassVar[bool] = True
    recorded_as: ClassVar[EventType | None] = EventType.TimerCreated
    dtfx_action: ClassVar[str] = "CreateTimerOrchestratorAction"

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        if self.cancelled:
            return None, None  # cancelled before it was ever scheduled: nothing to do
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


@dataclass(frozen=True)
class SubOrchestrationSpec(Spec):
    """call_sub_orchestrator: the child starts with an ExecutionStarted naming its parent
    (DTFx ProcessCreateSubOrchestrationInstanceDecision); without an instance id the
    child's id is `<parent execution id>:<sequence number>`."""

    function_name: str = ""
    input_text: str | None = None
    instance_id: str | None = None
    version: str | None = None
    takes_id: ClassVar[bool] = True
    recorded_as: ClassVar[EventType | None] = EventType.SubOrchestrationInstanceCreated
    dtfx_action: ClassVar[str] = "CreateSubOrchestrationAction"

    @property
    def name(self) -> str | None:
        return self.function_name

    def child_id(self, task_id: int, target: Target) -> str:
        if self.instance_id is not None and self.instance_id.strip():
            return self.instance_id
        return f"{target.execution_id}:{task_id}"

    def check(self, known: KnownFunctions, target: Target) -> None:
        if not known.has("orchestrators", self.function_name):
            raise Rejected(wording.unknown_function(self.function_name, "orchestrator",
                                                    known.orchestrators))
        child = self.instance_id
        if child is not None and child.strip():
            own = {target.instance_id.lower(), (target.parent_instance_id or "").lower()}
            if child.lower() in own:
                raise Rejected("The instance ID of a sub-orchestration must be different than "
                               "the instance ID of a parent orchestration.")
            if child.startswith("@"):
                raise Rejected(f"Orchestration instance ids must not start with @. Instance "
                               f"ID: '{child}'.")

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        child = self.child_id(task_id, target)
        version = self.version if self.version is not None else (target.default_version or "")
        parent = history.parent_instance(target.instance_id, target.execution_id or "",
                                         target.name, target.version, task_id)
        execution_id = uuid.uuid4().hex
        start = history.execution_started(child, execution_id, self.function_name,
                                          self.input_text or "null", now,
                                          parent_instance=parent, version=version)
        return (history.sub_orchestration_created(task_id, self.function_name, child, None,
                                                  now, version=version),
                OutgoingMessage("orchestration", child, execution_id, start))


@dataclass(frozen=True)
class RetrySpec(Spec):
    """*_with_retry: attempts of `inner`, each after a retry timer, driven as DTFx's
    RetryInterceptor does (see replay.Retry)."""

    inner: Spec = field(default_factory=lambda: Spec({}))
    first_interval: timedelta = timedelta(seconds=1)
    max_attempts: int = 1
    backoff: float = 1.0
    max_interval: timedelta = timedelta(days=6)
    timeout: timedelta | None = None

    def check(self, known: KnownFunctions, target: Target) -> None:
        self.inner.check(known, target)

    def delay(self, attempt: int, first_attempt: datetime, now: datetime) -> timedelta:
        """The wait before retry number `attempt` (0 for the first), 0 when the retry
        timeout has passed (ComputeNextDelay)."""
        if self.timeout is not None and now >= first_attempt + self.timeout:
            return timedelta(0)
        delay = self.first_interval * (self.backoff ** attempt)
        return delay if delay < self.max_interval else self.max_interval


@dataclass(frozen=True)
class EntitySpec(Spec):
    """call_entity (a request the entity answers) or signal_entity (fire and forget): an
    EventSent in the caller's history and an "op" message to the entity, as the
    extension's CallDurableTaskFunctionAsync sends them."""

    entity_id: str = ""  # @name@key
    operation: str = ""
    input_text: str | None = None
    signal: bool = False
    takes_id: ClassVar[bool] = True
    recorded_as: ClassVar[EventType | None] = EventType.EventSent
    dtfx_action: ClassVar[str] = "SendEventOrchestratorAction"

    @property
    def name(self) -> str | None:
        return entities.OPERATION_EVENT

    def check(self, known: KnownFunctions, target: Target) -> None:
        try:
            entity, _ = entities.parse_scheduler_id(self.entity_id)
        except entities.InvalidEntityId as exc:
            raise Rejected(str(exc)) from None
        if not known.has("entities", entity):
            raise Rejected(wording.unknown_entity_message(entity, known.entities,
                                                          known.orchestrators))

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        return self.schedule_at(task_id, target, now, now, None)

    def schedule_at(self, task_id: int, target: Target, now: datetime, timestamp: datetime,
                    predecessor: datetime | None
                    ) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        """Schedule with the message's time (strictly increasing per entity)."""
        request_id = entities.request_id_for(target.instance_id, target.execution_id, task_id)
        text = entities.request_json(self.operation, self.input_text, request_id,
                                     signal=self.signal, parent=target.instance_id,
                                     parent_execution=target.execution_id,
                                     timestamp=timestamp, predecessor=predecessor)
        return (history.event_sent(task_id, self.entity_id, entities.OPERATION_EVENT, text,
                                   now),
                OutgoingMessage("orchestration", self.entity_id, None,
                                history.event_raised(entities.OPERATION_EVENT, text, now)))


@dataclass(frozen=True)
class ContinueAsNewSpec(Spec):
    """continue_as_new: fire and forget; it takes a sequence number in the SDK but
    schedules nothing (the execution ends with the new input)."""

    input_text: str | None = None
    takes_id: ClassVar[bool] = True

    def schedule(self, task_id: int, target: Target,
                 now: datetime) -> tuple[dict[str, Any] | None, OutgoingMessage | None]:
        return None, None


__all__ = ["HTTP_ACTIVITY", "ActivitySpec", "CompoundSpec", "ContinueAsNewSpec",
           "Divergence", "EntitySpec", "ExternalEventSpec", "HttpSpec", "Rejected",
           "RetrySpec", "Spec", "SubOrchestrationSpec", "Target", "TimerSpec"]
