"""History events and instance records as Azure Table rows, in the DTFx layout (pure).

A history event is a dict in the DTFx JSON shape (PascalCase keys, integer `EventType`,
`Timestamp` as an ISO string). Its row keeps primitives natively, renames `Timestamp` to
`_Timestamp` (a reserved name in tables), stores enums by name, datetimes as datetimes and
complex values as JSON text. Values too large for a table property are moved to blobs: the
row gets "" in the column and the blob's name in `{Column}BlobName`; the caller uploads the
returned `Offload`s and passes the texts back when converting a row into an event.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runtime.durable.names import (
    SENTINEL_ROW_KEY,
    history_blob_name,
    history_row_key,
    instance_blob_name,
)

EVENT_TYPE_NAMES: dict[int, str] = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
    21: "ExecutionRewound",
}
EVENT_TYPE_VALUES: dict[str, int] = {v: k for k, v in EVENT_TYPE_NAMES.items()}

ORCHESTRATION_STATUS_NAMES: dict[int, str] = {
    0: "Running",
    1: "Completed",
    2: "ContinuedAsNew",
    3: "Failed",
    4: "Canceled",
    5: "Terminated",
    6: "Pending",
    7: "Suspended",
}
ORCHESTRATION_STATUS_VALUES: dict[str, int] = {
    v: k for k, v in ORCHESTRATION_STATUS_NAMES.items()}

# Fields each event type carries besides EventType/EventId/IsPlayed/Timestamp. A null is not
# stored in a table, so these come back as None when their column is missing.
EVENT_FIELDS: dict[int, tuple[str, ...]] = {
    0: ("OrchestrationInstance", "ParentInstance", "Name", "Version", "Input", "Tags",
        "Correlation", "ScheduledStartTime", "Generation"),
    1: ("OrchestrationStatus", "Result", "FailureDetails"),
    2: ("Reason", "Details"),
    3: ("Input",),
    4: ("Name", "Version", "Input"),
    5: ("TaskScheduledId", "Result"),
    6: ("TaskScheduledId", "Reason", "Details"),
    7: ("Name", "Version", "InstanceId", "Input"),
    8: ("TaskScheduledId", "Result"),
    9: ("TaskScheduledId", "Reason", "Details"),
    10: ("FireAt",),
    11: ("TimerId", "FireAt"),
    12: (),
    13: (),
    14: ("InstanceId", "Name", "Input"),
    15: ("Name", "Input"),
    16: ("OrchestrationStatus", "Result", "FailureDetails"),
    17: ("Data",),
    18: (),
    19: ("Reason",),
    20: ("Reason",),
    21: ("Reason",),
}

BASE_FIELDS = ("EventType", "EventId", "IsPlayed", "Timestamp")
JSON_COLUMNS = frozenset(
    {"OrchestrationInstance", "ParentInstance", "Tags", "FailureDetails", "ParentTraceContext"})
DATETIME_FIELDS = frozenset({"FireAt", "ScheduledStartTime"})
LARGE_CHECKED_COLUMNS = (
    "Name", "Input", "Result", "Output", "Reason", "Details", "Correlation", "FailureDetails",
    "Tags")
# UTF-16 bytes: DTFx's margin under the 64 KB limit of a table string property.
MAX_PROPERTY_BYTES = 60 * 1024
BLOB_NAME_SUFFIX = "BlobName"

INSTANCE_COLUMNS = (
    "Name", "Version", "Input", "Output", "CustomStatus", "RuntimeStatus", "CreatedTime",
    "LastUpdatedTime", "CompletedTime", "ExecutionId", "Generation", "TaskHubName",
    "ScheduledStartTime", "Tags")
INSTANCE_LARGE_COLUMNS = ("Input", "Output", "CustomStatus")
_NOT_COLUMNS = frozenset({"InstanceId", "etag", "ETag", "PartitionKey", "RowKey"})

_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class Offload:
    """A column value that belongs in a blob of the large-messages container."""

    blob_name: str
    text: str


# --- time ---------------------------------------------------------------------------


def parse_iso(text: str) -> datetime:
    """Parse a DTFx timestamp (up to 7 fraction digits, `Z` or an offset) as aware UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    offset = ""
    tail = max(s.rfind("+"), s.rfind("-"))
    if tail > s.find("T") > 0:
        s, offset = s[:tail], s[tail:]
    if "." in s:
        head, frac = s.split(".", 1)
        s = f"{head}.{(frac + '000000')[:6]}"
    value = datetime.fromisoformat(s + offset)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_iso(value: datetime) -> str:
    """The DTFx form: UTC, 7 fraction digits, `Z` (the 7th digit is always 0 here)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _plain_datetime(value: datetime) -> datetime:
    # Table SDK datetimes are a subclass; callers should see the standard type.
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
                    utc.microsecond, tzinfo=timezone.utc)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _plain_datetime(value)
    if isinstance(value, str):
        return parse_iso(value)
    raise ValueError(f"expected a datetime or ISO string, got {type(value).__name__}")


# --- sizes --------------------------------------------------------------------------


def utf16_size(text: str) -> int:
    if text.isascii():
        return 2 * len(text)
    return len(text.encode("utf-16-le"))


def is_large(text: str) -> bool:
    # Cheap bound first: a UTF-16 code unit is 2 bytes, a code point at most 4.
    if 4 * len(text) <= MAX_PROPERTY_BYTES:
        return False
    return utf16_size(text) > MAX_PROPERTY_BYTES


def estimate_row_bytes(row: Mapping[str, Any]) -> int:
    """A generous estimate of a row's size in a batch request body."""
    size = 64
    for key, value in row.items():
        size += len(key) + 48
        if isinstance(value, str):
            size += len(value) if value.isascii() else len(value.encode("utf-8"))
        else:
            size += 32
    return size


