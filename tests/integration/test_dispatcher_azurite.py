"""The durable dispatcher's cases (support/dispatcher_cases.py) on Azurite: the same
behaviour as on the in-memory hub, through real queues, tables, blobs and leases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from support.azurite import unique_hub_name
from support.dispatcher_cases import CASES, Case

from runtime.clock import Clock
from runtime.durable.taskhub.azure import AzureTaskHub
from runtime.storage.clients import open_storage
from runtime.storage.connection import StorageEndpoints


def azure_hubs(azurite: StorageEndpoints, test_name: str
               ) -> Callable[..., AbstractAsyncContextManager[AzureTaskHub]]:
    @asynccontextmanager
    async def new_hub(clock: Clock | None = None) -> AsyncIterator[AzureTaskHub]:
        storage = await open_storage(azurite.connection_string)
        hub = AzureTaskHub(storage, unique_hub_name(test_name + uuid.uuid4().hex[:4]), 4,
                           clock=clock, operation_timeout=30.0)
        await hub.create_if_missing()
        try:
            yield hub
        finally:
            await hub.delete_task_hub()
            await hub.close()
            await storage.close()
    return new_hub


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
async def test_dispatcher_on_azurite(case: Case, azurite: StorageEndpoints) -> None:
    await case(azure_hubs(azurite, case.__name__))
