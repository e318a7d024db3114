"""A whole task hub in memory, for unit tests: one instance, its control queue and its
work items, driven through runtime.durable.engine with the real SDK orchestrator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import azure.durable_functions as df

from runtime.durable import engine, history
from runtime.durable.engine import Episode, EpisodeResult

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
IID = "inst-1"
XID = "exec-1"

Orchestrator = Callable[[df.DurableOrchestrationContext], Generator[Any, Any, Any]]
Loop = TypeVar("Loop", bound="InMemoryLoop")


@dataclass
class Queued:
    event: dict[str, Any]
    visible_at: datetime


class InMemoryLoop:
    """Plans each episode from the queued messages, calls the orchestrator, applies what it
    returned, and runs the activities it scheduled, with a clock that jumps to the next
    visible message when nothing is ready."""

    max_steps = 5000

    def __init__(self, fn: Orchestrator, activities: dict[str, Callable[[Any], Any]], *,
                 known: tuple[str, ...] | None = None, batch_size: int = 32,
                 activities_per_step: int | None = 1, duplicate_replies: bool = False,
                 reverse: bool = False, name: str = "Orch", execution_id: str = XID) -> None:
        self.fn = fn
        self.handle = df.Orchestrator.create(fn)
        self.activities = activities
        self.known = tuple(activities) if known is None else known
        self.batch_size = batch_size
        self.activities_per_step = activities_per_step
        self.duplicate_replies = duplicate_replies
        self.reverse = reverse
        self.name = name
        self.execution_id = execution_id
        self.now = T0
        self.history: list[dict[str, Any]] = []
        self.control: list[Queued] = []
        self.work: list[dict[str, Any]] = []
        self.status = "Pending"
        self.output: str | None = None
        self.custom_status: str | None = None
        self.episodes = 0
        self.deferred = 0
        self.discarded = 0
        self.generations = 0
        self.contexts: list[str] = []
        self.states: list[str] = []

    def start(self: Loop, value: Any = None) -> Loop:
        # Python clients double-encode the input (host-protocol.md 3.3).
        text = "null" if value is None else json.dumps(json.dumps(value))
        self.send(history.execution_started(IID, self.execution_id, self.name, text, self.now))
        return self

    def send(self, event: dict[str, Any], visible_at: datetime | None = None) -> None:
        self.control.append(Queued(event, visible_at or self.now))

    def raise_event(self, name: str, value: Any) -> None:
        self.send(history.event_raised(name, json.dumps(value), self.now))

    def run(self: Loop, max_steps: int | None = None) -> Loop:
        for _ in range(self.max_steps if max_steps is None else max_steps):
            self.now += timedelta(seconds=1)
            if self.run_orchestrator() or self.run_activities():
                continue
            if not self.control:
                return self
            self.now = max(self.now, min(q.visible_at for q in self.control))
        raise AssertionError("the orchestration did not settle")

    def run_orchestrator(self) -> bool:
        ready = [q for q in self.control if q.visible_at <= self.now][:self.batch_size]
        if not ready:
            return False
        for queued in ready:
            self.control.remove(queued)
        episode = engine.plan_episode(IID, self.history, [q.event for q in ready], self.now)
        for index in episode.deferred:  # abandoned: visible again after a back-off
            self.send(ready[index].event, self.now + timedelta(seconds=2))
        self.deferred += len(episode.deferred)
        self.discarded += len(episode.discarded)
        if episode.terminated_reason is not None:
            result = engine.terminate(episode, self.now)
        elif episode.needs_replay:
            held = engine.hold(episode, self.now)
            result = held if held is not None else self.replay(episode)
            outgoing = list(result.outgoing)
            while result.continued is not None:  # the next generation, same work item
                self.generations += 1
                episode = engine.next_generation(episode, result.continued,
                                                 f"{self.execution_id}-g{self.generations}",
                                                 self.now)
                result = self.replay(episode)
                outgoing += result.outgoing
            result = dataclasses.replace(result, outgoing=outgoing)
        else:
            return True
        self.episodes += 1
        self.history = list(episode.past_events) + result.new_events
        for message in result.outgoing:
            assert message.target_instance_id == IID
            if message.kind == "activity":
                self.work.append(message.event)
            else:
                self.send(message.event, message.visible_at)
        self.status = result.runtime_status
        self.output = result.output_text
        self.custom_status = result.custom_status_text
        return True

    def replay(self, episode: Episode) -> EpisodeResult:
        context = engine.build_context(episode)
        self.contexts.append(context)
        returned, raised = self.call_orchestrator(context)
        sdk_state = engine.parse_sdk_result(returned, raised)
        return engine.apply_state(episode, sdk_state, self.known, self.now)

    def call_orchestrator(self, context: str) -> tuple[str | None, str | None]:
        """One episode's call: the state JSON it returned, or the text of what it raised."""
        try:
            returned: str = self.handle(context)
        except Exception as exc:  # the worker reports the text of what the SDK raised
            return None, str(exc)
        self.states.append(returned)
        return returned, None

    def run_activities(self) -> bool:
        if not self.work:
            return False
        count = self.activities_per_step or len(self.work)
        batch, self.work = self.work[:count], self.work[count:]
        if self.reverse:
            batch.reverse()
        for scheduled in batch:
            reply = self.execute(scheduled)
            self.send(reply)
            if self.duplicate_replies:
                self.send(dict(reply))
        return True

    def execute(self, scheduled: dict[str, Any]) -> dict[str, Any]:
        name, task_id = scheduled["Name"], scheduled["EventId"]
        try:
            value = self.activities[name](json.loads(scheduled["Input"]))
        except Exception as exc:
            kind = type(exc).__name__
            return history.task_failed(
                task_id, f"Activity function '{name}' failed: {kind}: {exc}",
                json.dumps({"ClassName": kind, "Message": str(exc)}), self.now)
        return history.task_completed(task_id, json.dumps(value), self.now)

    @property
    def value(self) -> Any:
        return None if self.output is None else json.loads(self.output)
