"""Names of a task hub's storage artifacts, partition choice, and table-key encoding (pure).

Everything here matches DurableTask.AzureStorage, so that tools which read a Durable
Functions task hub can read ours: artifact names, FNV-1a partitioning, the `^` key escaping
and the `X16` history row keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_PARTITIONS = 1
MAX_PARTITIONS = 16

SENTINEL_ROW_KEY = "sentinel"

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619

_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")
# 45 keeps the longest derived name, "<hub>-largemessages", within the 63-character limit
# of container names.
_HUB_NAME_MAX = 45

_ESCAPE = "^"
_ESCAPED = {"^": "^", "/": "0", "\\": "1", "#": "2", "?": "3"}
_UNESCAPED = {v: k for k, v in _ESCAPED.items()}
# Control characters are illegal in table keys; they are shifted above this offset.
_SHIFT = 0xC0


@dataclass(frozen=True)
class HubNames:
    """The storage artifacts of one task hub."""

    hub: str
    history_table: str
    instances_table: str
    partitions_table: str
    workitems: str
    control_queues: tuple[str, ...]
    leases_container: str
    large_messages_container: str
    poison_queue: str  # messages that could not be applied, moved aside with the reason

    @property
    def all_queues(self) -> tuple[str, ...]:
        return (*self.control_queues, self.workitems)


def hub_names(hub: str, partition_count: int) -> HubNames:
    problem = hub_name_problem(hub)
    if problem:
        raise ValueError(problem)
    if not MIN_PARTITIONS <= partition_count <= MAX_PARTITIONS:
        raise ValueError(
            f"partitionCount must be between {MIN_PARTITIONS} and {MAX_PARTITIONS}; "
            f"got {partition_count}.")
    low = hub.lower()
    return HubNames(
        hub=hub,
        history_table=f"{hub}History",
        instances_table=f"{hub}Instances",
        partitions_table=f"{hub}Partitions",
        workitems=f"{low}-workitems",
        control_queues=tuple(control_queue_name(hub, i) for i in range(partition_count)),
        leases_container=f"{low}-leases",
        large_messages_container=f"{low}-largemessages",
        poison_queue=f"{low}-poison",
    )


def control_queue_name(hub: str, partition: int) -> str:
    return f"{hub.lower()}-control-{partition:02d}"


def hub_name_problem(name: str) -> str | None:
    """Why `name` cannot be a task hub name, or None when it can."""
    if not 3 <= len(name) <= _HUB_NAME_MAX:
        return (f"Task hub name '{name}' must be between 3 and {_HUB_NAME_MAX} characters "
                "long.")
    if not _HUB_NAME.match(name):
        return (f"Task hub name '{name}' must start with a letter and contain only letters "
                "and digits.")
    return None


def sanitize_hub_name(raw: str) -> str:
    """A valid hub name derived from an unconfigured default such as the app's name."""
    name = "".join(c for c in raw if c.isascii() and c.isalnum())
    if not name:
        return "DefaultTaskHub"
    if name[0].isdigit():
        name = "t" + name
    name = name[:_HUB_NAME_MAX]
    if len(name) < 3:
        name += "Hub"
    return name


def fnv1a32(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_of(instance_id: str, partition_count: int) -> int:
    return fnv1a32(instance_id.encode("utf-8")) % partition_count


def sanitize_key(key: str) -> str:
    """Escape the characters Azure Tables forbid in PartitionKey/RowKey."""
    out: list[str] = []
    for c in key:
        escaped = _ESCAPED.get(c)
        if escaped is not None:
            out.append(_ESCAPE + escaped)
            continue
        code = ord(c)
        if code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append(_ESCAPE + chr(_SHIFT + code))
        else:
            out.append(c)
    return "".join(out)


def unsanitize_key(key: str) -> str:
    out: list[str] = []
    chars = iter(key)
    for c in chars:
        if c != _ESCAPE:
            out.append(c)
            continue
        nxt = next(chars, "")
        plain = _UNESCAPED.get(nxt)
        if plain is not None:
            out.append(plain)
        elif nxt and ord(nxt) >= _SHIFT:
            out.append(chr(ord(nxt) - _SHIFT))
        else:
            out.append(nxt)
    return "".join(out)


def history_row_key(index: int) -> str:
    if index < 0:
        raise ValueError(f"history index must not be negative; got {index}")
    return f"{index:016X}"


def history_blob_name(sanitized_id: str, row_key: str, event_type: str, random_hex: str,
                      prop: str) -> str:
    return f"{sanitized_id}/history-{row_key}-{event_type}-{random_hex}-{prop}.json.gz"


def instance_blob_name(sanitized_id: str, prop: str, random_hex: str) -> str:
    return f"{sanitized_id}/instance-{prop}-{random_hex}.json.gz"


def message_blob_name(sanitized_id: str, activity_id_hex: str, event_type: str) -> str:
    # DTFx uses the raw instance id here; the sanitized one keeps every blob of an instance
    # under one prefix (so purge finds them) and differs only for ids containing '^'.
    return f"{sanitized_id}/message-{activity_id_hex}-{event_type}.json.gz"


def key_prefix_range(prefix: str) -> tuple[str, str | None]:
    """Bounds [low, high) of the keys that start with `prefix` (high None: no upper bound)."""
    stem = prefix
    while stem and ord(stem[-1]) >= 0x10FFFF:
        stem = stem[:-1]
    if not stem:
        return prefix, None
    return prefix, stem[:-1] + chr(ord(stem[-1]) + 1)
