"""The task hub's storage layout and operations against a real Azurite."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceResponseError
from azure.storage.blob.aio import BlobLeaseClient
from support.azurite import free_ports

from runtime.durable.hub_owners import read_partitions
from runtime.durable.leases import PartitionLeases
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.durable.taskhub.azure import AzureTaskHub
from runtime.errors import CheckpointConflict, InstanceExists, StorageError
from runtime.storage import tablebatch
from runtime.storage.clients import LEAN_ENV, StorageClients, open_storage
from runtime.storage.connection import StorageEndpoints
from runtime.storage.leanqueue import LeanQueues
from runtime.storage.retries import with_retries

PARTITIONS = 4
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")  # Azurite's published development key


@pytest.fixture(params=["lean-queues", "sdk-queues"])
async def storage(azurite: StorageEndpoints, request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StorageClients]:
    """Every task hub test runs twice: with the signed queue requests of the hot path,
    and with the queue SDK they replace (used for accounts reached without a key)."""
    monkeypatch.setenv(LEAN_ENV, "1" if request.param == "lean-queues" else "0")
    clients = await open_storage(azurite.connection_string)
    assert isinstance(clients.queue_ops, LeanQueues) == (request.param == "lean-queues")
    yield clients
    await clients.close()


@pytest.fixture
async def hub(storage: StorageClients, task_hub_name: str) -> AsyncIterator[AzureTaskHub]:
    task_hub = AzureTaskHub(storage, task_hub_name, PARTITIONS, operation_timeout=20.0)
    await task_hub.create_if_missing()
    yield task_hub
    await task_hub.delete_task_hub()
    await task_hub.close()


def ts(seconds: int = 0) -> str:
    moment = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def ev(event_type: int, event_id: int = -1, seconds: int = 0, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False,
            "Timestamp": ts(seconds), **fields}


def started(instance_id: str, execution_id: str, input_text: str = "null") -> dict[str, Any]:
    return ev(0, OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
              ParentInstance=None, Name="Chain", Version="", Input=input_text, Tags=None,
              Correlation=None, ScheduledStartTime=None, Generation=0)


async def receive_until(hub: TaskHub, queue: str, count: int = 1, *,
                        timeout: float = 10.0) -> list[QueueMessage]:
    deadline = time.monotonic() + timeout
    got: list[QueueMessage] = []
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} messages arrived"
        got += await hub.receive(queue, 32, 30)
        if len(got) < count:
            await asyncio.sleep(0.05)
    return got


async def blob_names(storage: StorageClients, container: str, prefix: str = "") -> list[str]:
    client = storage.blobs.get_container_client(container)
    return [b.name async for b in client.list_blobs(name_starts_with=prefix)]


# --- artifacts ----------------------------------------------------------------------


async def test_create_if_missing_creates_every_artifact_and_can_run_twice(
        storage: StorageClients, task_hub_name: str) -> None:
    first = AzureTaskHub(storage, task_hub_name, PARTITIONS)
    second = AzureTaskHub(storage, task_hub_name, PARTITIONS)
    try:
        await asyncio.gather(first.create_if_missing(), second.create_if_missing())
        await first.create_if_missing()

        low = task_hub_name.lower()
        tables = sorted([t.name async for t in storage.tables.list_tables()
                         if t.name.startswith(task_hub_name)])
        assert tables == [f"{task_hub_name}History", f"{task_hub_name}Instances"]
        queues = sorted([q.name async for q in storage.queues.list_queues(
            name_starts_with=low + "-")])
        assert queues == [f"{low}-control-00", f"{low}-control-01", f"{low}-control-02",
                          f"{low}-control-03", f"{low}-workitems"]
        containers = sorted([c.name async for c in storage.blobs.list_containers(
            name_starts_with=low + "-")])
        assert containers == [f"{low}-largemessages", f"{low}-leases"]

        blob = storage.blobs.get_blob_client(f"{low}-leases", "taskhub.json")
        info = json.loads(await (await blob.download_blob()).readall())
        assert info["TaskHubName"] == task_hub_name
        assert info["PartitionCount"] == PARTITIONS
        assert info["CreatedAt"].endswith("Z")
        assert first.names.control_queues == tuple(queues[:4])
        assert first.names.workitems == f"{low}-workitems"
    finally:
        await first.delete_task_hub()


# --- queues -------------------------------------------------------------------------


async def test_message_round_trip_through_the_instance_control_queue(hub: TaskHub) -> None:
    event = ev(15, Name="Approval", Input="true")
    await hub.send_to_instance("order-7", "exec-1", event, sender=("parent", "pexec"),
                               episode=3)
    queue = hub.control_queue(hub.partition_of("order-7"))
    [msg] = await receive_until(hub, queue)
    assert msg.queue == queue
    assert msg.event == event
    assert msg.instance_id == "order-7" and msg.execution_id == "exec-1"
    assert msg.dequeue_count == 1
    assert msg.inserted_on.tzinfo is not None
    assert msg.body["Sender"] == {"InstanceId": "parent", "ExecutionId": "pexec"}
    assert msg.body["Episode"] == 3
    assert msg.body["CompressedBlobName"] is None
    assert isinstance(msg.body["ActivityId"], str) and msg.sequence_number > 0
    for other in hub.names.control_queues:
        if other != queue:
            assert await hub.receive(other, 32, 30) == []

    await hub.delete_message(msg)
    await hub.delete_message(msg)  # already gone: fine
    assert await hub.receive(queue, 32, 1) == []


async def test_activity_goes_to_the_workitems_queue(hub: TaskHub) -> None:
    await hub.send_activity("order-8", "exec-1", ev(4, 0, Name="Hello", Version="", Input=None),
                            episode=1)
    [msg] = await receive_until(hub, hub.names.workitems)
    assert msg.event["Name"] == "Hello" and msg.body["Episode"] == 1
    assert msg.instance_id == "order-8"


async def test_peek_looks_without_taking(hub: TaskHub) -> None:
    await hub.send_to_instance("look-1", "exec-1", ev(15, Name="Approval", Input="1"))
    queue = hub.control_queue(hub.partition_of("look-1"))
    for _ in range(2):  # looking twice changes nothing
        [seen] = await hub.peek(queue)
        assert seen.instance_id == "look-1" and seen.event["Name"] == "Approval"
        assert seen.dequeue_count == 0 and seen.pop_receipt == ""
    assert await hub.queue_length(queue) == 1
    [msg] = await receive_until(hub, queue)  # still there for a host
    assert msg.message_id == seen.message_id and msg.dequeue_count == 1
    assert await hub.peek(queue) == []  # hidden while held...
    assert await hub.queue_length(queue) == 1  # ...but counted


async def test_large_message_travels_through_a_blob(hub: TaskHub,
                                                    storage: StorageClients) -> None:
    payload = json.dumps("é" * 100_000)  # ~200 KB of UTF-8
    event = started("big-1", "exec-1", payload)
    await hub.send_to_instance("big-1", "exec-1", event)
    queue = hub.control_queue(hub.partition_of("big-1"))

    raw = await storage.queues.get_queue_client(queue).peek_messages(max_messages=1)
    wrapper = json.loads(raw[0].content)
    blob_name = wrapper["CompressedBlobName"]
    assert set(wrapper) == {"CompressedBlobName"}
    assert blob_name.startswith("big-1/message-")
    assert blob_name.endswith("-ExecutionStarted.json.gz")
    container = hub.names.large_messages_container
    blob = storage.blobs.get_blob_client(container, blob_name)
    stored = json.loads(gzip.decompress(await (await blob.download_blob()).readall()))
    assert stored["TaskMessage"]["Event"] == event

    [msg] = await receive_until(hub, queue)
    assert msg.event == event
    assert msg.instance_id == "big-1"
    assert msg.body["CompressedBlobName"] == blob_name


async def test_visibility_delay_hides_a_message_until_due(hub: TaskHub) -> None:
    queue = hub.control_queue(hub.partition_of("timer-1"))
    sent = time.monotonic()
    await hub.send_to_instance("timer-1", "e", ev(11, TimerId=0, FireAt=ts()),
                               visible_at=datetime.now(timezone.utc) + timedelta(seconds=2))
    assert await hub.receive(queue, 32, 30) == []
    [msg] = await receive_until(hub, queue, timeout=15)
    assert time.monotonic() - sent >= 1.5
    assert msg.event["TimerId"] == 0


async def test_abandon_makes_a_message_visible_again(hub: TaskHub) -> None:
    await hub.send_to_instance("retry-1", None, ev(15, Name="x", Input="1"))
    queue = hub.control_queue(hub.partition_of("retry-1"))
    [first] = await receive_until(hub, queue)
    assert first.execution_id is None
    await hub.abandon(first, 0)
    [again] = await receive_until(hub, queue)
    assert again.message_id == first.message_id
    assert again.dequeue_count == 2
    await hub.abandon(first, 0)  # stale pop receipt: nothing to do
    await hub.delete_message(again)


async def test_unreadable_message_is_dropped(hub: TaskHub, storage: StorageClients) -> None:
    queue = hub.control_queue(0)
    client = storage.queues.get_queue_client(queue)
    await client.send_message("not json")
    await client.send_message(json.dumps({"CompressedBlobName": "gone/message-x.json.gz"}))
    assert await hub.receive(queue, 32, 30) == []
    assert await client.peek_messages(max_messages=32) == []


# --- history ------------------------------------------------------------------------


async def test_history_append_and_load_with_etags(hub: TaskHub) -> None:
    empty = await hub.load_history("h-1")
    assert (empty.events, empty.etag, empty.execution_id) == ([], None, None)

    episode1 = [ev(12), started("h-1", "x1"), ev(4, 0, Name="A", Version="", Input=None),
                ev(13)]
    etag1 = await hub.append_history("h-1", "x1", 0, episode1, None)
    snap = await hub.load_history("h-1")
    assert snap.events == episode1
    assert snap.etag == etag1 and snap.execution_id == "x1"

    episode2 = [ev(12, seconds=1), ev(5, seconds=1, TaskScheduledId=0, Result='"a"'),
                ev(13, seconds=1)]
    etag2 = await hub.append_history("h-1", "x1", 4, episode2, etag1)
    assert etag2 != etag1
    snap = await hub.load_history("h-1")
    assert snap.events == episode1 + episode2 and snap.etag == etag2

    # A writer holding the old ETag lost the race; so did one that thinks it is new.
    with pytest.raises(CheckpointConflict):
        await hub.append_history("h-1", "x1", 4, episode2, etag1)
    with pytest.raises(CheckpointConflict):
        await hub.append_history("h-1", "x1", 0, episode1, None)
    assert (await hub.load_history("h-1")).events == episode1 + episode2


async def test_big_checkpoint_spans_several_transactions(hub: TaskHub) -> None:
    large = json.dumps("L" * 70_000)
    events = [ev(12), started("h-2", "x1", large)]
    events += [ev(4, i, Name="Fan", Version="", Input=None) for i in range(250)]
    events += [ev(5, TaskScheduledId=i, Result=json.dumps(i)) for i in range(250)]
    etag = await hub.append_history("h-2", "x1", 0, events, None)
    snap = await hub.load_history("h-2")
    assert snap.etag == etag
    assert snap.events == events
    assert snap.events[1]["Input"] == large
    sentinel = await hub.histories.table.get_entity("h-2", "sentinel")
    assert sentinel["IsCheckpointComplete"] is True
    assert sentinel["ExecutionId"] == "x1"


async def test_a_new_execution_hides_the_previous_one(hub: TaskHub) -> None:
    old = [ev(12), started("h-3", "x1"), ev(4, 0, Name="A", Version="", Input=None),
           ev(13)]
    etag = await hub.append_history("h-3", "x1", 0, old, None)
    new = [ev(12, seconds=5), started("h-3", "x2", '"again"')]
    await hub.append_history("h-3", "x2", 0, new, etag)
    snap = await hub.load_history("h-3")
    assert snap.execution_id == "x2"
    assert snap.events == new


async def test_batch_applied_but_answer_lost_counts_as_written(
        hub: TaskHub, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tablebatch.submit
    losses = 0

    async def lose_answer(*args: Any, **kwargs: Any) -> Any:
        nonlocal losses
        result = await real(*args, **kwargs)
        if losses < 2:
            losses += 1
            raise ServiceResponseError("connection reset after the batch was applied")
        return result

    monkeypatch.setattr(tablebatch, "submit", lose_answer)
    first = [ev(12), started("h-4", "x1"), ev(13)]
    etag1 = await hub.append_history("h-4", "x1", 0, first, None)  # the insert case
    second = [ev(12, seconds=1), ev(13, seconds=1)]
    etag2 = await hub.append_history("h-4", "x1", 3, second, etag1)  # the merge case
    assert losses == 2
    snap = await hub.load_history("h-4")
    assert snap.events == first + second
    assert snap.etag == etag2


# --- instances ----------------------------------------------------------------------


def fields(status: str = "Pending", *, execution_id: str = "x1", created: datetime | None = None,
           input_text: str = '"in"') -> dict[str, Any]:
    now = created or datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    return {"Name": "Chain", "Version": "", "Input": input_text, "RuntimeStatus": status,
            "CreatedTime": now, "LastUpdatedTime": now, "ExecutionId": execution_id,
            "Generation": 0, "TaskHubName": "Hub", "CustomStatus": "null",
            "Tags": {"team": "a"}}


async def test_instance_row_insert_read_replace_merge_delete(hub: TaskHub) -> None:
    assert await hub.read_instance("inst/1") is None
    await hub.insert_instance("inst/1", fields())
    row = await hub.read_instance("inst/1")
    assert row is not None
    assert row["InstanceId"] == "inst/1"
    assert row["RuntimeStatus"] == "Pending" and row["Input"] == '"in"'
    assert row["CreatedTime"] == datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert row["Tags"] == {"team": "a"} and row["Output"] is None
    assert row["etag"]

    with pytest.raises(InstanceExists) as exists:
        await hub.insert_instance("inst/1", fields(execution_id="x2"))
    assert exists.value.status == "Pending"

    await hub.merge_instance("inst/1", {"RuntimeStatus": "Completed", "Output": '"done"'})
    with pytest.raises(InstanceExists):  # the row changed since it was read
        await hub.replace_instance("inst/1", fields(execution_id="x2"), row["etag"])
    current = await hub.read_instance("inst/1")
    assert current is not None and current["RuntimeStatus"] == "Completed"
    await hub.replace_instance("inst/1", fields(execution_id="x2"), current["etag"])
    reused = await hub.read_instance("inst/1")
    assert reused is not None
    assert reused["ExecutionId"] == "x2" and reused["Output"] is None

    await hub.delete_instance_row("inst/1")
    await hub.delete_instance_row("inst/1")
    assert await hub.read_instance("inst/1") is None


async def test_one_megabyte_input_round_trips_through_the_instance_row(
        hub: TaskHub, storage: StorageClients) -> None:
    big = json.dumps("m" * 1_000_000)
    await hub.insert_instance("big-inst", fields(input_text=big))
    row = await hub.read_instance("big-inst")
    assert row is not None and row["Input"] == big
    raw = await hub.instances.table.get_entity("big-inst", "")
    assert raw["Input"].startswith("http") and raw["InputBlobName"]

    await hub.merge_instance("big-inst", {"Output": big})
    row = await hub.read_instance("big-inst")
    assert row is not None and row["Output"] == big
    await hub.merge_instance("big-inst", {"Output": '"small"'})
    row = await hub.read_instance("big-inst")
    assert row is not None and row["Output"] == '"small"' and row["Input"] == big
    assert len(await blob_names(storage, hub.names.large_messages_container,
                                "big-inst/")) == 2


async def test_query_instances_filters_and_pages(hub: TaskHub) -> None:
    base = datetime(2024, 3, 1, tzinfo=timezone.utc)
    statuses = ["Running", "Completed", "Failed"]
    for i in range(9):
        prefix = "order" if i % 2 == 0 else "batch"
        await hub.insert_instance(f"{prefix}-{i}", fields(
            statuses[i % 3], created=base + timedelta(hours=i)))

    everything, token = await hub.query_instances()
    assert token is None and len(everything) == 9

    rows, _ = await hub.query_instances(statuses=["Completed", "Failed"])
    assert sorted(r["InstanceId"] for r in rows) == [
        "batch-1", "batch-5", "batch-7", "order-2", "order-4", "order-8"]
    rows, _ = await hub.query_instances(prefix="order-")
    assert sorted(r["InstanceId"] for r in rows) == [
        "order-0", "order-2", "order-4", "order-6", "order-8"]
    rows, _ = await hub.query_instances(created_from=base + timedelta(hours=3),
                                        created_to=base + timedelta(hours=5))
    assert sorted(r["InstanceId"] for r in rows) == ["batch-3", "batch-5", "order-4"]
    rows, _ = await hub.query_instances(prefix="order-", statuses=["Running"],
                                        created_from=base + timedelta(hours=1))
    assert [r["InstanceId"] for r in rows] == ["order-6"]

    seen: list[str] = []
    continuation: str | None = None
    pages = 0
    while True:
        page, continuation = await hub.query_instances(top=2, continuation=continuation)
        assert len(page) <= 2
        seen += [r["InstanceId"] for r in page]
        pages += 1
        if continuation is None:
            break
        assert isinstance(continuation, str)
    assert sorted(seen) == sorted(r["InstanceId"] for r in everything)
    assert pages >= 5


async def test_purge_removes_history_row_and_blobs(hub: TaskHub,
                                                   storage: StorageClients) -> None:
    big = json.dumps("p" * 100_000)
    await hub.insert_instance("gone-1", fields(input_text=big))
    events = [ev(12), started("gone-1", "x1", big)] + [
        ev(4, i, Name="A", Version="", Input=None) for i in range(120)]
    await hub.append_history("gone-1", "x1", 0, events, None)
    await hub.send_to_instance("gone-1", "x1", started("gone-1", "x1", big))
    await hub.insert_instance("gone-10", fields())  # shares the id prefix; must survive
    container = hub.names.large_messages_container
    assert len(await blob_names(storage, container, "gone-1/")) == 3

    assert await hub.purge_instance("gone-1") is True
    assert await hub.read_instance("gone-1") is None
    assert (await hub.load_history("gone-1")).events == []
    assert await blob_names(storage, container, "gone-1/") == []
    assert await hub.read_instance("gone-10") is not None
    assert await hub.purge_instance("gone-1") is False


# --- leases -------------------------------------------------------------------------


async def test_two_owners_compete_for_partition_leases(hub: TaskHub,
                                                       storage: StorageClients) -> None:
    first = PartitionLeases(storage, hub.hub_name, PARTITIONS, "host-a", lease_seconds=15)
    second = PartitionLeases(storage, hub.hub_name, PARTITIONS, "host-b", lease_seconds=15)

    assert sorted(await first.acquire_available()) == [0, 1, 2, 3]
    assert first.owned == frozenset({0, 1, 2, 3})
    assert await first.renew() == []

    low = hub.hub_name.lower()
    blob = storage.blobs.get_blob_client(f"{low}-leases", f"default/{low}-control-02")
    body = json.loads(await (await blob.download_blob()).readall())
    assert body["PartitionId"] == f"{low}-control-02"
    assert body["Owner"] == "host-a" and body["Epoch"] == 1 and body["Token"]

    await first.release_all()
    assert first.owned == frozenset()
    assert sorted(await second.acquire_available()) == [0, 1, 2, 3]
    body = json.loads(await (await blob.download_blob()).readall())
    assert body["Owner"] == "host-b" and body["Epoch"] == 2

    # A lease taken away (here: broken, then acquired by the other host) is reported lost.
    await BlobLeaseClient(blob).break_lease(lease_break_period=0)
    assert await first.acquire_available() == [2]
    assert await second.renew() == [2]
    assert second.owned == frozenset({0, 1, 3})
    await asyncio.gather(first.release_all(), second.release_all())


async def balance_round(hosts: list[PartitionLeases]) -> None:
    """What each host's lease loop does: take free partitions or ask for one, then hand
    over what others asked for."""
    for host in hosts:
        await host.acquire_available()
    for host in hosts:
        for partition in host.requested():
            await host.release(partition)


async def test_hosts_converge_to_a_fair_split(hub: TaskHub, storage: StorageClients) -> None:
    hosts = [PartitionLeases(storage, hub.hub_name, PARTITIONS, f"host-{n}") for n in "abc"]
    a, b, c = hosts
    assert sorted(await a.acquire_available()) == [0, 1, 2, 3]  # alone: everything
    # A host that starts later asks the busiest for partitions, one at a time, and
    # gets them once they are handed over: 2 and 2.
    for _ in range(6):
        await balance_round([a, b])
    assert (len(a.owned), len(b.owned)) == (2, 2)
    assert a.owned.isdisjoint(b.owned)
    # A third host takes one partition; nobody owns more than one more than another.
    for _ in range(6):
        await balance_round(hosts)
    counts = sorted(len(h.owned) for h in hosts)
    assert counts == [1, 1, 2]
    assert len(a.owned | b.owned | c.owned) == PARTITIONS
    # A host that dies: its leases expire (here: broken), the others share them.
    dead = max(hosts, key=lambda h: len(h.owned))
    for partition in dead.owned:
        lease_blob = storage.blobs.get_blob_client(
            f"{hub.hub_name.lower()}-leases",
            f"default/{hub.hub_name.lower()}-control-{partition:02d}")
        await BlobLeaseClient(lease_blob).break_lease(lease_break_period=0)
    alive = [h for h in hosts if h is not dead]
    for _ in range(3):
        await balance_round(alive)
    assert sorted(len(h.owned) for h in alive) == [2, 2]
    await asyncio.gather(*(h.release_all() for h in hosts))


async def test_partition_holders_and_taskhub_json_are_read_without_taking(
        hub: AzureTaskHub, storage: StorageClients) -> None:
    info = await hub.read_info()
    assert info is not None and info["TaskHubName"] == hub.hub_name
    assert info["PartitionCount"] == PARTITIONS
    before = await read_partitions(storage, hub.hub_name, PARTITIONS)
    assert [(p.partition, p.leased, p.owner) for p in before] == \
        [(i, False, None) for i in range(PARTITIONS)]
    owner = PartitionLeases(storage, hub.hub_name, PARTITIONS, "host-a", lease_seconds=15)
    await owner.acquire_available()
    held = await read_partitions(storage, hub.hub_name, PARTITIONS)
    assert [(p.queue, p.leased, p.owner) for p in held] == \
        [(q, True, "host-a") for q in hub.names.control_queues]
    assert owner.owned == frozenset(range(PARTITIONS))  # reading took nothing
    await owner.release_all()
    released = await read_partitions(storage, hub.hub_name, PARTITIONS)
    assert [(p.leased, p.owner) for p in released] == [(False, "host-a")] * PARTITIONS


async def test_a_hub_never_created_has_no_taskhub_json(storage: StorageClients) -> None:
    assert await AzureTaskHub(storage, "NeverCreated", PARTITIONS).read_info() is None


# --- retries ------------------------------------------------------------------------


async def test_with_retries_retries_transient_errors_until_the_deadline() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ServiceResponseError("connection reset")
        return "ok"

    assert await with_retries(flaky, what="a flaky call", deadline=time.monotonic() + 10) == "ok"
    assert calls == 3

    async def down() -> None:
        raise HttpResponseError(message="server busy", response=None)

    started_at = time.monotonic()
    with pytest.raises(StorageError, match="did not complete reading a row within"):
        await with_retries(_status(down, 503), what="reading a row",
                           deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started_at < 2.0


async def test_with_retries_never_retries_meaningful_errors() -> None:
    calls = 0

    async def conflict() -> None:
        nonlocal calls
        calls += 1
        raise ResourceExistsError("exists")

    with pytest.raises(ResourceExistsError):
        await with_retries(_status(conflict, 409), what="x", deadline=time.monotonic() + 10)
    assert calls == 1


def _status(op: Callable[[], Awaitable[None]], status: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await op()
        except HttpResponseError as exc:
            exc.status_code = status
            raise
    return run


async def test_unreachable_storage_fails_with_a_clear_storage_error() -> None:
    [port] = free_ports(1)  # nothing listens there
    url = f"http://127.0.0.1:{port}/devstoreaccount1"
    dead = StorageEndpoints(account_name="devstoreaccount1", account_key=ACCOUNT_KEY,
                            blob_url=url, queue_url=url, table_url=url)
    async with await open_storage(dead.connection_string) as clients:
        task_hub = AzureTaskHub(clients, "DeadHub", 1, operation_timeout=1.0)
        started_at = time.monotonic()
        with pytest.raises(StorageError, match="reading the instance row of 'x'"):
            await task_hub.read_instance("x")
        assert time.monotonic() - started_at < 10
