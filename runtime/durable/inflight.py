"""What the dispatcher holds in flight: events waiting for their instance's next episode,
per-instance sessions, cached histories, activity work items kept locked, and the ordered
background writes that finish a checkpoint."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime import console
from runtime.clock import Clock
from runtime.durable.taskhub import HistorySnapshot, QueueMessage, TaskHub
from runtime.errors import HostError, StorageError, WorkerDied

log = console.get("durable")

HISTORY_CACHE_INSTANCES = 1000
HISTORY_CACHE_EVENTS = 200_000


@dataclass(frozen=True)
class Pending:
    """An event waiting for its instance's next episode.

    `message` is the queue message to delete once the event is checkpointed: the control
    message that carried it, or, for an activity result handed over in memory, the
    activity's work item (held by `WorkItems`)."""

    event: dict[str, Any]
    message: QueueMessage
    local: bool = False  # an activity result handed over in memory

    @property
    def key(self) -> str:
        return self.message.message_id

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.message.inserted_on, self.message.sequence_number)

    @property
    def execution_id(self) -> str | None:
        return self.message.execution_id


@dataclass
class Session:
    instance_id: str
    buffer: dict[str, Pending] = field(default_factory=dict)
    active: list[Pending] = field(default_factory=list)  # the episode being run
    task: asyncio.Task[None] | None = None


class HistoryCache:
    """Histories of instances this host owns, as of their last checkpoint (LRU)."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, HistorySnapshot] = OrderedDict()
        self.events = 0

    def get(self, instance_id: str) -> HistorySnapshot | None:
        snapshot = self.entries.get(instance_id)
        if snapshot is not None:
            self.entries.move_to_end(instance_id)
        return snapshot

    def put(self, instance_id: str, snapshot: HistorySnapshot) -> None:
        self.drop(instance_id)
        self.entries[instance_id] = snapshot
        self.events += len(snapshot.events)
        while self.entries and (len(self.entries) > HISTORY_CACHE_INSTANCES
                                or self.events > HISTORY_CACHE_EVENTS):
            _, evicted = self.entries.popitem(last=False)
            self.events -= len(evicted.events)

    def drop(self, instance_id: str) -> None:
        snapshot = self.entries.pop(instance_id, None)
        if snapshot is not None:
            self.events -= len(snapshot.events)

    def drop_where(self, predicate: Any) -> None:
        for instance_id in [i for i in self.entries if predicate(i)]:
            self.drop(instance_id)


class WorkItems:
    """Messages this host holds (activity work items received or sent hidden to run
    itself; control messages buffered or in an episode), kept hidden from other pollers
    until they are deleted. A lock is renewed when half of it is left, so a crashed
    host's work is visible again within one lock period."""

    def __init__(self, hub: TaskHub, lock: float, clock: Clock) -> None:
        self.hub = hub
        self.lock = lock
        self.clock = clock
        self.held: dict[str, tuple[QueueMessage, float]] = {}  # id -> (message, hidden until)

    def hold(self, message: QueueMessage, hidden_for: float) -> None:
        self.held[message.message_id] = (message, self.clock.monotonic() + hidden_for)

    def current(self, message: QueueMessage) -> QueueMessage:
        """The message with its latest pop receipt (renewals change it)."""
        entry = self.held.get(message.message_id)
        return entry[0] if entry else message

    async def delete(self, message: QueueMessage) -> bool:
        """Delete it with its latest receipt; False when another receiver holds it."""
        current = self.current(message)
        self.held.pop(message.message_id, None)
        return await self.hub.delete_message(current)

    async def release(self, message: QueueMessage, delay: float) -> None:
        current = self.current(message)
        self.held.pop(message.message_id, None)
        await self.hub.abandon(current, delay)

    async def release_id(self, message_id: str, delay: float) -> None:
        """Release a held work item by id; a storage failure leaves it to its lock."""
        entry = self.held.pop(message_id, None)
        if entry is None:
            return
        try:
            await self.hub.abandon(entry[0], delay)
        except StorageError:
            pass

    def forget_where(self, predicate: Any) -> None:
        """Stop holding (and renewing) the messages `predicate` picks: another host owns
        them now."""
        for message_id in [i for i, (m, _) in self.held.items() if predicate(m)]:
            self.held.pop(message_id, None)

    async def renew_expiring(self) -> None:
        now = self.clock.monotonic()
        for message_id, (message, until) in list(self.held.items()):
            if until - now > self.lock / 2:
                continue
            try:
                renewed = await self.hub.extend(message, self.lock)
            except StorageError as exc:
                log.warning("Could not extend the lock of work item %s: %s", message_id, exc)
                continue
            if message_id in self.held:
                self.held[message_id] = (renewed, now + self.lock)


class WorkerExits:
    """Crash attribution, by work item key. When a worker process exits, every
    invocation it ran fails with WorkerDied; only one that ran alone in it is charged with
    the exit. Any interrupted item runs again alone (`alone(key)`, an exclusive
    invocation), so the one at fault is found; it fails once charged `limit` times."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.charged: dict[str, int] = {}
        self.suspects: set[str] = set()

    def alone(self, key: str) -> bool:
        """Whether the item's next run must be alone in its worker."""
        return key in self.suspects

    def interrupted(self, key: str, error: Exception) -> int | None:
        """Record an interruption: None when the item should run again (alone), else the
        exits charged to it, the limit reached (the caller fails it)."""
        charged = self.charged.get(key, 0)
        if isinstance(error, WorkerDied) and error.alone:
            charged += 1
            self.charged[key] = charged
        if charged < self.limit:
            self.suspects.add(key)
            return None
        self.done(key)
        return charged

    def done(self, key: str) -> None:
        """The item ran to an answer (or failed for good): forget it."""
        self.charged.pop(key, None)
        self.suspects.discard(key)

    @staticmethod
    def verdict(charged: int, what: str) -> str:
        return (f"{what} made its worker process exit {charged} times, each time running "
                "alone in it, so it is not run again.")


class OrderedWrites:
    """Per-instance background writes that must land in order (an Instances row update,
    then the deletion of the messages it consumed), off the critical path of the next
    episode. The history commit before them is the checkpoint; if the process dies first,
    the messages are delivered again and the row is repaired from history."""

    def __init__(self, spawn: Any) -> None:
        self.spawn = spawn
        self.tails: dict[str, asyncio.Task[None]] = {}

    def submit(self, instance_id: str, write: Any) -> None:
        previous = self.tails.get(instance_id)

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await write()
            except HostError as exc:
                log.warning("A background write for '%s' failed (%s); its messages will be "
                            "delivered again.", instance_id, exc)

        task: asyncio.Task[None] = self.spawn(run())
        self.tails[instance_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self.tails.get(instance_id) is done:
                del self.tails[instance_id]
        task.add_done_callback(forget)

    async def drain(self) -> None:
        await asyncio.gather(*self.tails.values(), return_exceptions=True)
