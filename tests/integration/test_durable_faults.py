"""Durable work survives load, crashes, duplicated messages and storage going away."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from support.azurite import REPO_ROOT, free_ports
from support.durable import (
    api,
    durable_host_for_test,
    start,
    start_durable_host,
    wait_done,
    wait_status,
)
from support.host import HostProcess, free_port

from runtime.storage.azurite import ManagedAzurite, find_azurite_bin
from runtime.storage.connection import SERVICES, StorageEndpoints

JSON = {"Content-Type": "application/json"}


def fast_recovery_config(tmp_path: Path, hub: str) -> Path:
    """Short message locks, so that work held by a killed host is visible again soon."""
    config = {"version": "2.0", "extensions": {"durableTask": {
        "hubName": hub, "storageProvider": {
            "controlQueueVisibilityTimeout": "00:00:05",
            "workItemQueueVisibilityTimeout": "00:00:05"}}}}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def host(azurite: StorageEndpoints, task_hub_name: str) -> Iterator[HostProcess]:
    yield from durable_host_for_test(azurite, task_hub_name)


def test_500_instances_started_at_once_all_complete(host: HostProcess) -> None:
    def start_one(n: int) -> str:
        # The SDK's convention: the input is the JSON text of the value.
        response = api(host, "POST", f"/orchestrators/echo_input/bulk-{n:03d}",
                       json.dumps(json.dumps({"n": n})), JSON)
        assert response.status == 202, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(start_one, range(500)))
    assert len(set(ids)) == 500
    deadline = time.monotonic() + 300
    done: dict[str, Any] = {}
    while len(done) < 500:
        assert time.monotonic() < deadline, f"only {len(done)} of 500 completed"
        token = None
        while True:
            headers = {"x-ms-continuation-token": token} if token else {}
            page = api(host, "GET", "/instances/?runtimeStatus=Completed,Failed&top=200",
                       None, headers)
            for item in page.json():
                done[item["instanceId"]] = item
            token = page.headers.get("x-ms-continuation-token")
            if not token:
                break
        time.sleep(0.5)
    assert all(item["runtimeStatus"] == "Completed" for item in done.values())
    assert {item["instanceId"]: item["output"] for item in done.values()} == {
        f"bulk-{n:03d}": {"n": n} for n in range(500)}


async def test_duplicated_messages_never_duplicate_history(
        azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = start_durable_host(azurite, task_hub_name,
                              env={"FUNCLOCAL_FAULTS": "duplicate_sends"})
    try:
        chain = start(host, "chaining", instance_id="dup-chain")
        fan = start(host, "fan_out", 20, instance_id="dup-fan")
        assert wait_done(host, chain)["output"] == ["Hello Tokyo!", "Hello Seattle!",
                                                    "Hello London!"]
        assert wait_done(host, fan)["output"] == {"count": 20, "sum": 2 * sum(range(20))}
    finally:
        host.stop()
    async with TableServiceClient.from_connection_string(azurite.connection_string) as tables:
        history = tables.get_table_client(f"{task_hub_name}History")
        for instance_id, activities in (("dup-chain", 3), ("dup-fan", 20)):
            rows = [r async for r in history.query_entities(
                f"PartitionKey eq '{instance_id}' and RowKey ne 'sentinel'")]
            types = [r["EventType"] for r in rows]
            assert types.count("ExecutionStarted") == 1
            assert types.count("TaskScheduled") == activities
            assert types.count("TaskCompleted") == activities
            assert types.count("ExecutionCompleted") == 1
            completed_ids = [r["TaskScheduledId"] for r in rows
                             if r["EventType"] == "TaskCompleted"]
            assert len(set(completed_ids)) == activities


def test_kill_9_then_restart_resumes_every_instance(
        azurite: StorageEndpoints, task_hub_name: str, tmp_path: Path) -> None:
    config = fast_recovery_config(tmp_path, task_hub_name)
    port = free_port()
    host = start_durable_host(azurite, task_hub_name, port=port, host_json=config)
    waiting = start(host, "waits_for_event", instance_id="crash-waiting")
    wait_status(host, waiting, lambda s: s["customStatus"] == "waiting")
    fans = [start(host, "fan_out", 30, instance_id=f"crash-fan-{n}") for n in range(3)]
    host.process.kill()  # SIGKILL: no cleanup, leases held, messages locked
    host.process.wait()
    restarted = start_durable_host(azurite, task_hub_name, port=port, host_json=config)
    try:
        for instance_id in fans:
            status = wait_done(restarted, instance_id, timeout=120)
            assert status["runtimeStatus"] == "Completed"
            assert status["output"] == {"count": 30, "sum": 2 * sum(range(30))}
        response = api(restarted, "POST", f"/instances/{waiting}/raiseEvent/Approval",
                       json.dumps("Ann"), JSON)
        assert response.status == 202
        assert wait_done(restarted, waiting)["output"] == "Hello Ann!"
    finally:
        restarted.stop()


# Storage requests 11-29 are the whole run of `chaining` (idle polls are not counted):
# the start, then per step a work-item send, the history write, the instance row and the
# work-item delete.
@pytest.mark.parametrize("crash_at", range(11, 30))
def test_crash_at_any_storage_request_loses_no_step(
        azurite: StorageEndpoints, task_hub_name: str, tmp_path: Path, crash_at: int) -> None:
    """Kill the host before its Nth storage request, in the middle of checkpoints, then
    restart it: the orchestration completes with exactly one result per activity."""
    config = fast_recovery_config(tmp_path, task_hub_name)
    port = free_port()
    host = start_durable_host(azurite, task_hub_name, port=port, host_json=config,
                              env={"FUNCLOCAL_FAULTS": f"crash_at_request={crash_at}"})
    try:
        try:
            response = api(host, "POST", "/orchestrators/chaining/crashing", None, JSON)
            acknowledged = response.status == 202
        except OSError:
            acknowledged = False  # the host died while answering
        deadline = time.monotonic() + 60
        while host.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.process.poll() is not None, "the fault never fired"
        assert "FAULT: killing the host" in host.log_text()
    finally:
        host.stop()
    restarted = start_durable_host(azurite, task_hub_name, port=port, host_json=config)
    try:
        status = api(restarted, "GET", "/instances/crashing")
        if not acknowledged and status.status == 404:
            return  # the start itself never completed, and nothing is left behind
        final = wait_done(restarted, "crashing", timeout=120)
        assert final["runtimeStatus"] == "Completed"
        assert final["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        history = api(restarted, "GET", "/instances/crashing?showHistory=true").json()
        kinds = [e["EventType"] for e in history["historyEvents"]]
        assert kinds.count("TaskCompleted") == 3
        assert kinds.count("ExecutionStarted") == 1
    finally:
        restarted.stop()


async def test_storage_unreachable_during_start_fails_clearly(task_hub_name: str) -> None:
    bin_dir = find_azurite_bin(REPO_ROOT)
    assert bin_dir is not None
    with tempfile.TemporaryDirectory() as data:
        azurite = ManagedAzurite(bin_dir, data_dir=Path(data), in_memory=True,
                                 ports=dict(zip(SERVICES, free_ports(3), strict=True)))
        await azurite.start()
        host = start_durable_host(azurite.endpoints, task_hub_name)
        try:
            first = start(host, "chaining")
            wait_done(host, first)
            await azurite.stop()
            started = time.monotonic()
            response = api(host, "POST", "/orchestrators/chaining")
            elapsed = time.monotonic() - started
            assert response.status == 500
            assert "could not be recorded in storage within 30 seconds" in \
                response.json()["ExceptionMessage"]
            assert elapsed < 45
            assert host.get("/admin/host/status").json()["state"] == "Running"
        finally:
            host.stop()


def test_graceful_stop_hands_work_back_at_once(
        azurite: StorageEndpoints, task_hub_name: str) -> None:
    """Stopping the host while an activity runs makes its work item visible again at
    once: a restarted host finishes the instance without waiting for locks to expire
    (15 s, renewed while held)."""
    port = free_port()
    host = start_durable_host(azurite, task_hub_name, port=port)
    instance_id = start(host, "slow_step")
    host.wait_for_log("Executing 'Functions.nap'")
    assert host.stop() == 0
    restarted = start_durable_host(azurite, task_hub_name, port=port)
    try:
        begun = time.monotonic()
        status = wait_done(restarted, instance_id, timeout=15)
        assert status["output"] == "slept 3s"
        assert time.monotonic() - begun < 15
    finally:
        restarted.stop()
