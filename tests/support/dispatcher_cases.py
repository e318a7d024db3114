"""Behaviour of the durable dispatcher (orchestration worker, activity worker and
checkpoint), written once against the task-hub interface: `tests/unit/test_dispatcher.py`
runs every case on the in-memory hub, `tests/integration/test_dispatcher_azurite.py` on
Azurite. Each case takes a factory of fresh task hubs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from runtime.clock import VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable.history import EventType
from runtime.durable.taskhub import TaskHub
from support.rig import durable_rig

HubFactory = Callable[..., AbstractAsyncContextManager[TaskHub]]
Case = Callable[[HubFactory], Awaitable[None]]


def _scheduled_and_completed(events: list[dict[str, object]]) -> tuple[Counter[int], Counter[int]]:
    scheduled: Counter[int] = Counter()
    completed: Counter[int] = Counter()
    for event in events:
        if event["EventType"] == EventType.TaskScheduled:
            scheduled[int(str(event["EventId"]))] += 1
        elif event["EventType"] in (EventType.TaskCompleted, EventType.TaskFailed):
            completed[int(str(event["TaskScheduledId"]))] += 1
    return scheduled, completed


async def chaining_runs_episode_by_episode(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("chaining")
        status = await rig.wait(instance_id)
        assert status["runtimeStatus"] == "Completed", status
        assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        episode = ["OrchestratorStarted", "TaskCompleted", "TaskScheduled",
                   "OrchestratorCompleted"]
        assert await rig.history_kinds(instance_id) == [
            "OrchestratorStarted", "ExecutionStarted", "TaskScheduled",
            "OrchestratorCompleted", *episode, *episode,
            "OrchestratorStarted", "TaskCompleted", "ExecutionCompleted",
            "OrchestratorCompleted"]


async def fan_out_fan_in_completes_each_activity_once(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("fan_out", 40)
        status = await rig.wait(instance_id)
        assert status["output"] == {"count": 40, "sum": 2 * sum(range(40))}
        scheduled, completed = _scheduled_and_completed(
            (await hub.load_history(instance_id)).events)
        assert scheduled == completed == Counter(range(40))


async def activity_concurrency_stays_within_the_limit(new_hub: HubFactory) -> None:
    async with new_hub() as hub:
        config = DurableTaskConfig(hub_name=hub.hub_name, partition_count=hub.partition_count,
                                   max_concurrent_activity_functions=2)
        async with durable_rig(hub, config=config) as rig:
            instance_id = await rig.start("fan_out_slowly", 10)
            status = await rig.wait(instance_id)
            assert status["output"] == sum(range(10))
            assert rig.invoker.peak["pause"] == 2


async def failures_reach_the_orchestrator(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        caught = await rig.start("catches")
        uncaught = await rig.start("does_not_catch")
        unknown = await rig.start("calls_unknown")
        status = await rig.wait(caught)
        assert status["output"] == {
            "caught": "Activity function 'explode' failed: RuntimeError: activity exploded on x ",
            "then": "Hello cleanup!"}
        status = await rig.wait(uncaught)
        assert status["runtimeStatus"] == "Failed"
        assert status["output"].startswith(
            "Orchestrator function 'does_not_catch' failed: Activity function 'explode' "
            "failed: RuntimeError: activity exploded on y")
        status = await rig.wait(unknown)
        assert status["output"] == (
            "Orchestrator function 'calls_unknown' failed: The function 'no_such_activity' "
            "doesn't exist, is disabled, or is not an activity function. Additional info: The "
            "following are the known activity functions: 'hello', 'double', 'pause', 'explode', "
            "'nap'.")


async def events_and_termination(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        approved = await rig.start("waits_for_event")
        ended = await rig.start("waits_for_event")
        for instance_id in (approved, ended):
            status = await rig.wait(instance_id, statuses=("Running",))
            while status["customStatus"] != "waiting":
                status = await rig.wait(instance_id, statuses=("Running",))
        await rig.client.raise_event(approved, "Approval", '"Ann"')
        await rig.client.terminate(ended, "no longer needed")
        assert (await rig.wait(approved))["output"] == "Hello Ann!"
        status = await rig.wait(ended)
        assert (status["runtimeStatus"], status["output"]) == ("Terminated", "no longer needed")


async def timers_fire_when_the_clock_reaches_them(new_hub: HubFactory) -> None:
    clock = VirtualClock()
    async with new_hub(clock) as hub, durable_rig(hub, clock=clock) as rig:
        sleeper = await rig.start("sleeps")
        approved = await rig.start("approval_or_timeout")
        timed_out = await rig.start("approval_or_timeout")
        for instance_id in (sleeper, approved, timed_out):
            while "TimerCreated" not in await rig.history_kinds(instance_id):
                await asyncio.sleep(0.01)
        await rig.client.raise_event(approved, "Approval", "true")
        assert (await rig.wait(approved))["output"] == "approved"
        # Nothing else moves while durable time stands still, however long we wait.
        await asyncio.sleep(0.3)
        for instance_id in (sleeper, timed_out):
            assert (await rig.client.get_status(instance_id) or {})["runtimeStatus"] == "Running"
        await clock.advance(timedelta(seconds=1))
        assert (await rig.wait(sleeper))["output"] == {"slept_at_least_a_second": True}
        assert (await rig.wait(timed_out))["output"] == "timed out"


async def two_dispatchers_on_one_hub_write_history_once(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub, dispatchers=2) as rig:
        ids = [await rig.start("fan_out", 12) for _ in range(3)]
        for instance_id in ids:
            status = await rig.wait(instance_id, timeout=60)
            assert status["output"] == {"count": 12, "sum": 132}
            scheduled, completed = _scheduled_and_completed(
                (await hub.load_history(instance_id)).events)
            assert scheduled == completed == Counter(range(12))


async def stopping_hands_held_work_back(new_hub: HubFactory) -> None:
    async with new_hub() as hub:
        async with durable_rig(hub) as rig:
            await rig.start("slow_step")
            while "nap" not in rig.invoker.calls:
                await asyncio.sleep(0.01)
        # The dispatcher stopped while the activity ran: its work item is visible again.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        found = []
        while not found and loop.time() < deadline:
            found = await hub.receive(hub.workitems_queue, 32, 30)
            await asyncio.sleep(0.05)
        assert [m.event["Name"] for m in found] == ["nap"]


CASES: list[Case] = [
    chaining_runs_episode_by_episode,
    fan_out_fan_in_completes_each_activity_once,
    activity_concurrency_stays_within_the_limit,
    failures_reach_the_orchestrator,
    events_and_termination,
    timers_fire_when_the_clock_reaches_them,
    two_dispatchers_on_one_hub_write_history_once,
    stopping_hands_held_work_back,
]
