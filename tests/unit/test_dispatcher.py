"""The durable dispatcher on the in-memory task hub: the cases of
support/dispatcher_cases.py, in milliseconds, without Azurite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from support.dispatcher_cases import CASES, Case

from runtime.clock import Clock
from runtime.durable.taskhub.memory import MemoryTaskHub


@asynccontextmanager
async def memory_hub(clock: Clock | None = None) -> AsyncIterator[MemoryTaskHub]:
    hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 4, clock=clock)
    await hub.create_if_missing()
    yield hub


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
async def test_dispatcher_on_the_memory_hub(case: Case) -> None:
    await case(memory_hub)
