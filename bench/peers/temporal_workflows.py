"""The benchmark shapes as Temporal workflows and activities. A module of its own: the
workflow sandbox re-imports the module that defines the workflows.

`flaky_step` fails the first RETRY_FAILURES attempts of every call, counted per
(workflow, step) in this process, where the worker runs: as the funclocal bench app's.

`Counter` is the entity shapes' counter: one workflow that counts the signals and the
updates it receives and ends once it reached its target, after its last update."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from bench.shapes import RETRY_ATTEMPTS, RETRY_FAILURES, RETRY_INTERVAL_S

TIMEOUT = timedelta(seconds=120)
CITIES = ("Tokyo", "Seattle", "London")
# The same fixed interval and attempts as funclocal's RetryOptions (backoff coefficient 1).
RETRY = RetryPolicy(initial_interval=timedelta(seconds=RETRY_INTERVAL_S),
                    backoff_coefficient=1.0, maximum_attempts=RETRY_ATTEMPTS)
ATTEMPTS: dict[str, int] = {}  # attempts so far of each unfinished flaky_step call


@activity.defn
async def say_hello(city: str) -> str:
    return f"Hello {city}!"


@activity.defn
async def step(n: int) -> int:
    return n + 1


@activity.defn
async def flaky_step(call: list[str | int]) -> int:
    """Fails the first RETRY_FAILURES attempts of a call; returns the attempts it took."""
    key = f"{call[0]}/{call[1]}"
    attempt = ATTEMPTS.get(key, 0) + 1
    if attempt <= RETRY_FAILURES:
        ATTEMPTS[key] = attempt
        raise RuntimeError(f"step {call[1]} fails on attempt {attempt}, as planned")
    ATTEMPTS.pop(key, None)
    return attempt


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


@workflow.defn
class RetryChain:
    @workflow.run
    async def run(self, count: int) -> int:
        me = workflow.info().workflow_id
        attempts = 0
        for n in range(count):
            attempts += await workflow.execute_activity(
                flaky_step, [me, n], start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        return attempts


@workflow.defn
class OneStep:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)


@workflow.defn
class SubOrchestrations:
    @workflow.run
    async def run(self, count: int) -> int:
        me = workflow.info().workflow_id
        values = await asyncio.gather(*(
            workflow.execute_child_workflow(OneStep.run, n, id=f"{me}-{n}")
            for n in range(count)))
        return sum(values)


@workflow.defn
class Generations:
    @workflow.run
    async def run(self, count: int, n: int) -> int:
        n = await workflow.execute_activity(step, n, start_to_close_timeout=TIMEOUT)
        if n >= count:
            return n
        workflow.continue_as_new(args=[count, n])


@workflow.defn
class Counter:
    """A counter entity as a workflow: `add` signals (fire and forget) and `add_and_get`
    updates (a round trip answering the new value) both add to it; it returns the count
    once that reached `target` and every handler finished."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, target: int) -> int:
        await workflow.wait_condition(
            lambda: self.count >= target and workflow.all_handlers_finished())
        return self.count

    @workflow.signal
    def add(self, amount: int) -> None:
        self.count += amount

    @workflow.update
    def add_and_get(self, amount: int) -> int:
        self.count += amount
        return self.count