def random_hex() -> str:
    return secrets.token_hex(4)


# --- history rows -------------------------------------------------------------------


def event_to_row(event: Mapping[str, Any], *, partition_key: str, execution_id: str,
                 index: int, make_hex: Callable[[], str] = random_hex,
                 ) -> tuple[dict[str, Any], list[Offload]]:
    """The History row of `event` at position `index`, and the blobs it needs."""
    event_type = event.get("EventType")
    if not isinstance(event_type, int) or event_type not in EVENT_TYPE_NAMES:
        raise ValueError(f"unknown EventType {event_type!r} in history event")
    type_name = EVENT_TYPE_NAMES[event_type]
    row_key = history_row_key(index)
    row: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "ExecutionId": execution_id,
        "EventType": type_name,
    }
    for key, value in event.items():
        if key in ("EventType", "ExecutionId") or value is None:
            continue
        if key == "Timestamp":
            row["_Timestamp"] = _as_datetime(value)
        elif key == "OrchestrationStatus" and isinstance(value, int):
            row[key] = ORCHESTRATION_STATUS_NAMES.get(value, value)
        elif key in DATETIME_FIELDS:
            row[key] = _as_datetime(value)
        elif key in JSON_COLUMNS:
            row[key] = json.dumps(value, separators=(",", ":"))
        else:
            row[key] = _primitive(key, value)
    offloads: list[Offload] = []
    for column in LARGE_CHECKED_COLUMNS:
        text = row.get(column)
        if isinstance(text, str) and is_large(text):
            name = history_blob_name(partition_key, row_key, type_name, make_hex(), column)
            offloads.append(Offload(name, text))
            row[column] = ""
            row[column + BLOB_NAME_SUFFIX] = name
    return row, offloads


def blob_refs(row: Mapping[str, Any]) -> dict[str, str]:
    """Column -> blob name for every column of `row` stored in a blob."""
    refs: dict[str, str] = {}
    for key, value in row.items():
        if key.endswith(BLOB_NAME_SUFFIX) and isinstance(value, str) and value:
            column = key[: -len(BLOB_NAME_SUFFIX)]
            if column:
                refs[column] = value
    return refs


