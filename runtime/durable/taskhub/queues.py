"""The task hub's queues in Azure Storage: control queues and the work-item queue.

Messages carry DurableTask.AzureStorage's envelope (`envelope.py`); one whose JSON is
over 45 KB goes to a blob and the queue gets a wrapper naming it. A durable timer is a
message that becomes visible at its fire time: on the wall clock that is the queue's own
visibility delay (capped at the service's 7 days), on a virtual clock the message is
sent hidden and made visible when the clock reaches the time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from runtime.clock import Clock
from runtime.durable import names as nm
from runtime.durable import tablerows as tr
from runtime.durable.taskhub import envelope as env
from runtime.durable.taskhub.blobs import LargePayloads
from runtime.durable.taskhub.interface import QueueMessage
from runtime.durable.taskhub.operations import Operations
from runtime.errors import StorageError
from runtime.storage import faults
from runtime.storage.queueops import QueueOps, RawMessage
from runtime.storage.retries import describe_error

log = logging.getLogger(__name__)

# Serialized UTF-8 size above which a queue message goes to a blob (DTFx: 45 KB, a margin
# for Base64's growth under the 64 KB message limit).
MAX_MESSAGE_BYTES = 45 * 1024
MAX_VISIBILITY_DELAY = 7 * 24 * 3600  # the queue service's limit, in seconds
MAX_RECEIVE = 32
# Deliveries of a message that cannot be applied before it is moved to the poison queue.
POISON_ATTEMPTS = 5


class AzureQueues:
    def __init__(self, queue_ops: QueueOps, payloads: LargePayloads, ops: Operations,
                 clock: Clock, poison_queue: str,
                 create_queue: Callable[[str], Awaitable[Any]]) -> None:
        self.queue_ops = queue_ops
        self.payloads = payloads
        self.ops = ops
        self.clock = clock
        self.poison_queue = poison_queue
        self.create_queue = create_queue  # the poison queue is made on first use

    async def send(self, queue: str, instance_id: str, execution_id: str | None,
                   event: dict[str, Any], *, visible_at: datetime | None = None,
                   hidden_for: float = 0.0, sender: tuple[str, str] | None = None,
                   episode: int | None = None) -> QueueMessage:
        """Enqueue `event` for `instance_id`: visible at once, after `hidden_for` seconds
        (a lock the sender keeps), or once durable time reaches `visible_at`."""
        envelope = env.new_envelope(instance_id, execution_id, event, sender=sender,
                                    episode=episode)
        text = env.encode(envelope)
        data = text.encode("utf-8")
        if len(data) > MAX_MESSAGE_BYTES:
            type_name = tr.EVENT_TYPE_NAMES.get(event.get("EventType", -1), "Unknown")
            activity_id = uuid.UUID(envelope["ActivityId"]).hex
            blob_name = nm.message_blob_name(nm.sanitize_key(instance_id), activity_id,
                                             type_name)
            await self.payloads.upload(blob_name, data)
            text = json.dumps({"CompressedBlobName": blob_name})
        delay, reveal = self._delay(visible_at, hidden_for)

        async def op() -> RawMessage:
            return await self.queue_ops.send(queue, text, delay)
        sent = await self.ops.run(op, f"sending a message to {queue}")
        if faults.active.duplicate_sends:
            await self.ops.run(op, f"sending a duplicate message to {queue}")
        message = QueueMessage(queue=queue, message_id=sent.id, pop_receipt=sent.pop_receipt,
                               dequeue_count=0, inserted_on=sent.inserted_on, body=envelope)
        if reveal and visible_at is not None:
            self.clock.call_at(visible_at, lambda: self._reveal(message))
        return message

    def _delay(self, visible_at: datetime | None, hidden_for: float) -> tuple[int | None, bool]:
        """(visibility timeout in whole seconds or None, whether the clock must reveal the
        message later because its time is virtual)."""
        seconds = hidden_for
        reveal = False
        if visible_at is not None:
            real = self.clock.real_delay(visible_at)
            if real is None:
                seconds, reveal = MAX_VISIBILITY_DELAY, True
            else:
                seconds = max(seconds, real)
        if seconds > MAX_VISIBILITY_DELAY:
            raise ValueError(f"visibility delay {seconds:.0f} s exceeds the queue limit of "
                             f"{MAX_VISIBILITY_DELAY} s (7 days)")
        return (math.ceil(seconds) if seconds > 0 else None), reveal

    async def _reveal(self, message: QueueMessage) -> None:
        try:
            await self.abandon(message, 0)
        except StorageError as exc:
            log.warning("Could not deliver a timer message in %s: %s", message.queue, exc)

    async def receive(self, queue: str, max_messages: int,
                      lock_seconds: float) -> list[QueueMessage]:
        """Up to `max_messages` (1-32) visible messages; one request."""
        count = max(1, min(MAX_RECEIVE, max_messages))
        hidden_for = max(1, math.ceil(lock_seconds))

        async def op() -> list[RawMessage]:
            return list(await self.queue_ops.receive(queue, count, hidden_for))
        raw = await self.ops.run(op, f"receiving from {queue}")
        decoded = await asyncio.gather(*(self._decode(queue, m) for m in raw))
        return [m for m in decoded if m is not None]

    async def _decode(self, queue: str, raw: RawMessage) -> QueueMessage | None:
        try:
            return await self.read(queue, raw)
        except (ValueError, KeyError, TypeError, ResourceNotFoundError) as exc:
            # It may be transient (a payload blob not written yet): retried with backoff,
            # said once, then moved aside so that it cannot wedge the queue.
            await self._unreadable(queue, raw, describe_error(exc))
            return None

    async def read(self, queue: str, raw: RawMessage) -> QueueMessage:
        """The message with its envelope (restored from its blob when it was large).
        Raises ValueError, KeyError, TypeError or ResourceNotFoundError when unreadable."""
        body = env.parse_message_text(raw.content)
        blob_name = body.get("CompressedBlobName")
        if blob_name and "TaskMessage" not in body:
            body = json.loads(await self.payloads.download(blob_name))
            body["CompressedBlobName"] = blob_name
        env.check(body)
        return QueueMessage(queue=queue, message_id=raw.id, pop_receipt=raw.pop_receipt,
                            dequeue_count=int(raw.dequeue_count or 0),
                            inserted_on=raw.inserted_on, body=body)

    async def _unreadable(self, queue: str, raw: RawMessage, reason: str) -> None:
        attempts = int(raw.dequeue_count or 0)
        if attempts < POISON_ATTEMPTS:
            if attempts <= 1:
                log.warning("Message %s in %s cannot be read (%s); it is retried with "
                            "backoff, then moved to %s.", raw.id, queue, reason,
                            self.poison_queue)
            delay = min(2 ** max(0, attempts - 1), 60)  # 1, 2, 4, 8 s, as abandon_delay

            async def op() -> None:
                try:
                    await self.queue_ops.update(queue, raw.id, raw.pop_receipt, delay)
                except ResourceNotFoundError:
                    pass
            await self.ops.run(op, f"abandoning a message in {queue}")
            return
        await self._move_aside(queue, raw.id, raw.pop_receipt, None,
                               raw.content if isinstance(raw.content, str) else
                               repr(raw.content), reason)

    async def quarantine(self, msg: QueueMessage, reason: str) -> None:
        await self._move_aside(msg.queue, msg.message_id, msg.pop_receipt, msg.instance_id,
                               env.encode(msg.body), reason)

    async def _move_aside(self, queue: str, message_id: str, pop_receipt: str,
                          instance_id: str | None, content: str, reason: str) -> None:
        record = json.dumps({"Queue": queue, "MessageId": message_id,
                             "InstanceId": instance_id, "Reason": reason,
                             "MovedAt": self.clock.now().isoformat(), "Message": content},
                            ensure_ascii=False)

        async def op() -> None:
            try:
                await self.queue_ops.send(self.poison_queue, record, None)
            except ResourceNotFoundError:
                try:
                    await self.create_queue(self.poison_queue)
                except ResourceExistsError:
                    pass
                await self.queue_ops.send(self.poison_queue, record, None)
        await self.ops.run(op, f"moving a message to {self.poison_queue}")
        await self.delete(queue, message_id, pop_receipt)
        log.warning("Moved message %s of %s to %s: %s", message_id, queue, self.poison_queue,
                    reason)

    async def peek(self, client: QueueClient, max_messages: int) -> list[QueueMessage]:
        """The visible messages at the head of the queue `client` reaches, untouched;
        unreadable ones are skipped (and left in place: looking changes nothing)."""
        queue = client.queue_name
        count = max(1, min(MAX_RECEIVE, max_messages))

        async def op() -> list[RawMessage]:
            return [_peeked(m) for m in await client.peek_messages(max_messages=count)]
        raw = await self.ops.run(op, f"peeking at {queue}")
        found: list[QueueMessage] = []
        for message in raw:
            try:
                found.append(await self.read(queue, message))
            except (ValueError, KeyError, TypeError, ResourceNotFoundError) as exc:
                log.debug("Unreadable message %s in %s: %s", message.id, queue,
                          describe_error(exc))
        return found

    async def length(self, client: QueueClient) -> int:
        """The queue's approximate message count (hidden messages included)."""
        async def op() -> int:
            properties = await client.get_queue_properties()
            return int(properties.approximate_message_count or 0)
        return await self.ops.run(op, f"reading the properties of {client.queue_name}")

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> bool:
        """Delete a message; True when it is gone, False when another receiver holds it
        (the pop receipt no longer matches: it will be delivered again)."""
        async def op() -> bool:
            try:
                await self.queue_ops.delete(queue, message_id, pop_receipt)
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:
                if not _is_pop_receipt_mismatch(exc):
                    raise
                # Our lock expired and another receiver holds the message now; it will
                # be delivered again, and duplicates are dropped downstream.
                log.warning("Message %s in %s was received again by another consumer "
                            "before it could be deleted", message_id, queue)
                return False
            return True
        return await self.ops.run(op, f"deleting a message from {queue}")

    async def abandon(self, msg: QueueMessage, delay: float) -> None:
        hidden_for = max(0, min(MAX_VISIBILITY_DELAY, math.ceil(delay)))

        async def op() -> None:
            try:
                await self.queue_ops.update(msg.queue, msg.message_id, msg.pop_receipt,
                                            hidden_for)
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:
                if not _is_pop_receipt_mismatch(exc):
                    raise
        await self.ops.run(op, f"abandoning a message in {msg.queue}")

    async def extend(self, msg: QueueMessage, seconds: float) -> QueueMessage:
        hidden_for = max(1, min(MAX_VISIBILITY_DELAY, math.ceil(seconds)))

        async def op() -> str:
            return await self.queue_ops.update(msg.queue, msg.message_id, msg.pop_receipt,
                                               hidden_for)
        receipt = await self.ops.run(op, f"extending a message's lock in {msg.queue}")
        return dataclasses.replace(msg, pop_receipt=receipt)


def _peeked(message: Any) -> RawMessage:
    return RawMessage(id=message.id, pop_receipt="",
                      dequeue_count=int(message.dequeue_count or 0),
                      inserted_on=message.inserted_on, content=message.content)


def _is_pop_receipt_mismatch(exc: HttpResponseError) -> bool:
    return exc.status_code == 400 and "popreceipt" in str(
        getattr(exc, "error_code", "") or "").lower().replace("_", "")


__all__ = ["MAX_MESSAGE_BYTES", "MAX_VISIBILITY_DELAY", "AzureQueues"]
