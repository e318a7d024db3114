"""A task hub held in this process, for tests that need no Azure Storage fidelity.

It behaves as the Azure task hub does where the durable runtime can tell: queue messages
are hidden while locked and come back when a lock runs out, timers become visible when
the clock reaches their time, history rows are keyed by index and execution with a
sentinel ETag guarding every write (CheckpointConflict on a stale one), and instance
rows go through the same row conversion as the Instances table (`tablerows`), so values
read back exactly as they would from storage. Nothing survives the process.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import itertools
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.clock import Clock, SystemClock, utc
from runtime.durable import names as nm
from runtime.durable import tablerows as tr
from runtime.durable.taskhub import envelope as env
from runtime.durable.taskhub.interface import HistorySnapshot, QueueMessage, TaskHub
from runtime.errors import CheckpointConflict, InstanceExists, InvalidArgument


@dataclass
class _Message:
    message_id: str
    body: dict[str, Any]
    inserted_on: datetime
    order: int
    hidden_until: float = 0.0  # process time
    visible_at: datetime | None = None  # durable time
    pop_receipt: str = ""
    dequeue_count: int = 0


@dataclass
class _History:
    rows: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    execution_id: str | None = None
    etag: int = 0


class MemoryTaskHub(TaskHub):
    """The whole task hub in dictionaries; safe for one event loop."""

    def __init__(self, hub_name: str, partition_count: int, *,
                 clock: Clock | None = None) -> None:
        super().__init__(hub_name, partition_count)
        self.clock = clock or SystemClock()
        self.queues: dict[str, list[_Message]] = {q: [] for q in self.names.all_queues}
        self.poisoned: list[dict[str, Any]] = []  # the poison queue
        self.histories: dict[str, _History] = {}
        self.rows: dict[str, dict[str, Any]] = {}  # pk -> Instances row
        self.row_etags: dict[str, int] = {}
        self.blobs: dict[str, str] = {}
        self._order = itertools.count()
        self._etags = itertools.count(1)

    # --- set-up ------------------------------------------------------------------------

    async def create_if_missing(self) -> None:
        for queue in self.names.all_queues:
            self.queues.setdefault(queue, [])

    async def delete_task_hub(self) -> None:
        self.queues = {q: [] for q in self.names.all_queues}
        self.histories.clear()
        self.rows.clear()
        self.row_etags.clear()
        self.blobs.clear()

    # --- queues ------------------------------------------------------------------------

    def _put(self, queue: str, instance_id: str, execution_id: str | None,
             event: dict[str, Any], *, visible_at: datetime | None, hidden_for: float,
             sender: tuple[str, str] | None, episode: int | None) -> QueueMessage:
        body = env.new_envelope(instance_id, execution_id, event, sender=sender,
                                episode=episode)
        env.parse_message_text(env.encode(body))  # the same serialisability as storage
        message = _Message(message_id=uuid.uuid4().hex, body=body,
                           inserted_on=self.clock.now(), order=next(self._order),
                           hidden_until=self.clock.monotonic() + max(0.0, hidden_for),
                           visible_at=visible_at, pop_receipt=uuid.uuid4().hex)
        self.queues.setdefault(queue, []).append(message)
        return self._view(queue, message)

    @staticmethod
    def _view(queue: str, message: _Message) -> QueueMessage:
        return QueueMessage(queue=queue, message_id=message.message_id,
                            pop_receipt=message.pop_receipt,
                            dequeue_count=message.dequeue_count,
                            inserted_on=message.inserted_on, body=message.body)

    async def send_to_instance(self, instance_id: str, execution_id: str | None,
                               event: dict[str, Any], *, visible_at: datetime | None = None,
                               sender: tuple[str, str] | None = None,
                               episode: int | None = None) -> QueueMessage:
        queue = self.control_queue(self.partition_of(instance_id))
        return self._put(queue, instance_id, execution_id, event, visible_at=visible_at,
                         hidden_for=0.0, sender=sender, episode=episode)

    async def send_activity(self, instance_id: str, execution_id: str,
                            event: dict[str, Any], *, episode: int | None = None,
                            hidden_for: float = 0.0) -> QueueMessage:
        return self._put(self.names.workitems, instance_id, execution_id, event,
                         visible_at=None, hidden_for=hidden_for, sender=None, episode=episode)

    def visible(self, queue: str) -> list[_Message]:
        """The messages of `queue` a receive would return now, in queue order."""
        now, durable_now = self.clock.monotonic(), self.clock.now()
        return [m for m in self.queues.get(queue, [])
                if m.hidden_until <= now and (m.visible_at is None
                                              or m.visible_at <= durable_now)]

    def runnable_count(self) -> int:
        """Messages that are not durable timers waiting for their time: visible ones,
        and ones hidden by a receiver's lock or an abandon delay (process time)."""
        durable_now = self.clock.now()
        return sum(1 for q in self.queues.values() for m in q
                   if m.visible_at is None or m.visible_at <= durable_now)

    def next_visible_at(self) -> datetime | None:
        """The earliest durable time at which a waiting timer message becomes visible."""
        times = [m.visible_at for q in self.queues.values() for m in q
                 if m.visible_at is not None and m.visible_at > self.clock.now()]
        return min(times) if times else None

    async def receive(self, queue: str, max_messages: int,
                      lock_seconds: float) -> list[QueueMessage]:
        taken = self.visible(queue)[:max(1, min(32, max_messages))]
        until = self.clock.monotonic() + max(1.0, lock_seconds)
        found: list[QueueMessage] = []
        for message in taken:
            message.hidden_until = until
            message.visible_at = None
            message.pop_receipt = uuid.uuid4().hex
            message.dequeue_count += 1
            found.append(self._view(queue, message))
        return found

    def _held(self, msg: QueueMessage) -> _Message | None:
        for message in self.queues.get(msg.queue, []):
            if message.message_id == msg.message_id:
                # A stale receipt means another receiver holds it now, as in Azure.
                return message if message.pop_receipt == msg.pop_receipt else None
        return None

    async def delete_message(self, msg: QueueMessage) -> bool:
        message = self._held(msg)
        if message is not None:
            self.queues[msg.queue].remove(message)
            return True
        return not any(m.message_id == msg.message_id for m in self.queues.get(msg.queue, []))

    async def quarantine(self, msg: QueueMessage, reason: str) -> None:
        self.poisoned.append({"Queue": msg.queue, "MessageId": msg.message_id,
                              "InstanceId": msg.instance_id, "Reason": reason,
                              "Message": dict(msg.body)})
        await self.delete_message(msg)

    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        message = self._held(msg)
        if message is not None:
            message.hidden_until = self.clock.monotonic() + max(0.0, delay)

    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        message = self._held(msg)
        if message is None:
            return msg
        message.hidden_until = self.clock.monotonic() + max(1.0, seconds)
        message.pop_receipt = uuid.uuid4().hex
        return self._view(msg.queue, message)

    async def peek(self, queue: str, max_messages: int = 32) -> list[QueueMessage]:
        return [dataclasses.replace(self._view(queue, m), pop_receipt="")
                for m in self.visible(queue)[:max(1, min(32, max_messages))]]

    async def queue_length(self, queue: str) -> int:
        return len(self.queues.get(queue, []))

    # --- history -----------------------------------------------------------------------

    async def load_history(self, instance_id: str) -> HistorySnapshot:
        stored = self.histories.get(instance_id)
        if stored is None or stored.execution_id is None:
            return HistorySnapshot(events=[], etag=None, execution_id=None)
        events = [tr.row_to_event(row, self.blobs) for index, (execution, row)
                  in sorted(stored.rows.items()) if execution == stored.execution_id]
        return HistorySnapshot(events=events, etag=str(stored.etag),
                               execution_id=stored.execution_id)

    async def append_history(self, instance_id: str, execution_id: str, start_index: int,
                             events: list[dict[str, Any]], etag: str | None, *,
                             is_complete: bool = True) -> str:
        stored = self.histories.get(instance_id)
        if etag is None:
            if stored is not None and stored.execution_id is not None:
                raise CheckpointConflict(instance_id)  # the sentinel exists: 409
            stored = self.histories[instance_id] = _History()
        elif stored is None or str(stored.etag) != etag:
            raise CheckpointConflict(instance_id)  # the sentinel changed: 412
        pk = nm.sanitize_key(instance_id)
        for i, event in enumerate(events):
            row, offloads = tr.event_to_row(event, partition_key=pk, execution_id=execution_id,
                                            index=start_index + i)
            for offload in offloads:
                self.blobs[offload.blob_name] = offload.text
            stored.rows[start_index + i] = (execution_id, row)
        stored.execution_id = execution_id
        stored.etag = next(self._etags)
        return str(stored.etag)

    # --- instances ---------------------------------------------------------------------

    def _record(self, pk: str) -> dict[str, Any]:
        record = tr.row_to_instance(self.rows[pk], nm.unsanitize_key(pk), self.blobs)
        record["etag"] = str(self.row_etags[pk])
        return record

    def _row(self, pk: str, fields: Mapping[str, Any], *, merge: bool) -> dict[str, Any]:
        row, offloads = tr.instance_to_row(pk, fields, merge=merge, blob_url=lambda n: n)
        for offload in offloads:
            self.blobs[offload.blob_name] = offload.text
        return row

    async def read_instance(self, instance_id: str) -> dict[str, Any] | None:
        pk = nm.sanitize_key(instance_id)
        return self._record(pk) if pk in self.rows else None

    async def insert_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        pk = nm.sanitize_key(instance_id)
        existing = self.rows.get(pk)
        if existing is not None:
            if fields.get("ExecutionId") is not None and \
                    existing.get("ExecutionId") == fields.get("ExecutionId"):
                return
            raise InstanceExists(instance_id, str(existing.get("RuntimeStatus")))
        self.rows[pk] = self._row(pk, fields, merge=False)
        self.row_etags[pk] = next(self._etags)

    async def replace_instance(self, instance_id: str, fields: Mapping[str, Any],
                               etag: str) -> None:
        pk = nm.sanitize_key(instance_id)
        existing = self.rows.get(pk)
        if existing is not None and etag != "*" and str(self.row_etags[pk]) != etag:
            if existing.get("ExecutionId") != fields.get("ExecutionId"):
                raise InstanceExists(instance_id, str(existing.get("RuntimeStatus")))
        self.rows[pk] = self._row(pk, fields, merge=False)
        self.row_etags[pk] = next(self._etags)

    async def merge_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        pk = nm.sanitize_key(instance_id)
        row = self.rows.setdefault(pk, {"PartitionKey": pk, "RowKey": ""})
        row.update(self._row(pk, fields, merge=True))
        self.row_etags[pk] = next(self._etags)

    async def delete_instance_row(self, instance_id: str) -> None:
        pk = nm.sanitize_key(instance_id)
        self.rows.pop(pk, None)
        self.row_etags.pop(pk, None)

    async def query_instances(self, *, created_from: datetime | None = None,
                              created_to: datetime | None = None,
                              statuses: Collection[str] | None = None,
                              prefix: str | None = None, top: int | None = None,
                              continuation: str | None = None,
                              exclude_entities: bool = False,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        low, high = nm.key_prefix_range(nm.sanitize_key(prefix)) if prefix else ("", None)
        wanted = set(statuses or ())
        matches: list[str] = []
        for pk in sorted(self.rows):
            record = self._record(pk)
            created = record.get("CreatedTime")
            if created_from is not None and (created is None or utc(created) < created_from):
                continue
            if created_to is not None and (created is None or utc(created) > created_to):
                continue
            if wanted and record.get("RuntimeStatus") not in wanted:
                continue
            if pk < low or (high is not None and pk >= high):
                continue
            if exclude_entities and pk.startswith("@"):
                continue
            matches.append(pk)
        # Like the table service's token, the next page starts at a key, so rows deleted
        # between pages (purge by filter) do not shift it.
        start = bisect.bisect_left(matches, _key(continuation)) if continuation else 0
        end = len(matches) if top is None else start + max(1, top)
        token = _token(matches[end]) if end < len(matches) else None
        return [self._record(pk) for pk in matches[start:end]], token

    async def purge_instance(self, instance_id: str) -> bool:
        pk = nm.sanitize_key(instance_id)
        found = pk in self.rows or instance_id in self.histories
        self.rows.pop(pk, None)
        self.row_etags.pop(pk, None)
        self.histories.pop(instance_id, None)
        for name in [n for n in self.blobs if n.startswith(f"{pk}/")]:
            del self.blobs[name]
        return found


def _token(next_key: str) -> str:
    return base64.urlsafe_b64encode(f"key:{next_key}".encode()).decode("ascii")


def _key(token: str) -> str:
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode("ascii")).decode().partition(":")
        if kind == "key":
            return value
    except (ValueError, binascii.Error, UnicodeError):
        pass
    raise InvalidArgument("The continuation token is not valid.")

__all__ = ["MemoryTaskHub"]
