"""Behaviour of the durable dispatcher (orchestration worker, activity worker and
checkpoint), written once against the task-hub interface: `tests/unit/test_dispatcher.py`
runs every case on the in-memory hub, `tests/integration/test_dispatcher_azurite.py` on
Azurite. Each case takes a factory of fresh task hubs."""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from runtime.clock import VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable import history
from runtime.durable.client import InstanceQuery
from runtime.durable.history import EventType
from runtime.durable.taskhub import TaskHub
from runtime.errors import InvalidArgument
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
            "following are the known activity functions: 'flaky', 'hello', 'double', 'pause', "
            "'explode', 'nap'.")


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
            rig.dispatcher.finish_seconds = 0.2  # less than the activity takes (3 s)
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



async def stopping_lets_the_episode_in_flight_commit(new_hub: HubFactory) -> None:
    # The stop begins while an episode's checkpoint is sending its activity (which
    # already runs here). The episode commits before the stop ends (history schedules
    # the activity), and the activity, given the same few seconds, finishes: its result
    # waits in the control queue and its work item is gone, so nothing runs twice.
    async with new_hub() as hub:
        sending, go = asyncio.Event(), asyncio.Event()
        send_activity = hub.send_activity

        async def held_send(*args: Any, **kwargs: Any) -> Any:
            sending.set()
            await go.wait()
            return await send_activity(*args, **kwargs)
        hub.send_activity = held_send  # type: ignore[method-assign]
        rig_context = durable_rig(hub)
        rig = await rig_context.__aenter__()
        instance_id = await rig.start("slow_step")
        await asyncio.wait_for(sending.wait(), 10)
        stopping = asyncio.create_task(rig_context.__aexit__(None, None, None))
        while rig.dispatcher.running:
            await asyncio.sleep(0.01)
        go.set()
        await asyncio.wait_for(stopping, 30)
        assert "TaskScheduled" in await rig.history_kinds(instance_id)
        row = await hub.read_instance(instance_id)
        assert row is not None and row["RuntimeStatus"] == "Running", row
        work_items = await hub.receive(hub.workitems_queue, 32, 30)
        assert work_items == [], work_items
        waiting = await hub.receive(hub.control_queue(hub.partition_of(instance_id)), 32, 30)
        assert [(EventType(m.event["EventType"]).name, m.event.get("Result"))
                for m in waiting] == [("TaskCompleted", '"slept 3s"')], waiting



def _hold_orchestrator(rig: Any, name: str, nth: int) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the `nth` run of orchestrator `name` until `go` is set; `entered` is set
    when it begins (fault injection around the real invoker)."""
    entered, go = asyncio.Event(), asyncio.Event()
    invoke, seen = rig.invoker.invoke, Counter[str]()

    async def held(function: str, inputs: dict[str, Any], **kwargs: Any) -> Any:
        if function == name:
            seen[name] += 1
            if seen[name] == nth:
                entered.set()
                await go.wait()
        return await invoke(function, inputs, **kwargs)
    rig.invoker.invoke = held
    return entered, go


async def _stop_while(rig_context: Any, rig: Any, go: asyncio.Event) -> None:
    """Begin the rig's stop, let the held work go on once it has begun, wait for it."""
    stopping = asyncio.create_task(rig_context.__aexit__(None, None, None))
    while rig.dispatcher.running:  # set False first thing in the stop
        await asyncio.sleep(0.01)
    go.set()
    await asyncio.wait_for(stopping, 30)


async def stopping_starts_no_new_work(new_hub: HubFactory) -> None:
    # An episode replaying when the stop begins commits, but its activity is only sent
    # (visible, for the next host), not run here; an instance waiting for an episode
    # slot does not begin one.
    async with new_hub() as hub:
        config = DurableTaskConfig(hub_name=hub.hub_name, partition_count=hub.partition_count,
                                   max_concurrent_orchestrator_functions=1)
        rig_context = durable_rig(hub, config=config)
        rig = await rig_context.__aenter__()
        entered, go = _hold_orchestrator(rig, "slow_step", 1)
        first = await rig.start("slow_step")
        await asyncio.wait_for(entered.wait(), 10)
        second = await rig.start("chaining")
        deadline = asyncio.get_running_loop().time() + 10
        while second not in rig.dispatcher.orchestrations.sessions:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        await _stop_while(rig_context, rig, go)
        assert "TaskScheduled" in await rig.history_kinds(first)
        assert "nap" not in rig.invoker.calls, rig.invoker.calls
        found = await hub.receive(hub.workitems_queue, 32, 30)
        assert [m.event["Name"] for m in found] == ["nap"], found
        assert "chaining" not in rig.invoker.calls, rig.invoker.calls
        assert await rig.history_kinds(second) == []
        waiting = await hub.receive(hub.control_queue(hub.partition_of(second)), 32, 30)
        assert [(m.instance_id, EventType(m.event["EventType"]).name) for m in waiting
                if m.instance_id == second] == [(second, "ExecutionStarted")], waiting


