"""The Instances table (`HInstances`): one row per instance, PartitionKey the sanitized
instance id, RowKey "" (DurableTask.AzureStorage's OrchestrationInstanceStatus). Large
Input/Output values go to blobs and the column holds the blob's URL."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from runtime.durable import names as nm
from runtime.durable import tablerows as tr
from runtime.durable.taskhub.blobs import LargePayloads
from runtime.durable.taskhub.operations import Operations
from runtime.errors import InstanceExists, InvalidArgument

MAX_PAGE = 1000  # the table service's page limit


class InstanceTable:
    def __init__(self, table: TableClient, payloads: LargePayloads, ops: Operations) -> None:
        self.table = table
        self.payloads = payloads
        self.ops = ops

    async def read(self, instance_id: str) -> dict[str, Any] | None:
        pk = nm.sanitize_key(instance_id)
        row = await self.read_row(pk)
        if row is None:
            return None
        return await self._to_record(row)

    async def read_row(self, pk: str) -> Any | None:
        async def op() -> Any | None:
            try:
                return await self.table.get_entity(pk, "")
            except ResourceNotFoundError:
                return None
        return await self.ops.run(op, f"reading the instance row of '{nm.unsanitize_key(pk)}'")

    async def insert(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare(pk, fields, merge=False)

        async def op() -> None:
            try:
                await self.table.create_entity(row)
            except ResourceExistsError as exc:
                await self._raise_unless_ours(instance_id, pk, row, exc)
        await self.ops.run(op, f"creating the instance row of '{instance_id}'")

    async def replace(self, instance_id: str, fields: Mapping[str, Any], etag: str) -> None:
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare(pk, fields, merge=False)

        async def op() -> None:
            try:
                await self.table.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=etag,
                    match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                try:  # purged in between: nothing left to guard
                    await self.table.create_entity(row)
                except ResourceExistsError as exc:
                    await self._raise_unless_ours(instance_id, pk, row, exc)
            except ResourceModifiedError as exc:
                await self._raise_unless_ours(instance_id, pk, row, exc)
        await self.ops.run(op, f"replacing the instance row of '{instance_id}'")

    async def merge(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        pk = nm.sanitize_key(instance_id)
        row = await self._prepare(pk, fields, merge=True)

        async def op() -> None:
            await self.table.upsert_entity(row, mode=UpdateMode.MERGE)
        await self.ops.run(op, f"updating the instance row of '{instance_id}'")

    async def delete(self, instance_id: str) -> None:
        pk = nm.sanitize_key(instance_id)

        async def op() -> None:
            try:
                await self.table.delete_entity(pk, "")
            except ResourceNotFoundError:
                pass
        await self.ops.run(op, f"deleting the instance row of '{instance_id}'")

    async def query(self, *, created_from: datetime | None, created_to: datetime | None,
                    statuses: Collection[str] | None, prefix: str | None, top: int | None,
                    continuation: str | None, exclude_entities: bool = False,
                    ) -> tuple[list[dict[str, Any]], str | None]:
        clauses = ["RowKey eq ''"]
        if exclude_entities:
            # Entities are the ids starting with "@" (as the extension's query excludes them).
            clauses.append("( PartitionKey lt '@' or PartitionKey ge 'A' )")
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
        token = decode_continuation(continuation)
        per_page = None if top is None else max(1, min(MAX_PAGE, top))
        rows: list[Any] = []
        while True:
            page, token = await self._query_page(query, params, per_page, token)
            rows.extend(page)
            if top is not None or token is None:
                break
        records = await asyncio.gather(*(self._to_record(r) for r in rows))
        return list(records), encode_continuation(token)

    async def _query_page(self, query: str, params: dict[str, Any], per_page: int | None,
                          token: Any) -> tuple[list[Any], Any]:
        async def op() -> tuple[list[Any], Any]:
            pages = self.table.query_entities(
                query, parameters=params, results_per_page=per_page,
            ).by_page(continuation_token=token)
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return [], None
            items = [e async for e in page]
            return items, getattr(pages, "continuation_token", None) or None
        return await self.ops.run(op, "querying instances")

    async def _to_record(self, row: Any) -> dict[str, Any]:
        texts = await self.payloads.download_all(tr.blob_refs(row).values())
        record = tr.row_to_instance(row, nm.unsanitize_key(str(row["PartitionKey"])), texts)
        record["etag"] = row.metadata["etag"]
        return record

    async def _prepare(self, pk: str, fields: Mapping[str, Any], *,
                       merge: bool) -> dict[str, Any]:
        row, offloads = tr.instance_to_row(pk, fields, merge=merge, blob_url=self.payloads.url)
        await self.payloads.upload_all(offloads)
        return row

    async def _raise_unless_ours(self, instance_id: str, pk: str, row: Mapping[str, Any],
                                 exc: Exception) -> None:
        # ExecutionIds are fresh GUIDs: a row with ours is our own earlier attempt.
        try:
            existing = await self.table.get_entity(pk, "")
        except ResourceNotFoundError:
            existing = None
        if existing is not None and row.get("ExecutionId") is not None \
                and existing.get("ExecutionId") == row.get("ExecutionId"):
            return
        status = "Unknown" if existing is None else str(existing.get("RuntimeStatus"))
        raise InstanceExists(instance_id, status) from exc


def encode_continuation(token: Any) -> str | None:
    """The table service's continuation, as an opaque header-safe string."""
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode("utf-8")).decode("ascii")


def decode_continuation(text: str | None) -> Any:
    """The token `encode_continuation` made; InvalidArgument for anything else."""
    if not text:
        return None
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidArgument("The continuation token is not valid.") from exc
    if not isinstance(token, dict):
        raise InvalidArgument("The continuation token is not valid.")
    return token


__all__ = ["InstanceTable", "decode_continuation", "encode_continuation"]
