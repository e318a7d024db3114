"""A task hub that counts what goes through it, for the test harness: whether a storage
operation is in flight, and a generation number that moves whenever storage changed or
a receive found messages. The harness reads both to tell "nothing is happening" from
"something is about to" (a receive under way may be holding a message that no session
has yet)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any, TypeVar

from runtime.durable.taskhub import HistorySnapshot, QueueMessage, TaskHub

T = TypeVar("T")


class ObservedTaskHub(TaskHub):
    """Delegates every operation to `inner`; `in_flight` counts operations running,
    `generation` moves after each one that changed something, and `changed` is set
    then (waiters clear it)."""

    def __init__(self, inner: TaskHub) -> None:
        super().__init__(inner.hub_name, inner.partition_count)
        self.inner = inner
        self.in_flight = 0
        self.generation = 0
        self.changed = asyncio.Event()

    def touch(self) -> None:
        """Something changed (also called for work that did not go through storage)."""
        self.generation += 1
        self.changed.set()

    async def _run(self, op: Callable[[], Awaitable[T]], *, mutates: bool = True) -> T:
        self.in_flight += 1
        try:
            result = await op()
        finally:
            self.in_flight -= 1
        if mutates:
            self.touch()
        return result

    # --- set-up ------------------------------------------------------------------------

    async def create_if_missing(self) -> None:
        await self._run(self.inner.create_if_missing)

    async def delete_task_hub(self) -> None:
        await self._run(self.inner.delete_task_hub)

    async def close(self) -> None:
        await self.inner.close()

    # --- queues ------------------------------------------------------------------------

    async def send_to_instance(self, instance_id: str, execution_id: str | None,
                               event: dict[str, Any], *, visible_at: datetime | None = None,
                               sender: tuple[str, str] | None = None,
                               episode: int | None = None) -> QueueMessage:
        return await self._run(lambda: self.inner.send_to_instance(
            instance_id, execution_id, event, visible_at=visible_at, sender=sender,
            episode=episode))

    async def send_activity(self, instance_id: str, execution_id: str,
                            event: dict[str, Any], *, episode: int | None = None,
                            hidden_for: float = 0.0) -> QueueMessage:
        return await self._run(lambda: self.inner.send_activity(
            instance_id, execution_id, event, episode=episode, hidden_for=hidden_for))

    async def receive(self, queue: str, max_messages: int,
                      lock_seconds: float) -> list[QueueMessage]:
        found = await self._run(lambda: self.inner.receive(queue, max_messages, lock_seconds),
                                mutates=False)
        if found:
            self.touch()  # messages left the queue for a session: work has begun
        return found

    async def delete_message(self, msg: QueueMessage) -> bool:
        return await self._run(lambda: self.inner.delete_message(msg))

    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        await self._run(lambda: self.inner.abandon(msg, delay))

    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        # A lock renewal changes nothing anyone waits for.
        return await self._run(lambda: self.inner.extend(msg, seconds), mutates=False)

    async def quarantine(self, msg: QueueMessage, reason: str) -> None:
        await self._run(lambda: self.inner.quarantine(msg, reason))

    async def peek(self, queue: str, max_messages: int = 32) -> list[QueueMessage]:
        return await self._run(lambda: self.inner.peek(queue, max_messages), mutates=False)

    async def queue_length(self, queue: str) -> int:
        return await self._run(lambda: self.inner.queue_length(queue), mutates=False)

    # --- history -----------------------------------------------------------------------

    async def load_history(self, instance_id: str) -> HistorySnapshot:
        return await self._run(lambda: self.inner.load_history(instance_id), mutates=False)

    async def append_history(self, instance_id: str, execution_id: str, start_index: int,
                             events: list[dict[str, Any]], etag: str | None, *,
                             is_complete: bool = True) -> str:
        return await self._run(lambda: self.inner.append_history(
            instance_id, execution_id, start_index, events, etag, is_complete=is_complete))

    # --- instances ---------------------------------------------------------------------

    async def read_instance(self, instance_id: str) -> dict[str, Any] | None:
        return await self._run(lambda: self.inner.read_instance(instance_id), mutates=False)

    async def insert_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        await self._run(lambda: self.inner.insert_instance(instance_id, fields))

    async def replace_instance(self, instance_id: str, fields: Mapping[str, Any],
                               etag: str) -> None:
        await self._run(lambda: self.inner.replace_instance(instance_id, fields, etag))

    async def merge_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        await self._run(lambda: self.inner.merge_instance(instance_id, fields))

    async def delete_instance_row(self, instance_id: str) -> None:
        await self._run(lambda: self.inner.delete_instance_row(instance_id))

    async def query_instances(self, *, created_from: datetime | None = None,
                              created_to: datetime | None = None,
                              statuses: Collection[str] | None = None,
                              prefix: str | None = None, top: int | None = None,
                              continuation: str | None = None,
                              exclude_entities: bool = False,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        return await self._run(lambda: self.inner.query_instances(
            created_from=created_from, created_to=created_to, statuses=statuses,
            prefix=prefix, top=top, continuation=continuation,
            exclude_entities=exclude_entities), mutates=False)

    async def purge_instance(self, instance_id: str) -> bool:
        return await self._run(lambda: self.inner.purge_instance(instance_id))


__all__ = ["ObservedTaskHub"]
