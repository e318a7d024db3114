"""The four queue operations of the durable hot path behind one interface, chosen once
when storage is opened: signed plain HTTP requests (`LeanQueues`) when the account is
reached with a key, the queue SDK (`SdkQueues`) otherwise (SAS, or turned off with
FUNCLOCAL_LEAN_QUEUES=0). Both raise the SDK's exception types with the service's status
and error codes, so callers handle one set of errors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from azure.storage.queue.aio import QueueClient, QueueServiceClient

from runtime.storage.leanqueue import LeanQueues, RawMessage


class QueueOps(Protocol):
    async def send(self, queue: str, text: str,
                   visibility_timeout: int | None) -> RawMessage: ...

    async def receive(self, queue: str, count: int,
                      visibility_timeout: int) -> list[RawMessage]: ...

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None: ...

    async def update(self, queue: str, message_id: str, pop_receipt: str,
                     visibility_timeout: int) -> str: ...


class SdkQueues:
    """QueueOps through the queue SDK's clients (one per queue, kept)."""

    def __init__(self, service: QueueServiceClient) -> None:
        self.service = service
        self._clients: dict[str, QueueClient] = {}

    def client(self, queue: str) -> QueueClient:
        client = self._clients.get(queue)
        if client is None:
            client = self._clients[queue] = self.service.get_queue_client(queue)
        return client

    async def send(self, queue: str, text: str,
                   visibility_timeout: int | None) -> RawMessage:
        sent = await self.client(queue).send_message(
            text, visibility_timeout=visibility_timeout, time_to_live=-1)
        return RawMessage(id=sent.id, pop_receipt=sent.pop_receipt or "",
                          dequeue_count=int(sent.dequeue_count or 0),
                          inserted_on=sent.inserted_on or datetime.now(timezone.utc),
                          content=text)

    async def receive(self, queue: str, count: int,
                      visibility_timeout: int) -> list[RawMessage]:
        pages = self.client(queue).receive_messages(
            messages_per_page=count, visibility_timeout=visibility_timeout).by_page()
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return []
        return [_raw(m) async for m in page]

    async def delete(self, queue: str, message_id: str, pop_receipt: str) -> None:
        await self.client(queue).delete_message(message_id, pop_receipt)

    async def update(self, queue: str, message_id: str, pop_receipt: str,
                     visibility_timeout: int) -> str:
        updated = await self.client(queue).update_message(
            message_id, pop_receipt, visibility_timeout=visibility_timeout)
        return str(updated.pop_receipt)

    async def close(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.close()


def _raw(message: Any) -> RawMessage:
    return RawMessage(id=message.id, pop_receipt=message.pop_receipt or "",
                      dequeue_count=int(message.dequeue_count or 0),
                      inserted_on=message.inserted_on, content=message.content)


__all__ = ["LeanQueues", "QueueOps", "RawMessage", "SdkQueues"]
