"""The benchmark shapes as Temporal workflows and activities. A module of its own: the
workflow sandbox re-imports the module that defines the workflows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

TIMEOUT = timedelta(seconds=120)
CITIES = ("Tokyo", "Seattle", "London")


@activity.defn
async def say_hello(city: str) -> str:
    return f"Hello {city}!"


@activity.defn
async def step(n: int) -> int:
    return n + 1


@workflow.defn
class HelloCities:
    @workflow.run
    async def run(self) -> list[str]:
        results = []
        for city in CITIES:
            results.append(await workflow.execute_activity(
                say_hello, city, start_to_close_timeout=TIMEOUT))
        return results


@workflow.defn
class Chain:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for n in range(count):
            total += await workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)
        return total


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, count: int) -> int:
        values = await asyncio.gather(*(
            workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)
            for n in range(count)))
        return sum(values)
