"""The History table (`HHistory`): one partition per instance, one row per event, and the
sentinel row whose ETag guards every checkpoint (DurableTask.AzureStorage's
AzureTableTrackingStore).

A checkpoint writes its events with UpsertReplace in entity-group transactions together
with the sentinel: inserted for a new history (409 if someone else did), merged with the
ETag read at load time otherwise (412 if it changed). Either failure is a split brain:
another writer got there first, and the work item is abandoned (CheckpointConflict).
"""

from __future__ import annotations

import uuid
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient

from runtime.clock import Clock
from runtime.durable import names as nm
from runtime.durable import tablerows as tr
from runtime.durable.taskhub.blobs import LargePayloads
from runtime.durable.taskhub.interface import HistorySnapshot
from runtime.durable.taskhub.operations import Operations, as_storage_error
from runtime.errors import CheckpointConflict
from runtime.storage import tablebatch as tb

MAX_BATCH_ROWS = 99  # + the sentinel = the 100-operation limit of a transaction
MAX_BATCH_BYTES = 3 * 1024 * 1024  # under the 4 MB limit of a transaction body


class HistoryTable:
    def __init__(self, table: TableClient, payloads: LargePayloads, ops: Operations,
                 clock: Clock) -> None:
        self.table = table
        self.payloads = payloads
        self.ops = ops
        self.clock = clock

    async def load(self, instance_id: str) -> HistorySnapshot:
        pk = nm.sanitize_key(instance_id)
        rows = await self.partition_rows(pk, what="loading history")
        sentinel = next((r for r in rows if r["RowKey"] == nm.SENTINEL_ROW_KEY), None)
        if sentinel is None:
            return HistorySnapshot(events=[], etag=None, execution_id=None)
        execution_id = sentinel.get("ExecutionId")
        # Rows of another execution are leftovers: ContinueAsNew and id reuse rewrite
        # from index 0 without deleting the tail.
        current = sorted((r for r in rows if r["RowKey"] != nm.SENTINEL_ROW_KEY
                          and r.get("ExecutionId") == execution_id),
                         key=lambda r: str(r["RowKey"]))
        texts = await self.payloads.download_all(tr.all_blob_names(current))
        events = [tr.row_to_event(r, texts) for r in current]
        return HistorySnapshot(events=events, etag=sentinel.metadata["etag"],
                               execution_id=execution_id)

    async def append(self, instance_id: str, execution_id: str, start_index: int,
                     events: list[dict[str, Any]], etag: str | None, *,
                     is_complete: bool = True) -> str:
        pk = nm.sanitize_key(instance_id)
        rows: list[dict[str, Any]] = []
        offloads: list[tr.Offload] = []
        for i, event in enumerate(events):
            row, large = tr.event_to_row(event, partition_key=pk, execution_id=execution_id,
                                         index=start_index + i)
            rows.append(row)
            offloads.extend(large)
        # Blobs first: a committed row must never point at a missing blob.
        await self.payloads.upload_all(offloads)
        batches = split_batches(rows)
        checkpoint_id = uuid.uuid4().hex
        now = self.clock.now()
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
                etags = await tb.submit(self.table, ops)
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
        return await self.ops.run(op, f"writing the history of '{instance_id}'")

    async def _sentinel_etag_if(self, pk: str, tag: str) -> str | None:
        try:
            row = await self.table.get_entity(pk, nm.SENTINEL_ROW_KEY, select=["CheckpointId"])
        except ResourceNotFoundError:
            return None
        if row.get("CheckpointId") != tag:
            return None
        return str(row.metadata["etag"])

    async def partition_rows(self, pk: str, *, what: str,
                             select: list[str] | None = None) -> list[Any]:
        async def op() -> list[Any]:
            return [e async for e in self.table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": pk}, select=select)]
        return await self.ops.run(op, f"{what} of '{nm.unsanitize_key(pk)}'")

    async def delete_all(self, instance_id: str) -> bool:
        """Delete every history row of the instance; False when there were none."""
        pk = nm.sanitize_key(instance_id)
        found = False
        while True:
            rows = await self.partition_rows(pk, what="listing history",
                                             select=["PartitionKey", "RowKey"])
            if not rows:
                return found
            found = True
            try:
                await self._delete_rows(rows, instance_id)
            except TableTransactionError as exc:
                if exc.status_code != 404:
                    raise as_storage_error(f"purging the history of '{instance_id}'",
                                           exc) from exc
                # Someone deleted rows too (a retried batch, a parallel purge): re-list.

    async def _delete_rows(self, rows: list[Any], instance_id: str) -> None:
        for start in range(0, len(rows), 100):
            ops: list[Any] = [("delete", r) for r in rows[start:start + 100]]

            async def op(ops: list[Any] = ops) -> None:
                await self.table.submit_transaction(ops)
            await self.ops.run(op, f"purging the history of '{instance_id}'",
                               keep=(TableTransactionError,))


def split_batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows in transactions of at most 99 rows and ~3 MB (always at least one batch)."""
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


__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_ROWS", "HistoryTable", "split_batches"]
