"""Replaying the orchestrator's actions against history, as the extension does (pure).

The out-of-process SDK reports *what* the code scheduled, not the sequence numbers; the
extension finds them by replaying the actions through DurableTask.Core
(OutOfProcOrchestrationShim.ProcessAsyncActionsV2): each top-level action is started only
once the one before it has completed, the children of task_all/task_any start together,
and every started piece of work takes the next sequence number. History events are
applied in order; each completion resumes whatever waited on it before the next event is
looked at. Numbers taken at run time (a retry's timer and next attempt) therefore land
exactly where the framework, and the SDK, put them.

This module mirrors that walk: it yields the numbers of every action, the scheduling
events and messages for the ones history does not hold yet, and the work still open.
When history contradicts the actions it raises Rejected with DTFx's nondeterminism
message. History is walked in the order the orchestrator sees it (`suspension.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.durable import history
from runtime.durable.engine import determinism, entities
from runtime.durable.engine.model import Episode, OutgoingMessage
from runtime.durable.engine.planning import COMPLETIONS, SCHEDULING, find
from runtime.durable.engine.specs import (
    CompoundSpec,
    ContinueAsNewSpec,
    Divergence,
    EntitySpec,
    ExternalEventSpec,
    Rejected,
    RetrySpec,
    Spec,
    Target,
    TimerSpec,
)
from runtime.durable.engine.suspension import visible_events
from runtime.durable.history import EventType

_SUCCESS = frozenset({EventType.TaskCompleted, EventType.TimerFired,
                      EventType.SubOrchestrationInstanceCompleted})


class Node:
    """A started action: running until it succeeds or fails."""

    def __init__(self, replay: Replay, parent: Node | None) -> None:
        self.replay = replay
        self.parent = parent
        self.done = False
        self.failed = False

    def finish(self, failed: bool) -> None:
        if self.done:
            return
        self.done, self.failed = True, failed
        if self.parent is not None:
            self.parent.child_finished(self)

    def child_finished(self, child: Node) -> None:
        """A child finished (compound nodes decide what that means for them)."""


class Atomic(Node):
    """Work that took a sequence number and finishes with a completion event."""

    def __init__(self, replay: Replay, parent: Node | None, spec: Spec, task_id: int) -> None:
        super().__init__(replay, parent)
        self.spec = spec
        self.task_id = task_id

    @property
    def holds_open(self) -> bool:
        """Whether this task keeps the orchestration running while it is not done (DTFx
        drops a cancelled timer from its open tasks)."""
        return not (isinstance(self.spec, TimerSpec) and self.spec.cancelled)

    def complete(self, event: Mapping[str, Any]) -> None:
        self.finish(failed=history.event_type(event) not in _SUCCESS)


class Waiter(Node):
    """wait_for_external_event: finishes when an event of its name is raised."""


class WhenAll(Node):
    """task_all: done when every child is, failed at the first child that fails. It
    counts its pending children, so a fan-in of n results costs O(n), not O(n^2)."""

    def __init__(self, replay: Replay, parent: Node | None) -> None:
        super().__init__(replay, parent)
        self.children: list[Node] = []
        self.pending = 0
        self.building = True  # children finishing while they start are counted after

    def add(self, child: Node) -> None:
        self.children.append(child)
        self.pending += 1

    def built(self) -> None:
        self.building = False
        if not self.children:
            self.finish(failed=False)  # task_all([]) is done at once
        for child in self.children:
            if child.done:
                self._finished(child)

    def child_finished(self, child: Node) -> None:
        if not self.building:
            self._finished(child)

    def _finished(self, child: Node) -> None:
        if self.done:
            return
        self.pending -= 1
        if child.failed:
            self.finish(failed=True)
        elif self.pending == 0:
            self.finish(failed=False)


class WhenAny(WhenAll):
    """task_any: done when the first child is (failed or not)."""

    def _finished(self, child: Node) -> None:
        self.finish(failed=False)


class Retry(Node):
    """A call with retries, as DTFx's RetryInterceptor runs it: an attempt; after a
    failure a retry timer (FireAt = the orchestration's current time + the delay, or the
    current time after the last attempt: the "dummy timer for back-compat" the SDK waits
    for); when the timer fires, the next attempt, or the failure after the last one.
    Each attempt and each timer takes the next sequence number when it starts."""

    def __init__(self, replay: Replay, parent: Node | None, spec: RetrySpec) -> None:
        super().__init__(replay, parent)
        self.spec = spec
        self.attempts = 0
        self.first_attempt = replay.time
        self.waiting: Node | None = None
        self.timer: Node | None = None

    def attempt(self) -> None:
        self.attempts += 1
        self.waiting = self.replay.start(self.spec.inner, self)

    def child_finished(self, child: Node) -> None:
        if child is self.timer:
            self.timer = None
            if self.attempts >= self.spec.max_attempts:
                self.finish(failed=True)
            else:
                self.attempt()
            return
        if child is not self.waiting:
            return
        self.waiting = None
        if not child.failed:
            self.finish(failed=False)
            return
        now = self.replay.time
        if self.attempts >= self.spec.max_attempts:
            fire_at = now
        else:
            delay = self.spec.delay(self.attempts - 1, self.first_attempt, now)
            if not delay:
                self.finish(failed=True)  # past the retry timeout: no timer, no retry
                return
            fire_at = now + delay
        self.timer = self.replay.take_number(TimerSpec({}, fire_at), self)


@dataclass
class ReplayOutcome:
    """What the replay found: new scheduling events and their messages (in number
    order), the numbers of work still open, the next free sequence number, the names of
    the events the code still waits for, and, when the code continued as new, the new
    input and the events raised after it (carried over to the next generation, as DTFx's
    Carryover does)."""

    scheduled: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[OutgoingMessage] = field(default_factory=list)
    open_ids: list[int] = field(default_factory=list)
    next_id: int = 0
    continue_as_new: str | None = None
    carried: list[dict[str, Any]] = field(default_factory=list)
    # For tools that explain a waiting instance: the event names the code waits for
    # now, and the names of raised events that nothing has waited for (yet).
    waiting_events: list[str] = field(default_factory=list)
    unclaimed_events: list[str] = field(default_factory=list)


class Replay:
    """One walk of `specs` (the SDK's top-level actions) over the episode's history."""

    def __init__(self, episode: Episode, specs: list[Spec], now: datetime,
                 default_version: str | None = None) -> None:
        self.episode = episode
        self.target = target_of(episode, default_version)
        self.now = now
        self.time = now  # the orchestration's current time as the walk reaches each event
        self.top = specs
        self.cursor = 0
        self.current: Node | None = None
        self.next_id = 0
        self.recorded: dict[int, dict[str, Any]] = {
            int(e["EventId"]): e for e in episode.past_events
            if history.event_type(e) in SCHEDULING or
            history.event_type(e) == EventType.EventSent}
        self.taken: set[int] = set()
        self.open: dict[int, Atomic] = {}
        self.early: dict[int, dict[str, Any]] = {}  # completions seen before their task
        self.waiters: dict[str, list[Waiter]] = {}
        self.raised: dict[str, dict[str, Any]] = {}  # events no one waited for yet
        self.calls: dict[str, Atomic] = {}  # entity calls by request id, awaiting answers
        self.early_answers: dict[str, dict[str, Any]] = {}
        self.last_sent: dict[str, datetime] = {}  # per entity: the last request's time
        self.outcome = ReplayOutcome()

    # -- the walk --------------------------------------------------------------------

    def run(self) -> ReplayOutcome:
        events = visible_events(self.episode.all_events)
        started = find(events, EventType.OrchestratorStarted)
        if started is not None:
            self.time = history.parse_timestamp(str(started["Timestamp"]))
        self._advance()
        for event in events:
            kind = history.event_type(event)
            if kind == EventType.OrchestratorStarted:
                self.time = max(self.time, history.parse_timestamp(str(event["Timestamp"])))
            elif kind in COMPLETIONS:
                self._complete(int(event[COMPLETIONS[kind][0]]), event)
            elif kind == EventType.EventRaised:
                if self.outcome.continue_as_new is not None:
                    self.outcome.carried.append(dict(event))
                else:
                    self._raise(event)
            self._advance()
        # The SDK lists an action only once the code went past the one before it, so
        # whatever the walk has not started yet is started now, in order.
        while self.cursor < len(self.top):
            self._start_next()
        for task_id, event in sorted(self.recorded.items()):
            if task_id not in self.taken:
                raise Rejected(determinism.not_replayed(event),
                               Divergence(task_id, event, None))
        self.outcome.open_ids = sorted(i for i, node in self.open.items() if node.holds_open)
        self.outcome.next_id = self.next_id
        self.outcome.waiting_events = [name for name, nodes in self.waiters.items()
                                       if any(_live(node) for node in nodes)]
        self.outcome.unclaimed_events = list(self.raised)
        return self.outcome

    def _advance(self) -> None:
        while (self.current is None or self.current.done) and self.cursor < len(self.top):
            self._start_next()

    def _start_next(self) -> None:
        spec = self.top[self.cursor]
        self.cursor += 1
        self.current = self.start(spec, None)

    # -- starting work ---------------------------------------------------------------

    def start(self, spec: Spec, parent: Node | None) -> Node:
        """Start one action (and its children): take numbers, schedule what is new."""
        if isinstance(spec, CompoundSpec):
            compound = WhenAll(self, parent) if spec.wait_all else WhenAny(self, parent)
            for child in spec.children:
                compound.add(self.start(child, compound))
            compound.built()
            return compound
        if isinstance(spec, ExternalEventSpec):
            return self._wait(spec, parent)
        if isinstance(spec, RetrySpec):
            retry = Retry(self, parent, spec)
            retry.attempt()
            return retry
        if isinstance(spec, ContinueAsNewSpec):
            node = self.take_number(spec, parent)
            self.outcome.continue_as_new = spec.input_text
            node.finish(failed=False)  # fire and forget: the next action starts at once
            return node
        if spec.takes_id:
            return self.take_number(spec, parent)
        raise Rejected(f"The action {dict(spec.action)!r:.200} cannot be replayed.")

    def take_number(self, spec: Spec, parent: Node | None) -> Atomic:
        """Give `spec` the next sequence number; schedule it unless history has it."""
        task_id = self.next_id
        self.next_id += 1
        self.taken.add(task_id)
        node = Atomic(self, parent, spec, task_id)
        recorded = self.recorded.get(task_id)
        if recorded is not None:
            problem = determinism.mismatch(recorded, spec, task_id)
            if problem is not None:
                raise Rejected(problem, Divergence(task_id, recorded, spec))
        if isinstance(spec, EntitySpec):
            self._entity_request(spec, node, recorded)
            return node
        if recorded is None:
            event, message = spec.schedule(task_id, self.target, self.now)
            if event is not None:
                self.outcome.scheduled.append(event)
            if message is not None:
                self.outcome.outgoing.append(message)
        if not isinstance(spec, ContinueAsNewSpec):
            self.open[task_id] = node
        early = self.early.pop(task_id, None)
        if early is not None:
            self._complete(task_id, early)
        return node

    def _entity_request(self, spec: EntitySpec, node: Atomic,
                        recorded: dict[str, Any] | None) -> None:
        """An entity call or signal: its request id and time come from history when it is
        recorded, else it is scheduled now; a call then waits for the answer named after
        the request id, a signal is done at once."""
        last = self.last_sent.get(spec.entity_id)
        if recorded is not None:
            request = entities.sent_request(recorded.get("Input"))
            request_id = request.request_id if request else str(node.task_id)
            stamp = request.timestamp if request else None
        else:
            stamp = entities.next_timestamp(self.now, last)
            event, message = spec.schedule_at(node.task_id, self.target, self.now, stamp, last)
            assert event is not None and message is not None
            self.outcome.scheduled.append(event)
            self.outcome.outgoing.append(message)
            request = entities.parse_request(0, message.event)
            request_id = request.request_id if request else ""
        if stamp is not None:
            self.last_sent[spec.entity_id] = stamp
        if spec.signal:
            node.finish(failed=False)
            return
        self.open[node.task_id] = node
        self.calls[request_id] = node
        answer = self.early_answers.pop(request_id, None)
        if answer is not None:
            self._answer(request_id, answer)

    def _answer(self, request_id: str, event: Mapping[str, Any]) -> None:
        node = self.calls.pop(request_id)
        self.open.pop(node.task_id, None)
        try:
            failed = "exceptionType" in json.loads(str(event.get("Input") or "{}"))
        except ValueError:
            failed = False
        node.finish(failed=failed)

    def _wait(self, spec: ExternalEventSpec, parent: Node | None) -> Waiter:
        node = Waiter(self, parent)
        name = spec.event_name
        if name in self.raised:
            # The SDK keeps the latest early event of a name for its next waiter.
            node.finish(failed=False)
        else:
            self.waiters.setdefault(name, []).append(node)
        return node

    # -- events ----------------------------------------------------------------------

    def _complete(self, task_id: int, event: dict[str, Any]) -> None:
        node = self.open.pop(task_id, None)
        if node is None:
            if task_id not in self.taken:
                self.early[task_id] = event
            return
        node.complete(event)

    def _raise(self, event: Mapping[str, Any]) -> None:
        name = str(event.get("Name") or "")
        if name in self.calls:
            self._answer(name, event)
            return
        if entities.is_response(event):
            self.early_answers[name] = dict(event)  # its call starts later in the walk
            return
        waiting = self.waiters.get(name)
        if waiting:
            waiting.pop().finish(failed=False)  # the SDK resolves the latest waiter
        else:
            self.raised[name] = dict(event)


def _live(node: Node) -> bool:
    """Not done, and neither is anything it belongs to (a task_any already decided)."""
    current: Node | None = node
    while current is not None:
        if current.done:
            return False
        current = current.parent
    return True


def target_of(episode: Episode, default_version: str | None = None) -> Target:
    """The orchestration of `episode` as the work it schedules sees it."""
    start = find(episode.all_events, EventType.ExecutionStarted) or {}
    parent = (start.get("ParentInstance") or {}).get("OrchestrationInstance") or {}
    return Target(episode.instance_id, episode.execution_id, episode.orchestrator_name,
                  str(start.get("Version") or ""), parent.get("InstanceId"), default_version)


def replay(episode: Episode, specs: list[Spec], now: datetime,
           default_version: str | None = None) -> ReplayOutcome:
    """Walk `specs` over the episode's history (see the module docstring)."""
    return Replay(episode, specs, now, default_version).run()


__all__ = ["Atomic", "Node", "Replay", "ReplayOutcome", "Retry", "Waiter", "WhenAll",
           "WhenAny", "replay", "target_of"]
