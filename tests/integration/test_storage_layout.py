"""The task hub in storage is laid out as the Durable Task Framework's Azure Storage
backend lays it out, so tools that read a Durable task hub read ours."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient
from support.durable import durable_host_for_test, start, wait_done
from support.host import HostProcess

from runtime.durable.names import partition_of
from runtime.storage.connection import StorageEndpoints


@pytest.fixture
def host(azurite: StorageEndpoints, task_hub_name: str) -> Iterator[HostProcess]:
    yield from durable_host_for_test(azurite, task_hub_name)


async def test_names_keys_and_columns(host: HostProcess, azurite: StorageEndpoints,
                                      task_hub_name: str) -> None:
    instance_id = start(host, "chaining", instance_id="layout-1")
    wait_done(host, instance_id)
    hub = task_hub_name
    lower = hub.lower()
    conn = azurite.connection_string
    async with TableServiceClient.from_connection_string(conn) as tables:
        names = {t.name async for t in tables.list_tables()}
        assert {f"{hub}History", f"{hub}Instances"} <= names
        history = tables.get_table_client(f"{hub}History")
        rows = [r async for r in history.query_entities("PartitionKey eq 'layout-1'")]
        instances = tables.get_table_client(f"{hub}Instances")
        row = await instances.get_entity("layout-1", "")
    keys = [r["RowKey"] for r in rows]
    assert keys[-1] == "sentinel"
    assert keys[:-1] == [f"{i:016X}" for i in range(len(keys) - 1)]
    events = [r for r in rows if r["RowKey"] != "sentinel"]
    types = [r["EventType"] for r in events]
    assert types[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert types.count("TaskScheduled") == 3 and types.count("TaskCompleted") == 3
    assert "ExecutionCompleted" in types
    execution_id = events[1]["ExecutionId"]
    assert all(r["ExecutionId"] == execution_id for r in rows)
    started = events[1]
    assert started["Name"] == "chaining"
    assert json.loads(started["OrchestrationInstance"]) == {"InstanceId": "layout-1",
                                                           "ExecutionId": execution_id}
    assert "_Timestamp" in started
    completed = next(r for r in events if r["EventType"] == "TaskCompleted")
    assert completed["Result"] == '"Hello Tokyo!"'
    assert completed["TaskScheduledId"] == 0
    assert row["Name"] == "chaining"
    assert row["RuntimeStatus"] == "Completed"
    assert row["ExecutionId"] == execution_id
    assert json.loads(row["Output"]) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert {"Input", "CustomStatus", "CreatedTime", "LastUpdatedTime", "CompletedTime",
            "Version", "TaskHubName"} <= set(row)
    async with QueueServiceClient.from_connection_string(conn) as queues:
        queue_names = {q.name async for q in queues.list_queues(name_starts_with=lower)}
    assert queue_names == {f"{lower}-control-0{i}" for i in range(4)} | {f"{lower}-workitems"}
    async with BlobServiceClient.from_connection_string(conn) as blobs:
        containers = {c.name async for c in blobs.list_containers(name_starts_with=lower)}
        assert {f"{lower}-leases", f"{lower}-largemessages"} <= containers
        leases = blobs.get_container_client(f"{lower}-leases")
        taskhub = json.loads(await (await leases.download_blob("taskhub.json")).readall())
        lease_blobs = {b.name async for b in leases.list_blobs(name_starts_with="default/")}
    assert taskhub["TaskHubName"] == hub
    assert taskhub["PartitionCount"] == 4
    assert lease_blobs == {f"default/{lower}-control-0{i}" for i in range(4)}


def test_partition_is_fnv1a_of_the_instance_id() -> None:
    # FNV-1a 32-bit of "a" is 0xE40C292C; 0xE40C292C % 4 == 0.
    assert partition_of("a", 4) == 0xE40C292C % 4
    assert partition_of("a", 16) == 0xE40C292C % 16
