"""The values the engine works on: an episode (one orchestration work item), what it
produces, and the names of the app's durable functions (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from runtime.durable.history import EventType

RuntimeStatus = Literal["Running", "Completed", "Failed", "Terminated", "Suspended",
                        "ContinuedAsNew", "Pending"]


@dataclass(frozen=True)
class OutgoingMessage:
    """A message the checkpoint sends: an activity to the work-item queue, or an event to
    an instance's control queue, visible from `visible_at` (None: at once)."""

    kind: Literal["activity", "orchestration"]
    target_instance_id: str
    target_execution_id: str | None
    event: dict[str, Any]
    visible_at: datetime | None = None


@dataclass(frozen=True)
class Episode:
    """One orchestration work item, planned: the history so far, the events this episode
    adds, and which incoming messages it drops (`discarded`) or puts back (`deferred`),
    by their index in the incoming batch."""

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
    # Sub-orchestration starts refused because an instance with that id is running.
    refused_starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def number(self) -> int:
        """This episode's number within its execution: the OrchestratorStarted events
        already in history (DTFx's episode counter, sent with outgoing messages)."""
        return sum(1 for e in self.past_events
                   if e.get("EventType") == EventType.OrchestratorStarted)

    @property
    def all_events(self) -> list[dict[str, Any]]:
        return [*self.past_events, *self.new_events]


@dataclass(frozen=True)
class Continuation:
    """continue_as_new: the next generation's input, and the events raised after the
    call, carried over to it."""

    input_text: str
    carried: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode changes: history events to append, messages to send, and the
    instance's status afterwards (output and custom status as JSON text). `continued` is
    set when the code continued as new: the next generation runs in the same work item.
    `awaiting_events` names the external events a running instance waits for (nothing
    in storage records them; the test harness's time skipping reads them)."""

    new_events: list[dict[str, Any]]
    outgoing: list[OutgoingMessage]
    runtime_status: RuntimeStatus
    output_text: str | None
    custom_status_text: str | None
    continued: Continuation | None = None
    replayed: bool = True  # False: the code did not run, so its custom status is unchanged
    awaiting_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnownFunctions:
    """The durable names the app registers, by kind; what scheduled work is checked
    against ("The function 'X' doesn't exist...")."""

    activities: tuple[str, ...] = ()
    orchestrators: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    _lowered: dict[str, frozenset[str]] = field(default_factory=dict, compare=False,
                                                repr=False)

    @classmethod
    def of(cls, *, activities: Iterable[str] = (), orchestrators: Iterable[str] = (),
           entities: Iterable[str] = ()) -> KnownFunctions:
        return cls(tuple(activities), tuple(orchestrators), tuple(entities))

    @classmethod
    def coerce(cls, value: KnownFunctions | Collection[str]) -> KnownFunctions:
        """A KnownFunctions, or one made of a collection of activity names."""
        return value if isinstance(value, KnownFunctions) else cls(tuple(value))

    def has(self, kind: Literal["activities", "orchestrators", "entities"], name: str) -> bool:
        lowered = self._lowered.get(kind)
        if lowered is None:
            lowered = frozenset(n.lower() for n in getattr(self, kind))
            self._lowered[kind] = lowered
        return name.lower() in lowered


__all__ = ["Continuation", "Episode", "EpisodeResult", "KnownFunctions", "OutgoingMessage",
           "RuntimeStatus"]
