"""The task hub in Azure Storage (Azurite or a real account), in DurableTask.AzureStorage's
layout (`names.py`, `tablerows.py`): control and work-item queues, the History and
Instances tables, large payloads in blobs, and `taskhub.json` in the leases container.
The parts each own one concern; this class composes them behind the TaskHub interface.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from runtime.clock import Clock, SystemClock
from runtime.durable import names as nm
from runtime.durable import tablerows as tr
from runtime.durable.taskhub.blobs import LargePayloads
from runtime.durable.taskhub.history_table import HistoryTable
from runtime.durable.taskhub.instances_table import InstanceTable
from runtime.durable.taskhub.interface import HistorySnapshot, QueueMessage, TaskHub
from runtime.durable.taskhub.operations import OPERATION_TIMEOUT, Operations
from runtime.durable.taskhub.queues import AzureQueues
from runtime.storage.clients import StorageClients

log = logging.getLogger(__name__)

TASKHUB_BLOB = "taskhub.json"


class AzureTaskHub(TaskHub):
    """One task hub in the account `storage` reaches. Does not own `storage`."""

    def __init__(self, storage: StorageClients, hub_name: str, partition_count: int, *,
                 clock: Clock | None = None,
                 operation_timeout: float = OPERATION_TIMEOUT) -> None:
        super().__init__(hub_name, partition_count)
        self.clock = clock or SystemClock()
        self.storage = storage
        self.ops = Operations(self.clock, operation_timeout)
        names = self.names
        self.payloads = LargePayloads(
            storage.blobs.get_container_client(names.large_messages_container), self.ops)
        self.queues = AzureQueues(storage.queue_ops, self.payloads, self.ops, self.clock,
                                  names.poison_queue, storage.queues.create_queue)
        self.histories = HistoryTable(storage.tables.get_table_client(names.history_table),
                                      self.payloads, self.ops, self.clock)
        self.instances = InstanceTable(storage.tables.get_table_client(names.instances_table),
                                       self.payloads, self.ops)
        self._leases = storage.blobs.get_container_client(names.leases_container)

    # --- set-up ------------------------------------------------------------------------

    async def create_if_missing(self) -> None:
        tables = [self.names.history_table, self.names.instances_table]
        containers = [self.names.leases_container, self.names.large_messages_container]
        storage = self.storage
        await asyncio.gather(
            *(self._create(f"table {t}", _bind(storage.tables.create_table, t))
              for t in tables),
            *(self._create(f"queue {q}", _bind(storage.queues.create_queue, q))
              for q in self.names.all_queues),
            *(self._create(f"container {c}", _bind(storage.blobs.create_container, c))
              for c in containers))
        await self._write_taskhub_json()

    async def _create(self, what: str, create: Callable[[], Awaitable[Any]]) -> None:
        async def op() -> None:
            try:
                await create()
            except ResourceExistsError:
                pass
        await self.ops.run(op, f"creating {what}")

    async def _write_taskhub_json(self) -> None:
        blob = self._leases.get_blob_client(TASKHUB_BLOB)
        info = {"TaskHubName": self.hub_name, "CreatedAt": tr.format_iso(self.clock.now()),
                "PartitionCount": self.partition_count}

        async def op() -> None:
            try:
                await blob.upload_blob(json.dumps(info).encode(), overwrite=False)
                return
            except ResourceExistsError:
                pass
            existing = json.loads(await (await blob.download_blob()).readall())
            if existing.get("PartitionCount") != self.partition_count:
                log.warning(
                    "Task hub %s was created with %s partitions and now runs with %d; "
                    "orchestrations in flight may misbehave. Use a new task hub name "
                    "to change the partition count.",
                    self.hub_name, existing.get("PartitionCount"), self.partition_count)
                info["CreatedAt"] = existing.get("CreatedAt", info["CreatedAt"])
                await blob.upload_blob(json.dumps(info).encode(), overwrite=True)
        await self.ops.run(op, f"writing {self.names.leases_container}/{TASKHUB_BLOB}")

    async def read_info(self) -> dict[str, Any] | None:
        """The hub's `taskhub.json` ({TaskHubName, CreatedAt, PartitionCount}), or None
        when the hub has never been created in this account."""
        blob = self._leases.get_blob_client(TASKHUB_BLOB)

        async def op() -> dict[str, Any] | None:
            try:
                info = json.loads(await (await blob.download_blob()).readall())
            except ResourceNotFoundError:
                return None
            return info if isinstance(info, dict) else {}
        return await self.ops.run(op, f"reading {self.names.leases_container}/{TASKHUB_BLOB}")

    async def delete_task_hub(self) -> None:
        async def drop(what: str, delete: Callable[[], Awaitable[Any]]) -> None:
            async def op() -> None:
                try:
                    await delete()
                except ResourceNotFoundError:
                    pass
            await self.ops.run(op, f"deleting {what}")

        tables = [self.names.history_table, self.names.instances_table,
                  self.names.partitions_table]
        containers = [self.names.leases_container, self.names.large_messages_container]
        storage = self.storage
        await asyncio.gather(
            *(drop(f"table {t}", _bind(storage.tables.delete_table, t)) for t in tables),
            *(drop(f"queue {q}", _bind(storage.queues.delete_queue, q))
              for q in (*self.names.all_queues, self.names.poison_queue)),
            *(drop(f"container {c}", _bind(storage.blobs.delete_container, c))
              for c in containers))

    async def close(self) -> None:
        # The child clients share the storage's transport; closing them leaves it open.
        for client in (self.histories.table, self.instances.table, self.payloads.container,
                       self._leases):
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("closing a task hub client failed", exc_info=True)

    # --- queues ------------------------------------------------------------------------

    async def send_to_instance(self, instance_id: str, execution_id: str | None,
                               event: dict[str, Any], *, visible_at: datetime | None = None,
                               sender: tuple[str, str] | None = None,
                               episode: int | None = None) -> QueueMessage:
        queue = self.control_queue(self.partition_of(instance_id))
        return await self.queues.send(queue, instance_id, execution_id, event,
                                      visible_at=visible_at, sender=sender, episode=episode)

    async def send_activity(self, instance_id: str, execution_id: str,
                            event: dict[str, Any], *, episode: int | None = None,
                            hidden_for: float = 0.0) -> QueueMessage:
        return await self.queues.send(self.names.workitems, instance_id, execution_id, event,
                                      hidden_for=hidden_for, episode=episode)

    async def receive(self, queue: str, max_messages: int,
                      lock_seconds: float) -> list[QueueMessage]:
        return await self.queues.receive(queue, max_messages, lock_seconds)

    async def delete_message(self, msg: QueueMessage) -> bool:
        return await self.queues.delete(msg.queue, msg.message_id, msg.pop_receipt)

    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        await self.queues.abandon(msg, delay)

    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        return await self.queues.extend(msg, seconds)

    async def quarantine(self, msg: QueueMessage, reason: str) -> None:
        await self.queues.quarantine(msg, reason)

    async def peek(self, queue: str, max_messages: int = 32) -> list[QueueMessage]:
        async with self.storage.queues.get_queue_client(queue) as client:
            return await self.queues.peek(client, max_messages)

    async def queue_length(self, queue: str) -> int:
        async with self.storage.queues.get_queue_client(queue) as client:
            return await self.queues.length(client)

    # --- history -----------------------------------------------------------------------

    async def load_history(self, instance_id: str) -> HistorySnapshot:
        return await self.histories.load(instance_id)

    async def append_history(self, instance_id: str, execution_id: str, start_index: int,
                             events: list[dict[str, Any]], etag: str | None, *,
                             is_complete: bool = True) -> str:
        return await self.histories.append(instance_id, execution_id, start_index, events,
                                           etag, is_complete=is_complete)

    # --- instances ---------------------------------------------------------------------

    async def read_instance(self, instance_id: str) -> dict[str, Any] | None:
        return await self.instances.read(instance_id)

    async def insert_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        await self.instances.insert(instance_id, fields)

    async def replace_instance(self, instance_id: str, fields: Mapping[str, Any],
                               etag: str) -> None:
        await self.instances.replace(instance_id, fields, etag)

    async def merge_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        await self.instances.merge(instance_id, fields)

    async def delete_instance_row(self, instance_id: str) -> None:
        await self.instances.delete(instance_id)

    async def query_instances(self, *, created_from: datetime | None = None,
                              created_to: datetime | None = None,
                              statuses: Collection[str] | None = None,
                              prefix: str | None = None, top: int | None = None,
                              continuation: str | None = None,
                              exclude_entities: bool = False,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        return await self.instances.query(created_from=created_from, created_to=created_to,
                                          statuses=statuses, prefix=prefix, top=top,
                                          continuation=continuation,
                                          exclude_entities=exclude_entities)

    async def purge_instance(self, instance_id: str) -> bool:
        pk = nm.sanitize_key(instance_id)
        found = await self.instances.read_row(pk) is not None
        found = await self.histories.delete_all(instance_id) or found
        await self.instances.delete(instance_id)
        await self.payloads.delete_prefix(f"{pk}/")
        return found


def _bind(fn: Callable[[str], Awaitable[Any]], arg: str) -> Callable[[], Awaitable[Any]]:
    return lambda: fn(arg)


__all__ = ["TASKHUB_BLOB", "AzureTaskHub"]
