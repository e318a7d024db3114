"""Shared fixtures. `support` is importable because pytest puts this directory on sys.path
(tests/ has no __init__.py); the logic lives in tests/support/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.azurite import running_azurite, unique_hub_name

from runtime.storage.connection import StorageEndpoints


@pytest.fixture(scope="session")
async def azurite() -> AsyncIterator[StorageEndpoints]:
    """One in-memory Azurite for the whole session; a failure to start fails the tests."""
    async with running_azurite() as endpoints:
        yield endpoints


@pytest.fixture
def task_hub_name(request: pytest.FixtureRequest) -> str:
    return unique_hub_name(request.node.name)