def row_to_event(row: Mapping[str, Any],
                 blob_texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event dict stored in `row`; `blob_texts` maps blob name -> restored text."""
    values = _restore_columns(row, blob_texts)
    type_name = values.get("EventType")
    if type_name not in EVENT_TYPE_VALUES:
        raise ValueError(f"row {row.get('RowKey')!r} has unknown EventType {type_name!r}")
    event_type = EVENT_TYPE_VALUES[type_name]
    event: dict[str, Any] = {"EventType": event_type}
    for field in EVENT_FIELDS[event_type]:
        event[field] = None
    event["EventId"] = -1
    event["IsPlayed"] = False
    event["Timestamp"] = None
    for key, value in values.items():
        if key in ("PartitionKey", "RowKey", "EventType", "ExecutionId"):
            continue
        if key == "_Timestamp":
            event["Timestamp"] = format_iso(_as_datetime(value))
        elif key == "OrchestrationStatus" and isinstance(value, str):
            event[key] = ORCHESTRATION_STATUS_VALUES.get(value, value)
        elif key in DATETIME_FIELDS:
            event[key] = format_iso(_as_datetime(value))
        elif key in JSON_COLUMNS:
            event[key] = json.loads(value) if isinstance(value, str) and value else None
        else:
            event[key] = value
    return event


def sentinel_row(partition_key: str, execution_id: str, *, is_complete: bool,
                 checkpoint_id: str, completed_at: datetime) -> dict[str, Any]:
    """The sentinel row; `CheckpointId` lets a retried write recognise that it landed."""
    row: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": SENTINEL_ROW_KEY,
        "ExecutionId": execution_id,
        "IsCheckpointComplete": is_complete,
        "CheckpointId": checkpoint_id,
    }
    if is_complete:
        row["CheckpointCompletedTimestamp"] = completed_at
    return row


# --- instance rows ------------------------------------------------------------------


def instance_to_row(partition_key: str, fields: Mapping[str, Any], *,
                    blob_url: Callable[[str], str], merge: bool,
                    make_hex: Callable[[], str] = random_hex,
                    ) -> tuple[dict[str, Any], list[Offload]]:
    """The Instances row for `fields` (DTFx column names), and the blobs it needs.

    Large Input/Output/CustomStatus values go to blobs; like DTFx the column then holds the
    blob's URL, and `{Column}BlobName` its name. When `merge` is true, a small value also
    writes an empty `{Column}BlobName`, so that a merge clears an earlier blob reference.
    None values are skipped: a table cannot store null.
    """
    row: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": ""}
    offloads: list[Offload] = []
    for key, value in fields.items():
        if key in _NOT_COLUMNS or key.endswith(BLOB_NAME_SUFFIX) or value is None:
            continue
        if key == "Tags":
            row[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, datetime):
            row[key] = _plain_datetime(value)
        else:
            row[key] = _primitive(key, value)
    for column in INSTANCE_LARGE_COLUMNS:
        text = row.get(column)
        if not isinstance(text, str):
            continue
        if is_large(text):
            name = instance_blob_name(partition_key, column, make_hex())
            offloads.append(Offload(name, text))
            row[column] = blob_url(name)
            row[column + BLOB_NAME_SUFFIX] = name
        elif merge:
            row[column + BLOB_NAME_SUFFIX] = ""
    return row, offloads


def row_to_instance(row: Mapping[str, Any], instance_id: str,
                    blob_texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The instance record in `row`: every known column (None when absent) + InstanceId."""
    values = _restore_columns(row, blob_texts)
    record: dict[str, Any] = {"InstanceId": instance_id}
    for column in INSTANCE_COLUMNS:
        record[column] = None
    for key, value in values.items():
        if key in ("PartitionKey", "RowKey"):
            continue
        if key == "Tags":
            record[key] = json.loads(value) if isinstance(value, str) and value else None
        elif isinstance(value, datetime):
            record[key] = _plain_datetime(value)
        else:
            record[key] = value
    return record


# --- helpers ------------------------------------------------------------------------


def _restore_columns(row: Mapping[str, Any],
                     blob_texts: Mapping[str, str] | None) -> dict[str, Any]:
    values = {k: _unwrap(v) for k, v in row.items() if not k.endswith(BLOB_NAME_SUFFIX)}
    for column, blob_name in blob_refs(row).items():
        if blob_texts is None or blob_name not in blob_texts:
            raise ValueError(f"column {column} is stored in blob {blob_name}, "
                             "which was not provided")
        values[column] = blob_texts[blob_name]
    return values


def _unwrap(value: Any) -> Any:
    # The table SDK returns Int64 (and untyped) values wrapped in an object with `.value`.
    if hasattr(value, "edm_type") and hasattr(value, "value"):
        return value.value
    return value


def _primitive(key: str, value: Any) -> Any:
    if isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        if value not in _INT32:
            raise ValueError(f"{key}={value} does not fit a 32-bit table integer")
        return value
    if isinstance(value, datetime):
        return _plain_datetime(value)
    raise ValueError(f"cannot store {key} of type {type(value).__name__} in a table row")


def all_blob_names(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return [name for row in rows for name in blob_refs(row).values()]
