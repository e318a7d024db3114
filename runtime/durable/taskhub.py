"""The task hub in Azure Storage: queues, History and Instances tables, large-payload blobs.

The layout is DurableTask.AzureStorage's (see names.py and tablerows.py), so that tools
which read a Durable Functions task hub read ours. History is written with the sentinel
row's ETag as the guard against two writers ("split brain"); every operation retries
transient storage errors itself (storage.with_retries) until its deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import gzip
import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.storage.queue.aio import QueueClient

from runtime.durable import faults
from runtime.durable import names as nm
from runtime.durable import tablebatch as tb
from runtime.durable import tablerows as tr
from runtime.durable.storage import StorageClients, describe_error, with_retries
from runtime.errors import (
    CheckpointConflict,
    InstanceExists,
    InvalidArgument,
    StorageError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Serialized UTF-8 size above which a queue message goes to a blob (DTFx: 45 KB, a margin
# for Base64's growth under the 64 KB message limit).
MAX_MESSAGE_BYTES = 45 * 1024
MAX_BATCH_ROWS = 99  # + the sentinel = the 100-operation limit of a transaction
MAX_BATCH_BYTES = 3 * 1024 * 1024  # under the 4 MB limit of a transaction body
MAX_VISIBILITY_DELAY = 7 * 24 * 3600
MAX_RECEIVE = 32
TASKHUB_BLOB = "taskhub.json"
_BLOB_CONCURRENCY = 16

# Orders messages sent by this process when their InsertedOn ties (DTFx's SequenceNumber).
_sequence = itertools.count(1)


@dataclass(frozen=True)
class QueueMessage:
    queue: str
    message_id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime
    body: dict[str, Any]  # the MessageData envelope, restored from its blob if it was large

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = self.body["TaskMessage"]["Event"]
        return event

    @property
    def instance_id(self) -> str:
        return str(self.body["TaskMessage"]["OrchestrationInstance"]["InstanceId"])

    @property
    def execution_id(self) -> str | None:
        value = self.body["TaskMessage"]["OrchestrationInstance"].get("ExecutionId")
        return None if value is None else str(value)

    @property
    def sequence_number(self) -> int:
        return int(self.body.get("SequenceNumber") or 0)


@dataclass(frozen=True)
class HistorySnapshot:
    events: list[dict[str, Any]]  # the current execution's events, in order
    etag: str | None  # the sentinel's ETag; None when the instance has no history
    execution_id: str | None


class TaskHub:
    """The storage operations of one task hub. Does not own `storage`."""

    def __init__(self, storage: StorageClients, hub_name: str, partition_count: int, *,
                 operation_timeout: float = 60.0) -> None:
        self.names = nm.hub_names(hub_name, partition_count)
        self.hub_name = hub_name
        self.partition_count = partition_count
        self.operation_timeout = operation_timeout
        self._storage = storage
        self._history = storage.tables.get_table_client(self.names.history_table)
        self._instances = storage.tables.get_table_client(self.names.instances_table)
        self._large = storage.blobs.get_container_client(self.names.large_messages_container)
        self._leases = storage.blobs.get_container_client(self.names.leases_container)
        self._queues: dict[str, QueueClient] = {}
        self._lean = storage.lean_queues
        self._blob_slots = asyncio.Semaphore(_BLOB_CONCURRENCY)

    # --- names -------------------------------------------------------------------------

    @property
    def control_queues(self) -> tuple[str, ...]:
        return self.names.control_queues

    @property
    def workitems_queue(self) -> str:
        return self.names.workitems

    def partition_of(self, instance_id: str) -> int:
        return nm.partition_of(instance_id, self.partition_count)

    def control_queue(self, partition: int) -> str:
        return self.names.control_queues[partition]

    # --- set-up ------------------------------------------------------------------------

    async def create_if_missing(self) -> None:
        """Create every artifact of the hub that does not exist yet (safe to race)."""
        tables = [self.names.history_table, self.names.instances_table]
        containers = [self.names.leases_container, self.names.large_messages_container]
        await asyncio.gather(
            *(self._create(f"table {t}", self._create_table(t)) for t in tables),
            *(self._create(f"queue {q}", self._queue(q).create_queue)
              for q in self.names.all_queues),
            *(self._create(f"container {c}",
                           self._storage.blobs.get_container_client(c).create_container)
              for c in containers))
        await self._write_taskhub_json()

    def _create_table(self, name: str) -> Callable[[], Awaitable[Any]]:
        return lambda: self._storage.tables.create_table(name)

    async def _create(self, what: str, create: Callable[[], Awaitable[Any]]) -> None:
        async def op() -> None:
            try:
                await create()
            except ResourceExistsError:
                pass
        await self._run(op, f"creating {what}")

    async def _write_taskhub_json(self) -> None:
        blob = self._leases.get_blob_client(TASKHUB_BLOB)
        info = {"TaskHubName": self.hub_name,
                "CreatedAt": tr.format_iso(datetime.now(timezone.utc)),
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
        await self._run(op, f"writing {self.names.leases_container}/{TASKHUB_BLOB}")

    async def delete_task_hub(self) -> None:
        """Delete every artifact of the hub (tests and `purge everything`)."""
        async def drop(what: str, delete: Callable[[], Awaitable[Any]]) -> None:
            async def op() -> None:
                try:
                    await delete()
                except ResourceNotFoundError:
                    pass
            await self._run(op, f"deleting {what}")

        tables = [self.names.history_table, self.names.instances_table,
                  self.names.partitions_table]
        containers = [self.names.leases_container, self.names.large_messages_container]
        await asyncio.gather(
            *(drop(f"table {t}", _bind(self._storage.tables.delete_table, t)) for t in tables),
            *(drop(f"queue {q}", self._queue(q).delete_queue) for q in self.names.all_queues),
            *(drop(f"container {c}",
                   self._storage.blobs.get_container_client(c).delete_container)
              for c in containers))

    async def close(self) -> None:
        # The child clients share the storage's transport; closing them leaves it open.
        clients: list[Any] = [self._history, self._instances, self._large, self._leases,
                              *self._queues.values()]
        self._queues.clear()
        for client in clients:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("closing a task hub client failed", exc_info=True)

    # --- queues ------------------------------------------------------------------------

    async def send_to_instance(self, instance_id: str, execution_id: str | None,
                               event: dict[str, Any], *, visibility_delay: float = 0.0,
                               sender: tuple[str, str] | None = None,
                               episode: int | None = None) -> QueueMessage:
        queue = self.control_queue(self.partition_of(instance_id))
        return await self._send(queue, instance_id, execution_id, event, visibility_delay,
                                sender, episode)

    async def send_activity(self, instance_id: str, execution_id: str, event: dict[str, Any],
                            *, episode: int | None = None,
                            visibility_delay: float = 0.0) -> QueueMessage:
        """Enqueue an activity. With a visibility delay the sender keeps the message
        hidden (as if it had received it) and may run it itself at once; the queued copy
        stays the source of truth should the sender crash."""
        return await self._send(self.names.workitems, instance_id, execution_id, event,
                                visibility_delay, None, episode)

    async def _send(self, queue: str, instance_id: str, execution_id: str | None,
                    event: dict[str, Any], delay: float, sender: tuple[str, str] | None,
                    episode: int | None) -> QueueMessage:
        if delay > MAX_VISIBILITY_DELAY:
            raise ValueError(f"visibility delay {delay:.0f} s exceeds the queue limit of "
                             f"{MAX_VISIBILITY_DELAY} s (7 days)")
        activity_id = uuid.uuid4()
        envelope: dict[str, Any] = {
            "ActivityId": str(activity_id),
            "TaskMessage": {
                "Event": event,
                "SequenceNumber": 0,
                "OrchestrationInstance": {"InstanceId": instance_id,
                                          "ExecutionId": execution_id},
            },
            "CompressedBlobName": None,
            "SequenceNumber": next(_sequence),
            "Sender": (None if sender is None
                       else {"InstanceId": sender[0], "ExecutionId": sender[1]}),
        }
        if episode is not None:
            envelope["Episode"] = episode
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        data = text.encode("utf-8")
        if len(data) > MAX_MESSAGE_BYTES:
            type_name = tr.EVENT_TYPE_NAMES.get(event.get("EventType", -1), "Unknown")
            blob_name = nm.message_blob_name(nm.sanitize_key(instance_id), activity_id.hex,
                                             type_name)
            await self._upload(blob_name, data)
            text = json.dumps({"CompressedBlobName": blob_name})
        visibility = math.ceil(delay) if delay > 0 else None
        lean = self._lean

        async def op() -> Any:
            if lean is not None:
                return await lean.send(queue, text, visibility)
            return await self._queue(queue).send_message(text, visibility_timeout=visibility,
                                                         time_to_live=-1)
        sent = await self._run(op, f"sending a message to {queue}")
        if faults.active.duplicate_sends:
            await self._run(op, f"sending a duplicate message to {queue}")
        return QueueMessage(queue=queue, message_id=sent.id, pop_receipt=sent.pop_receipt,
                            dequeue_count=0, inserted_on=sent.inserted_on, body=envelope)

    async def receive(self, queue: str, max_messages: int,
                      visibility_timeout: float) -> list[QueueMessage]:
        """Up to `max_messages` (1-32) visible messages; one request."""
        count = max(1, min(MAX_RECEIVE, max_messages))
        hidden_for = max(1, math.ceil(visibility_timeout))
        client = self._queue(queue)
        lean = self._lean

        async def op() -> list[Any]:
            if lean is not None:
                return list(await lean.receive(queue, count, hidden_for))
            pages = client.receive_messages(messages_per_page=count,
                                            visibility_timeout=hidden_for).by_page()
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return []
            return [m async for m in page]
        raw = await self._run(op, f"receiving from {queue}")
        decoded = await asyncio.gather(*(self._decode(queue, m) for m in raw))
        return [m for m in decoded if m is not None]

    async def _decode(self, queue: str, raw: Any) -> QueueMessage | None:
        try:
            body = _parse_message_text(raw.content)
            blob_name = body.get("CompressedBlobName")
            if blob_name and "TaskMessage" not in body:
                body = json.loads(await self._download(blob_name))
                body["CompressedBlobName"] = blob_name
            body["TaskMessage"]["OrchestrationInstance"]["InstanceId"]  # noqa: B018
        except (ValueError, KeyError, TypeError, ResourceNotFoundError) as exc:
            # Such a message can never be processed; keeping it would wedge the queue.
            log.warning("Dropping unreadable message %s from %s: %s", raw.id, queue,
                        describe_error(exc))
            await self._delete(queue, raw.id, raw.pop_receipt)
            return None
        return QueueMessage(queue=queue, message_id=raw.id, pop_receipt=raw.pop_receipt,
                            dequeue_count=int(raw.dequeue_count or 0),
                            inserted_on=raw.inserted_on, body=body)

    async def delete_message(self, msg: QueueMessage) -> None:
        """Delete a received message; one that is already gone is fine."""
        await self._delete(msg.queue, msg.message_id, msg.pop_receipt)

    async def _delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        client = self._queue(queue)
        lean = self._lean

        async def op() -> None:
            try:
                if lean is not None:
                    await lean.delete(queue, message_id, pop_receipt)
                else:
                    await client.delete_message(message_id, pop_receipt)
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:
                if not _is_pop_receipt_mismatch(exc):
                    raise
                # Our lock expired and another receiver holds the message now; it will
                # be processed again (at least once), which is all we can do.
                log.warning("Message %s in %s was received again by another consumer "
                            "before it could be deleted", message_id, queue)
        await self._run(op, f"deleting a message from {queue}")

    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        """Make a received message visible again after `delay` seconds."""
        client = self._queue(msg.queue)
        hidden_for = max(0, min(MAX_VISIBILITY_DELAY, math.ceil(delay)))
        lean = self._lean

        async def op() -> None:
            try:
                if lean is not None:
                    await lean.update(msg.queue, msg.message_id, msg.pop_receipt, hidden_for)
                else:
                    await client.update_message(msg.message_id, msg.pop_receipt,
                                                visibility_timeout=hidden_for)
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:
                if not _is_pop_receipt_mismatch(exc):
                    raise
        await self._run(op, f"abandoning a message in {msg.queue}")

    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        """Keep a message we hold hidden for `seconds` more; returns it with the new pop
        receipt that the queue hands out on every update."""
        client = self._queue(msg.queue)
        hidden_for = max(1, min(MAX_VISIBILITY_DELAY, math.ceil(seconds)))
        lean = self._lean

        async def op() -> str:
            if lean is not None:
                return await lean.update(msg.queue, msg.message_id, msg.pop_receipt,
                                         hidden_for)
            updated = await client.update_message(msg.message_id, msg.pop_receipt,
                                                  visibility_timeout=hidden_for)
            return str(updated.pop_receipt)
        receipt = await self._run(op, f"extending a message's lock in {msg.queue}")
        return dataclasses.replace(msg, pop_receipt=receipt)

    def _queue(self, name: str) -> QueueClient:
        client = self._queues.get(name)
        if client is None:
            client = self._storage.queues.get_queue_client(name)
            self._queues[name] = client
        return client

    # --- history -----------------------------------------------------------------------

    async def load_history(self, instance_id: str) -> HistorySnapshot:
        pk = nm.sanitize_key(instance_id)
        rows = await self._partition_rows(self._history, pk, what="loading history")
        sentinel = next((r for r in rows if r["RowKey"] == nm.SENTINEL_ROW_KEY), None)
        if sentinel is None:
            return HistorySnapshot(events=[], etag=None, execution_id=None)
        execution_id = sentinel.get("ExecutionId")
        # Rows of another execution are leftovers: ContinueAsNew and id reuse rewrite
        # from index 0 without deleting the tail.
        current = sorted((r for r in rows if r["RowKey"] != nm.SENTINEL_ROW_KEY
                          and r.get("ExecutionId") == execution_id),
                         key=lambda r: str(r["RowKey"]))
        texts = await self._download_all(tr.all_blob_names(current))
        events = [tr.row_to_event(r, texts) for r in current]
        return HistorySnapshot(events=events, etag=sentinel.metadata["etag"],
                               execution_id=execution_id)

    async def append_history(self, instance_id: str, execution_id: str, start_index: int,
                             events: list[dict[str, Any]], etag: str | None, *,
                             is_complete: bool = True) -> str:
        """Write `events` at indexes start_index.. and return the sentinel's new ETag.

        `etag` None means a new history: its sentinel is inserted. Raises
        CheckpointConflict when another writer got there first.
        """
        pk = nm.sanitize_key(instance_id)
        rows: list[dict[str, Any]] = []
        offloads: list[tr.Offload] = []
        for i, event in enumerate(events):
            row, large = tr.event_to_row(event, partition_key=pk, execution_id=execution_id,
                                         index=start_index + i)
            rows.append(row)
            offloads.extend(large)
        # Blobs first: a committed row must never point at a missing blob.
        await self._upload_all(offloads)
        batches = _split_batches(rows)
        checkpoint_id = uuid.uuid4().hex
        now = datetime.now(timezone.utc)
        for number, batch in enumerate(batches):
            last = number == len(batches) - 1
            tag = f"{checkpoint_id}:{number}"
            sentinel = tr.sentinel_row(pk, execution_id, is_complete=is_complete and last,
                                       checkpoint_id=tag, completed_at=now)
            ops = [tb.Operation("upsert", row) for row in batch]
            ops.append(tb.Operation("create", sentinel) if etag is None
                       else tb.Operation("merge", sentinel, etag))
            etag = await self._commit_batch(instance_id, pk, ops, tag)
        assert etag is not None
        return etag

    async def _commit_batch(self, instance_id: str, pk: str, ops: list[tb.Operation],
                            tag: str) -> str:
        async def op() -> str:
            try:
                etags = await tb.submit(self._history, ops)
            except tb.BatchConflict as exc:
                if exc.status_code not in (409, 412):
                    raise
                # A transient failure after the server applied this batch makes our
                # retry collide with ourselves; the sentinel then carries our tag.
                landed = await self._sentinel_etag_if(pk, tag)
                if landed is not None:
                    return landed
                raise CheckpointConflict(instance_id) from exc
            return str(etags[-1])
        return await self._run(op, f"writing the history of '{instance_id}'")

    async def _sentinel_etag_if(self, pk: str, tag: str) -> str | None:
        try:
            row = await self._history.get_entity(pk, nm.SENTINEL_ROW_KEY,
                                                 select=["CheckpointId"])
        except ResourceNotFoundError:
            return None
        if row.get("CheckpointId") != tag:
            return None
        return str(row.metadata["etag"])

    # --- instances ---------------------------------------------------------------------

    async def read_instance(self, instance_id: str) -> dict[str, Any] | None:
        """The instance's row (large columns restored) + InstanceId and etag, or None."""
        pk = nm.sanitize_key(instance_id)
        row = await self._instance_row(pk)
        if row is None:
            return None
        return await self._to_instance(row)

    async def insert_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """Insert a new row; InstanceExists if one is there (unless it is this very row)."""
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare_instance(pk, fields, merge=False)

        async def op() -> None:
            try:
                await self._instances.create_entity(row)
            except ResourceExistsError as exc:
                await self._raise_unless_ours(instance_id, pk, row, exc)
        await self._run(op, f"creating the instance row of '{instance_id}'")

    async def replace_instance(self, instance_id: str, fields: Mapping[str, Any],
                               etag: str) -> None:
        """Replace the row read with `etag` (id reuse); InstanceExists if it changed since."""
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare_instance(pk, fields, merge=False)

        async def op() -> None:
            try:
                await self._instances.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=etag,
                    match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                try:  # purged in between: nothing left to guard
                    await self._instances.create_entity(row)
                except ResourceExistsError as exc:
                    await self._raise_unless_ours(instance_id, pk, row, exc)
            except ResourceModifiedError as exc:
                await self._raise_unless_ours(instance_id, pk, row, exc)
        await self._run(op, f"replacing the instance row of '{instance_id}'")

    async def merge_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """InsertOrMerge `fields` into the row (None values are left unchanged)."""
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare_instance(pk, fields, merge=True)

        async def op() -> None:
            await self._instances.upsert_entity(row, mode=UpdateMode.MERGE)
        await self._run(op, f"updating the instance row of '{instance_id}'")

    async def delete_instance_row(self, instance_id: str) -> None:
        pk = nm.sanitize_key(instance_id)

        async def op() -> None:
            try:
                await self._instances.delete_entity(pk, "")
            except ResourceNotFoundError:
                pass
        await self._run(op, f"deleting the instance row of '{instance_id}'")

    async def query_instances(self, *, created_from: datetime | None = None,
                              created_to: datetime | None = None,
                              statuses: Collection[str] | None = None,
                              prefix: str | None = None, top: int | None = None,
                              continuation: str | None = None,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of instance records (all of them when `top` is None) + continuation."""
        clauses = ["RowKey eq ''"]
        params: dict[str, Any] = {}
        if created_from is not None:
            clauses.append("CreatedTime ge @created_from")
            params["created_from"] = created_from
        if created_to is not None:
            clauses.append("CreatedTime le @created_to")
            params["created_to"] = created_to
        if statuses:
            names = []
            for i, status in enumerate(sorted(set(statuses))):
                params[f"s{i}"] = status
                names.append(f"RuntimeStatus eq @s{i}")
            # The SDK substitutes @names word by word: keep them between spaces.
            clauses.append("( " + " or ".join(names) + " )")
        if prefix:
            low, high = nm.key_prefix_range(nm.sanitize_key(prefix))
            clauses.append("PartitionKey ge @pk_low")
            params["pk_low"] = low
            if high is not None:
                clauses.append("PartitionKey lt @pk_high")
                params["pk_high"] = high
        query = " and ".join(clauses)
        token = _decode_continuation(continuation)
        per_page = None if top is None else max(1, min(1000, top))
        rows: list[Any] = []
        while True:
            page, token = await self._query_page(query, params, per_page, token)
            rows.extend(page)
            if top is not None or token is None:
                break
        records = await asyncio.gather(*(self._to_instance(r) for r in rows))
        return list(records), _encode_continuation(token)

    async def _query_page(self, query: str, params: dict[str, Any], per_page: int | None,
                          token: Any) -> tuple[list[Any], Any]:
        async def op() -> tuple[list[Any], Any]:
            pages = self._instances.query_entities(
                query, parameters=params, results_per_page=per_page,
            ).by_page(continuation_token=token)
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return [], None
            items = [e async for e in page]
            return items, getattr(pages, "continuation_token", None) or None
        return await self._run(op, "querying instances")

    async def purge_instance(self, instance_id: str) -> bool:
        """Delete the instance's history, row and blobs; False when there was nothing."""
        pk = nm.sanitize_key(instance_id)
        found = await self._instance_row(pk) is not None
        while True:
            rows = await self._partition_rows(self._history, pk, what="listing history",
                                              select=["PartitionKey", "RowKey"])
            if not rows:
                break
            found = True
            try:
                await self._delete_rows(rows, instance_id)
            except TableTransactionError as exc:
                if exc.status_code != 404:
                    raise _as_storage_error(f"purging the history of '{instance_id}'",
                                            exc) from exc
                # Someone deleted rows too (a retried batch, a parallel purge): re-list.
        await self.delete_instance_row(instance_id)
        await self._delete_blobs(f"{pk}/")
        return found

    async def _delete_rows(self, rows: list[Any], instance_id: str) -> None:
        for start in range(0, len(rows), 100):
            ops: list[Any] = [("delete", r) for r in rows[start:start + 100]]

            async def op(ops: list[Any] = ops) -> None:
                await self._history.submit_transaction(ops)
            await self._run(op, f"purging the history of '{instance_id}'",
                            keep=(TableTransactionError,))

    # --- helpers: rows -----------------------------------------------------------------

    async def _partition_rows(self, table: Any, pk: str, *, what: str,
                              select: list[str] | None = None) -> list[Any]:
        async def op() -> list[Any]:
            return [e async for e in table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": pk}, select=select)]
        return await self._run(op, f"{what} of '{nm.unsanitize_key(pk)}'")

    async def _instance_row(self, pk: str) -> Any | None:
        async def op() -> Any | None:
            try:
                return await self._instances.get_entity(pk, "")
            except ResourceNotFoundError:
                return None
        return await self._run(op, f"reading the instance row of '{nm.unsanitize_key(pk)}'")

    async def _to_instance(self, row: Any) -> dict[str, Any]:
        texts = await self._download_all(tr.blob_refs(row).values())
        record = tr.row_to_instance(row, nm.unsanitize_key(str(row["PartitionKey"])), texts)
        record["etag"] = row.metadata["etag"]
        return record

    async def _prepare_instance(self, pk: str, fields: Mapping[str, Any], *,
                                merge: bool) -> dict[str, Any]:
        row, offloads = tr.instance_to_row(pk, fields, merge=merge, blob_url=self._blob_url)
        await self._upload_all(offloads)
        return row

    async def _raise_unless_ours(self, instance_id: str, pk: str, row: Mapping[str, Any],
                                 exc: Exception) -> None:
        # ExecutionIds are fresh GUIDs: a row with ours is our own earlier attempt.
        existing = await self._instances_get_or_none(pk)
        if existing is not None and row.get("ExecutionId") is not None \
                and existing.get("ExecutionId") == row.get("ExecutionId"):
            return
        status = "Unknown" if existing is None else str(existing.get("RuntimeStatus"))
        raise InstanceExists(instance_id, status) from exc

    async def _instances_get_or_none(self, pk: str) -> Any | None:
        try:
            return await self._instances.get_entity(pk, "")
        except ResourceNotFoundError:
            return None

    # --- helpers: blobs ----------------------------------------------------------------

    def _blob_url(self, name: str) -> str:
        return str(self._large.get_blob_client(name).url)

    async def _upload(self, name: str, data: bytes) -> None:
        blob = self._large.get_blob_client(name)
        packed = gzip.compress(data, compresslevel=6)

        async def op() -> None:
            async with self._blob_slots:
                await blob.upload_blob(packed, overwrite=True)
        await self._run(op, f"uploading blob {name}")

    async def _upload_all(self, offloads: Iterable[tr.Offload]) -> None:
        await asyncio.gather(*(self._upload(o.blob_name, o.text.encode("utf-8"))
                               for o in offloads))

    async def _download(self, name: str) -> str:
        """The text stored in a large-message blob (ResourceNotFoundError if gone)."""
        blob = self._large.get_blob_client(name)

        async def op() -> bytes:
            async with self._blob_slots:
                return bytes(await (await blob.download_blob()).readall())
        data = await self._run(op, f"downloading blob {name}", keep=(ResourceNotFoundError,))
        try:
            return gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError):
            return data.decode("utf-8")  # written uncompressed by another tool

    async def _download_all(self, blob_names: Iterable[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(blob_names))
        texts = await asyncio.gather(*(self._download(n) for n in unique))
        return dict(zip(unique, texts, strict=True))

    async def _delete_blobs(self, prefix: str) -> None:
        async def listing() -> list[str]:
            return [b.name async for b in self._large.list_blobs(name_starts_with=prefix)]
        blob_names = await self._run(listing, f"listing blobs under {prefix}")

        async def delete(name: str) -> None:
            async def op() -> None:
                async with self._blob_slots:
                    try:
                        await self._large.delete_blob(name)
                    except ResourceNotFoundError:
                        pass
            await self._run(op, f"deleting blob {name}")
        await asyncio.gather(*(delete(n) for n in blob_names))

    # --- helpers: errors ---------------------------------------------------------------

    async def _run(self, op: Callable[[], Awaitable[T]], what: str, *,
                   keep: tuple[type[Exception], ...] = ()) -> T:
        """`op` with retries; unexpected storage errors become StorageError."""
        faults.active.before_request(what)
        try:
            return await with_retries(op, what=what,
                                      deadline=time.monotonic() + self.operation_timeout)
        except keep:
            raise
        except AzureError as exc:
            raise _as_storage_error(what, exc) from exc


def _bind(fn: Callable[[str], Awaitable[Any]], arg: str) -> Callable[[], Awaitable[Any]]:
    return lambda: fn(arg)


def _as_storage_error(what: str, exc: BaseException) -> StorageError:
    return StorageError(f"Azure Storage failed {what}: {describe_error(exc)}")


def _is_pop_receipt_mismatch(exc: HttpResponseError) -> bool:
    return exc.status_code == 400 and "popreceipt" in str(
        getattr(exc, "error_code", "") or "").lower().replace("_", "")


def _split_batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = tr.estimate_row_bytes(row)
        if current and (len(current) >= MAX_BATCH_ROWS or size + row_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(row)
        size += row_size
    if current or not batches:
        batches.append(current)
    return batches


def _parse_message_text(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise ValueError("empty message")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        # DTFx can be configured to Base64-encode messages; accept those too.
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("message is neither JSON nor Base64 JSON") from exc
    body = json.loads(stripped)
    if not isinstance(body, dict):
        raise ValueError("message is not a JSON object")
    return body


def _encode_continuation(token: Any) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode("utf-8")).decode("ascii")


def _decode_continuation(text: str | None) -> Any:
    if not text:
        return None
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidArgument("The continuation token is not valid.") from exc
    if not isinstance(token, dict):
        raise InvalidArgument("The continuation token is not valid.")
    return token