async def stopping_reports_computed_results(new_hub: HubFactory) -> None:
    # Activity results computed and waiting in memory when the stop begins go to their
    # control queue (as on a partition hand-over): the next host runs no activity again.
    async with new_hub() as hub:
        rig_context = durable_rig(hub)
        rig = await rig_context.__aenter__()
        entered, go = _hold_orchestrator(rig, "fan_out_slowly", 2)
        invoke = rig.invoker.invoke

        async def later_pauses(function: str, inputs: dict[str, Any], **kwargs: Any) -> Any:
            if function == "pause" and inputs.get("n") != "0":
                await entered.wait()  # after the episode of pause(0)'s result began
            return await invoke(function, inputs, **kwargs)
        rig.invoker.invoke = later_pauses
        instance_id = await rig.start("fan_out_slowly", 4)
        await asyncio.wait_for(entered.wait(), 10)
        session = rig.dispatcher.orchestrations.sessions[instance_id]
        deadline = asyncio.get_running_loop().time() + 10
        while sum(p.local for p in session.buffer.values()) < 3:
            assert asyncio.get_running_loop().time() < deadline, session
            await asyncio.sleep(0.01)
        await _stop_while(rig_context, rig, go)
        assert rig.invoker.calls.count("pause") == 4
        assert await hub.receive(hub.workitems_queue, 32, 30) == []
        async with durable_rig(hub) as next_host:
            status = await next_host.wait(instance_id, timeout=30)
            assert status["output"] == 0 + 1 + 2 + 3, status
            assert "pause" not in next_host.invoker.calls, next_host.invoker.calls


CASES: list[Case] = [
    chaining_runs_episode_by_episode,
    fan_out_fan_in_completes_each_activity_once,
    activity_concurrency_stays_within_the_limit,
    failures_reach_the_orchestrator,
    events_and_termination,
    timers_fire_when_the_clock_reaches_them,
    two_dispatchers_on_one_hub_write_history_once,
    stopping_hands_held_work_back,
    stopping_lets_the_episode_in_flight_commit,
    stopping_starts_no_new_work,
    stopping_reports_computed_results,
]


# --- retries, sub-orchestrations, continue-as-new, instance control --------------------


async def _history(hub: TaskHub, instance_id: str) -> list[tuple[str, int]]:
    """(event type, sequence number or completed id) of the scheduling and completion
    events, in history order."""
    found = []
    for event in (await hub.load_history(instance_id)).events:
        kind = EventType(event["EventType"])
        if kind in (EventType.TaskScheduled, EventType.TimerCreated,
                    EventType.SubOrchestrationInstanceCreated):
            found.append((kind.name, int(str(event["EventId"]))))
        elif kind in (EventType.TaskCompleted, EventType.TaskFailed):
            found.append((kind.name, int(str(event["TaskScheduledId"]))))
        elif kind == EventType.TimerFired:
            found.append((kind.name, int(str(event["TimerId"]))))
    return found


