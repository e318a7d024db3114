"""The task hub as the durable runtime sees it: queues, history, instances (interface).

Two implementations: `AzureTaskHub` (the Durable Task Framework's Azure Storage layout,
in Azurite or a real account) and `MemoryTaskHub` (the same behaviour in this process,
for tests that need no storage fidelity). The orchestration, activity and checkpoint
code is written against this interface only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runtime.durable import names as nm


@dataclass(frozen=True)
class QueueMessage:
    """A received (or just sent) queue message and its DTFx MessageData envelope."""

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
    """The current execution's events, in order, and the sentinel ETag that guards the
    next write (None when the instance has no history)."""

    events: list[dict[str, Any]]
    etag: str | None
    execution_id: str | None


class TaskHub(ABC):
    """The storage operations of one task hub.

    Errors: StorageError when storage cannot be reached within the operation's deadline,
    CheckpointConflict when another writer changed a history first, InstanceExists when
    an instance row is taken, InvalidArgument for a bad continuation token.
    """

    def __init__(self, hub_name: str, partition_count: int) -> None:
        self.names = nm.hub_names(hub_name, partition_count)
        self.hub_name = hub_name
        self.partition_count = partition_count

    # --- names -------------------------------------------------------------------------

    def partition_of(self, instance_id: str) -> int:
        """The control-queue partition of an instance (FNV-1a, as DTFx)."""
        return nm.partition_of(instance_id, self.partition_count)

    def control_queue(self, partition: int) -> str:
        return self.names.control_queues[partition]

    @property
    def workitems_queue(self) -> str:
        return self.names.workitems

    # --- set-up ------------------------------------------------------------------------

    @abstractmethod
    async def create_if_missing(self) -> None:
        """Create every artifact of the hub that does not exist yet (safe to race)."""

    @abstractmethod
    async def delete_task_hub(self) -> None:
        """Delete every artifact of the hub."""

    async def close(self) -> None:  # noqa: B027 - most hubs hold nothing to release
        """Release clients (the storage they share stays open)."""

    # --- queues ------------------------------------------------------------------------

    @abstractmethod
    async def send_to_instance(self, instance_id: str, execution_id: str | None,
                               event: dict[str, Any], *, visible_at: datetime | None = None,
                               sender: tuple[str, str] | None = None,
                               episode: int | None = None) -> QueueMessage:
        """Enqueue `event` on the instance's control queue, visible once durable time
        reaches `visible_at` (a durable timer; None: at once)."""

    @abstractmethod
    async def send_activity(self, instance_id: str, execution_id: str,
                            event: dict[str, Any], *, episode: int | None = None,
                            hidden_for: float = 0.0) -> QueueMessage:
        """Enqueue an activity on the work-item queue. With `hidden_for` (seconds) the
        sender keeps the message hidden, as if it had received it, and may run it at
        once; the queued copy stays the source of truth should the sender crash."""

    @abstractmethod
    async def receive(self, queue: str, max_messages: int,
                      lock_seconds: float) -> list[QueueMessage]:
        """Up to `max_messages` (1-32) visible messages, each hidden for `lock_seconds`.
        Unreadable messages are dropped with a warning."""

    @abstractmethod
    async def delete_message(self, msg: QueueMessage) -> bool:
        """Delete a received message: True when it is gone (deleted now, or already),
        False when another receiver holds it now (our receipt is stale), so it will be
        delivered again."""

    @abstractmethod
    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        """Make a received message visible again after `delay` seconds."""

    @abstractmethod
    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        """Keep a held message hidden `seconds` more; returns it with its new receipt."""

    @abstractmethod
    async def quarantine(self, msg: QueueMessage, reason: str) -> None:
        """Move a message that cannot be applied to the hub's poison queue
        (`{hub}-poison`: a JSON object with the queue, message id, instance id, reason
        and the message itself), then delete it."""

    @abstractmethod
    async def peek(self, queue: str, max_messages: int = 32) -> list[QueueMessage]:
        """Up to `max_messages` (1-32) of the visible messages at the head of `queue`,
        left where they are (no lock, no dequeue; `pop_receipt` is empty). Messages
        hidden by a lock or a timer's delay are not seen. For tools that look, never
        for the workers."""

    @abstractmethod
    async def queue_length(self, queue: str) -> int:
        """The approximate number of messages in `queue`, hidden ones included."""

    # --- history -----------------------------------------------------------------------

    @abstractmethod
    async def load_history(self, instance_id: str) -> HistorySnapshot:
        """The current execution's history and the sentinel ETag."""

    @abstractmethod
    async def append_history(self, instance_id: str, execution_id: str, start_index: int,
                             events: list[dict[str, Any]], etag: str | None, *,
                             is_complete: bool = True) -> str:
        """Write `events` at indexes start_index.. and return the sentinel's new ETag.
        `etag` None means a new history. Raises CheckpointConflict when another writer
        got there first."""

    # --- instances ---------------------------------------------------------------------

    @abstractmethod
    async def read_instance(self, instance_id: str) -> dict[str, Any] | None:
        """The instance's row (DTFx columns, large values restored) plus InstanceId and
        etag, or None."""

    @abstractmethod
    async def insert_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """Insert a new row; InstanceExists if one is there (unless it is this very row)."""

    @abstractmethod
    async def replace_instance(self, instance_id: str, fields: Mapping[str, Any],
                               etag: str) -> None:
        """Replace the row read with `etag` (id reuse); InstanceExists if it changed."""

    @abstractmethod
    async def merge_instance(self, instance_id: str, fields: Mapping[str, Any]) -> None:
        """InsertOrMerge `fields` into the row (None values are left unchanged)."""

    @abstractmethod
    async def delete_instance_row(self, instance_id: str) -> None: ...

    @abstractmethod
    async def query_instances(self, *, created_from: datetime | None = None,
                              created_to: datetime | None = None,
                              statuses: Collection[str] | None = None,
                              prefix: str | None = None, top: int | None = None,
                              continuation: str | None = None,
                              exclude_entities: bool = False,
                              ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of instance records (all of them when `top` is None) and the
        continuation token of the next page; `exclude_entities` leaves out the
        `@name@key` instances of durable entities."""

    @abstractmethod
    async def purge_instance(self, instance_id: str) -> bool:
        """Delete the instance's history, row and payloads; False when nothing was there."""


__all__ = ["HistorySnapshot", "QueueMessage", "TaskHub"]
