"""A lean entity-group transaction ($batch) for the history checkpoint.

The table SDK builds a batch through its generic multipart machinery and parses the
answer with the standard library's e-mail parser: 10-15 ms of CPU per checkpoint, the
largest single cost on the critical path of a durable step. This module writes the same
multipart request as plain text and reads only what a checkpoint needs from the answer
(each part's status and ETag). The request still goes through the table client's own
pipeline, so authentication, the shared transport and the API version are the SDK's.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

INT32 = 2**31


@dataclass(frozen=True)
class Operation:
    """One row of a transaction: `upsert` (replace), `create`, or `merge` (with an ETag)."""

    kind: str
    entity: Mapping[str, Any]
    etag: str | None = None


class BatchConflict(HttpResponseError):
    """The service refused the transaction (409 exists, 412 ETag mismatch...)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(message=f"Table transaction failed with {status}: {text[:300]}")
        self.status_code = status


class BatchFailed(HttpResponseError):
    """A server-side failure of the whole request (5xx, 408, 429): worth retrying."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(message=f"Table transaction answered {status}: {text[:300]}")
        self.status_code = status


def encode_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity as the Table service's JSON, with the EDM annotations it needs."""
    body: dict[str, Any] = {}
    for key, value in entity.items():
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, str):
            body[key] = value
        elif isinstance(value, int):
            if -INT32 <= value < INT32:
                body[key] = value
            else:
                body[key] = str(value)
                body[f"{key}@odata.type"] = "Edm.Int64"
        elif isinstance(value, float):
            body[key] = value
            body[f"{key}@odata.type"] = "Edm.Double"
        elif isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body[key] = text
            body[f"{key}@odata.type"] = "Edm.DateTime"
        elif isinstance(value, (bytes, bytearray)):
            body[key] = base64.b64encode(bytes(value)).decode("ascii")
            body[f"{key}@odata.type"] = "Edm.Binary"
        else:
            raise TypeError(f"cannot store {type(value).__name__} in table column {key!r}")
    return body


def _key_literal(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def build_body(table_url: str, operations: Iterable[Operation]) -> tuple[str, str]:
    """(content type, body) of the $batch request."""
    batch = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for number, operation in enumerate(operations, 1):
        entity = operation.entity
        pk, rk = str(entity["PartitionKey"]), str(entity["RowKey"])
        if operation.kind == "create":
            method, url = "POST", table_url
        else:
            method = "PUT" if operation.kind == "upsert" else "MERGE"
            url = f"{table_url}(PartitionKey='{_key_literal(pk)}',RowKey='{_key_literal(rk)}')"
        lines += [f"--{changeset}", "Content-Type: application/http",
                  "Content-Transfer-Encoding: binary", "",
                  f"{method} {url} HTTP/1.1", f"Content-ID: {number}",
                  "Content-Type: application/json",
                  "Accept: application/json;odata=minimalmetadata",
                  "Prefer: return-no-content", "DataServiceVersion: 3.0"]
        if operation.kind == "merge":
            lines.append(f"If-Match: {operation.etag or '*'}")
        lines += ["", json.dumps(encode_entity(entity), separators=(",", ":"),
                                 ensure_ascii=False)]
    lines += [f"--{changeset}--", "", f"--{batch}--", ""]
    return f"multipart/mixed; boundary={batch}", "\r\n".join(lines)


def parse_response(text: str) -> list[tuple[int, str | None, str]]:
    """(status, ETag, body) of every part of a $batch answer, in order."""
    parts: list[tuple[int, str | None, str]] = []
    for chunk in text.split("HTTP/1.1 ")[1:]:
        head, _, body = chunk.replace("\r\n", "\n").partition("\n\n")
        status = int(head[:3])
        etag = None
        for line in head.split("\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "etag":
                etag = value.strip()
        parts.append((status, etag, body.split("\n--", 1)[0]))
    return parts


async def submit(table: TableClient, operations: list[Operation]) -> list[str | None]:
    """Commit `operations` atomically; return each row's new ETag. Raises BatchConflict
    when the service refuses the transaction, BatchFailed when it fails as a whole."""
    account_url = table.url.split("?")[0].rstrip("/")
    base = account_url.rsplit("/", 1)[0] if account_url.endswith(table.table_name) \
        else account_url
    content_type, body = build_body(f"{base}/{table.table_name}", operations)
    request = HttpRequest("POST", f"{base}/$batch", content=body.encode("utf-8"), headers={
        "Content-Type": content_type, "Accept": "application/json",
        "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "x-ms-version": table.api_version})
    # stream=True: the pipeline must not try to decode the multipart answer itself.
    response = await table._client.send_request(request, stream=True)  # noqa: SLF001
    text = (await response.read()).decode("utf-8", "replace")
    if response.status_code != 202:
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise BatchFailed(response.status_code, text)
        raise BatchConflict(response.status_code, text)
    parts = parse_response(text)
    failed = next(((status, part) for status, _, part in parts if status >= 300), None)
    if failed is not None:
        status, part = failed
        if status >= 500 or status in (408, 429):
            raise BatchFailed(status, part)
        raise BatchConflict(status, part)
    if len(parts) != len(operations):
        raise BatchFailed(502, f"expected {len(operations)} parts, got {len(parts)}")
    return [etag for _, etag, _ in parts]