async def retries_take_timers_between_attempts(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        key = hub.hub_name
        succeeds = await rig.start("retries", [key, 2])
        status = await rig.wait(succeeds)
        assert status["output"] == f"{key} succeeded on attempt 3"
        # DTFx's RetryInterceptor: an attempt, a retry timer, the next attempt...
        assert await _history(hub, succeeds) == [
            ("TaskScheduled", 0), ("TaskFailed", 0), ("TimerCreated", 1), ("TimerFired", 1),
            ("TaskScheduled", 2), ("TaskFailed", 2), ("TimerCreated", 3), ("TimerFired", 3),
            ("TaskScheduled", 4), ("TaskCompleted", 4)]
        runs_out = await rig.start("retries_run_out")
        status = await rig.wait(runs_out)
        assert status["output"] == {
            "error": "Activity function 'explode' failed: RuntimeError: activity exploded on "
                     "always", "after": "Hello after!"}
        # ... and a timer after the last failed attempt, before the failure is thrown.
        assert await _history(hub, runs_out) == [
            ("TaskScheduled", 0), ("TaskFailed", 0), ("TimerCreated", 1), ("TimerFired", 1),
            ("TaskScheduled", 2), ("TaskFailed", 2), ("TimerCreated", 3), ("TimerFired", 3),
            ("TaskScheduled", 4), ("TaskCompleted", 4)]


async def retries_inside_a_fan_out(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        key = hub.hub_name
        instance_id = await rig.start("retries_in_a_fan_out", key)
        status = await rig.wait(instance_id)
        assert status["output"] == [f"{key}-{n} succeeded on attempt {n % 3 + 1}"
                                    for n in range(6)]


async def sub_orchestrations_fan_out_and_report_failures(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        parent = await rig.start("parent", 10)
        status = await rig.wait(parent, timeout=60)
        assert status["output"] == {"sum": 90, "named": 200}
        started = (await hub.load_history(parent)).events[1]
        execution = started["OrchestrationInstance"]["ExecutionId"]
        # A child without an id gets "<parent execution id>:<sequence number>".
        child = await rig.client.get_status(f"{execution}:3")
        assert child is not None
        assert (child["name"], child["output"], child["parentInstanceId"]) == (
            "child", 6, parent)
        named = await rig.client.get_status(f"{parent}-named")
        assert named is not None and named["output"] == 200
        caught = await rig.start("parent_of_a_failure")
        status = await rig.wait(caught)
        assert status["output"] == "Orchestrator function 'failing_child' failed: the child " \
                                   "gave up"


async def continue_as_new_keeps_the_last_generation_only(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("counter", 0)
        status = await rig.wait(instance_id)
        # The input is shown as the SDK encoded it (JSON text), as for any start.
        assert (status["runtimeStatus"], status["output"], status["input"]) == (
            "Completed", 25, "25")
        assert await rig.history_kinds(instance_id) == [
            "OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted",
            "OrchestratorCompleted"]


async def events_raised_while_continuing_as_new_are_kept(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("waiting_counter")
        for name in ("a", "b", "c"):
            await rig.client.raise_event(instance_id, "next", f'"{name}"')
        status = await rig.wait(instance_id)
        assert status["output"] == {"n": 3, "seen": ["a", "b", "c"]}


async def suspended_instances_hold_their_events(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("waits_for_event")
        status = await rig.wait(instance_id, statuses=("Running",))
        await rig.client.suspend(instance_id, "hold on")
        status = await rig.wait(instance_id, statuses=("Suspended",))
        assert status["output"] == "hold on"
        await rig.client.raise_event(instance_id, "Approval", '"Ann"')
        while "EventRaised" not in await rig.history_kinds(instance_id):
            await asyncio.sleep(0.01)
        # The event is in history, but the code has not seen it: nothing was scheduled.
        assert "TaskScheduled" not in await rig.history_kinds(instance_id)
        assert (await rig.client.get_status(instance_id) or {})["runtimeStatus"] == "Suspended"
        await rig.client.resume(instance_id, "go on")
        status = await rig.wait(instance_id)
        assert (status["runtimeStatus"], status["output"]) == ("Completed", "Hello Ann!")
        suspended = await rig.start("waits_for_event")
        await rig.wait(suspended, statuses=("Running",))
        await rig.client.suspend(suspended, None)
        await rig.wait(suspended, statuses=("Suspended",))
        await rig.client.terminate(suspended, "stopped while suspended")
        status = await rig.wait(suspended)
        assert (status["runtimeStatus"], status["output"]) == (
            "Terminated", "stopped while suspended")


async def rewind_reruns_what_failed(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        key = hub.hub_name + "rw"
        # The activity fails once: the instance fails, the rewound run re-runs the failed
        # activity only (the one before it is replayed, not run again).
        instance_id = await rig.start("flaky_call", [key, 1])
        status = await rig.wait(instance_id)
        assert status["runtimeStatus"] == "Failed"
        await rig.client.rewind(instance_id, "fixed it")
        status = await rig.wait(instance_id, timeout=30)
        assert (status["runtimeStatus"], status["output"]) == (
            "Completed", ["Hello before!", f"{key} succeeded on attempt 2"])
        assert rig.invoker.calls.count("hello") == 1


async def restart_runs_the_same_input_again(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        first = await rig.start("fan_out", 3)
        await rig.wait(first)
        again = await rig.client.restart(first)
        same = await rig.client.restart(first, new_instance_id=False)
        assert again != first and same == first
        for instance_id in (again, same):
            status = await rig.wait(instance_id)
            assert (status["runtimeStatus"], status["output"]) == (
                "Completed", {"count": 3, "sum": 6})


async def new_uuid_is_the_same_on_every_replay(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("uuids")
        first, second, replaying = (await rig.wait(instance_id))["output"]
        assert first != second and replaying is False
        # The SDK's name-based UUID: instance id, orchestration time and a counter.
        started = (await hub.load_history(instance_id)).events[0]["Timestamp"]
        namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
        moment = history.parse_timestamp(started).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert first == str(uuid.uuid5(namespace, f"{instance_id}_{moment}_0"))


CASES += [
    retries_take_timers_between_attempts,
    retries_inside_a_fan_out,
    sub_orchestrations_fan_out_and_report_failures,
    continue_as_new_keeps_the_last_generation_only,
    events_raised_while_continuing_as_new_are_kept,
    suspended_instances_hold_their_events,
    rewind_reruns_what_failed,
    restart_runs_the_same_input_again,
    new_uuid_is_the_same_on_every_replay,
]


async def call_http_returns_the_response_as_the_sdk_expects(new_hub: HubFactory) -> None:
    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        return web.json_response({"body": body, "type": request.content_type,
                                  "header": request.headers.get("X-Test")},
                                 status=202, headers={"Location": "http://example.test/poll"})

    app = web.Application()
    app.router.add_post("/echo", echo)
    async with TestServer(app, host="127.0.0.1") as server, new_hub() as hub, \
            durable_rig(hub) as rig:
        instance_id = await rig.start("fetches", str(server.make_url("/echo")))
        status = await rig.wait(instance_id)
        response = status["output"]
        # SDK 1.x does not ask for the asynchronous pattern: a 202 comes back as it is.
        assert response["statusCode"] == 202
        assert response["headers"]["Location"] == "http://example.test/poll"
        assert "Content-Type" not in response["headers"]  # content headers are left out
        assert json.loads(response["content"]) == {
            "body": '{"q": 1}', "type": "text/plain", "header": "yes"}
        assert await rig.history_kinds(instance_id) == [
            "OrchestratorStarted", "ExecutionStarted", "TaskScheduled",
            "OrchestratorCompleted", "OrchestratorStarted", "TaskCompleted",
            "ExecutionCompleted", "OrchestratorCompleted"]


async def versions_are_given_checked_and_seen_by_the_code(new_hub: HubFactory) -> None:
    async with new_hub() as hub:
        config = DurableTaskConfig(hub_name=hub.hub_name, partition_count=hub.partition_count,
                                   default_version="2.0", version_match_strategy="Strict",
                                   version_failure_strategy="Fail")
        async with durable_rig(hub, config=config) as rig:
            default = await rig.client.start_new("versioned")
            older = await rig.client.start_new("versioned", version="1.0")
            status = await rig.wait(default)
            assert (status["output"], status["version"]) == ("2.0", "2.0")
            status = await rig.wait(older)
            assert (status["runtimeStatus"], status["output"]) == (
                "Failed", "Orchestrator function 'versioned' failed: VersionMismatch: "
                          "Orchestration version did not comply with Worker Versioning")
    async with new_hub() as hub:
        config = DurableTaskConfig(hub_name=hub.hub_name, partition_count=hub.partition_count,
                                   default_version="2.0")  # CurrentOrOlder, Reject
        async with durable_rig(hub, config=config) as rig:
            newer = await rig.client.start_new("versioned", version="3.0")
            older = await rig.client.start_new("versioned", version="1.5")
            assert (await rig.wait(older))["output"] == "1.5"
            # A newer instance waits for a host that runs its version; nothing ran it.
            assert (await rig.client.get_status(newer) or {})["runtimeStatus"] == "Pending"
            assert rig.invoker.calls.count("versioned") == (await rig.history_kinds(
                older)).count("OrchestratorStarted")


CASES += [
    call_http_returns_the_response_as_the_sdk_expects,
    versions_are_given_checked_and_seen_by_the_code,
]


# --- entities ---------------------------------------------------------------------------


async def _entity_state(rig: Any, key: str, expected: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = None
    while loop.time() < deadline:
        state = await rig.client.read_entity_state("counter", key)
        if state == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"entity counter/{key} is {state!r}, not {expected!r}")


async def entities_answer_calls_and_roll_failed_operations_back(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        instance_id = await rig.start("uses_counter", "k1")
        status = await rig.wait(instance_id)
        assert status["output"] == {"total": 15, "failure": "cannot do that at 15",
                                    "after": 15}
        assert await rig.client.read_entity_state("counter", "k1") == "15"
        # The entity is an instance of the hub: @name@key, its state its input.
        row = await hub.read_instance("@counter@k1")
        assert row is not None
        assert (row["Name"], row["RuntimeStatus"], row["CustomStatus"]) == (
            "@counter@k1", "Running", '{"entityExists":true}')
        assert await rig.history_kinds("@counter@k1") == [
            "OrchestratorStarted", "ExecutionStarted", "OrchestratorCompleted"]
        # The instances listing shows the entity too, as the extension's HTTP API does;
        # the client can leave entities out.
        listed, _ = await rig.client.list_instances(InstanceQuery())
        assert sorted(i["instanceId"] for i in listed) == sorted(["@counter@k1", instance_id])
        listed, _ = await rig.client.list_instances(InstanceQuery(exclude_entities=True))
        assert [i["instanceId"] for i in listed] == [instance_id]
        unknown = await rig.start("calls_unknown_entity")
        assert (await rig.wait(unknown))["output"] == (
            "Orchestrator function 'calls_unknown_entity' failed: The function 'nobody' "
            "doesn't exist, is disabled, or is not an entity function. Additional info: The "
            "following are the known entity functions: 'Counter'.")


async def concurrent_signals_are_each_applied_once(new_hub: HubFactory) -> None:
    async with new_hub() as hub:
        config = DurableTaskConfig(hub_name=hub.hub_name, partition_count=hub.partition_count,
                                   max_entity_operation_batch_size=7)
        async with durable_rig(hub, config=config) as rig:
            async def client(n: int) -> None:
                for _ in range(20):
                    await rig.client.signal_entity("Counter", "many", "add", '"1"')
            await asyncio.gather(*(client(n) for n in range(10)))
            await _entity_state(rig, "many", "200")
            # Batches: fewer invocations than operations, none over the configured size.
            assert rig.invoker.calls.count("counter_entity") < 200


async def entity_errors_and_deletion(new_hub: HubFactory) -> None:
    async with new_hub() as hub, durable_rig(hub) as rig:
        assert await rig.client.read_entity_state("counter", "none") is None
        await rig.client.signal_entity("counter", "e", "add", '"2"')
        await rig.client.signal_entity("counter", "e", "unserialisable", None)
        await rig.client.signal_entity("counter", "e", "add", '"3"')
        await _entity_state(rig, "e", "5")  # the failing operation changed nothing
        listed, _ = await rig.client.list_entities("counter", fetch_state=True, top=10,
                                                   continuation=None)
        assert [(i["entityId"], i["state"]) for i in listed] == [
            ({"name": "counter", "key": "e"}, 5)]
        await rig.client.signal_entity("counter", "e", "delete", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while await rig.client.read_entity_state("counter", "e") is not None:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        listed, _ = await rig.client.list_entities(None, fetch_state=False, top=10,
                                                   continuation=None)
        assert listed == []
        try:
            await rig.client.signal_entity("nobody", "x", "add", None)
        except InvalidArgument as exc:
            assert str(exc).startswith("The function 'nobody' doesn't exist")
        else:
            raise AssertionError("a signal to an unknown entity was accepted")


async def lock_requests_are_refused_by_name(new_hub: HubFactory) -> None:
    """SDK 1.x has no critical sections; a lock request (an "op" message with no operation
    and a lock set, as other SDKs send) is answered with an error that says so."""
    async with new_hub() as hub, durable_rig(hub) as rig:
        waiting = await rig.start("waits_for_event")
        await rig.wait(waiting, statuses=("Running",))
        row = await hub.read_instance(waiting)
        assert row is not None
        # The orchestration waits for "Approval": the lock's answer is named after its id.
        lock = json.dumps({"op": None, "id": "Approval", "parent": waiting,
                           "parentExecution": row["ExecutionId"],
                           "lockset": [{"name": "counter", "key": "l"}], "pos": 0})
        await hub.send_to_instance("@counter@l", None, history.event_raised(
            "op", lock, rig.clock.now()))
        status = await rig.wait(waiting)
        answer = ast.literal_eval(status["output"][len("Hello "):-1])  # hello(str(dict))
        assert answer == {"result": json.dumps(
            "Critical sections (entity locks) are not available: azure-functions-durable "
            "1.x has no lock API, so funclocal runs no lock requests."),
            "exceptionType": "Error"}
        assert await rig.client.read_entity_state("counter", "l") is None


CASES += [
    lock_requests_are_refused_by_name,
    entities_answer_calls_and_roll_failed_operations_back,
    concurrent_signals_are_each_applied_once,
    entity_errors_and_deletion,
]
