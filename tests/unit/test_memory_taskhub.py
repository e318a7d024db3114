"""MemoryTaskHub as a TaskHub: queues with locks and receipts, timers on a virtual clock,
history guarded by the sentinel ETag, instance rows and their queries."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runtime.clock import VirtualClock
from runtime.durable import history
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.errors import CheckpointConflict, InstanceExists, InvalidArgument

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_hub(clock: VirtualClock | None = None, partitions: int = 4) -> MemoryTaskHub:
    return MemoryTaskHub("t" + uuid.uuid4().hex[:12], partitions, clock=clock)


def raised(name: str = "go", data: str = '"x"') -> dict[str, Any]:
    return history.event_raised(name, data, T0)


def instance_fields(status: str = "Running", created: datetime = T0,
                    execution_id: str = "x1", **more: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"Name": "Orch", "Version": "", "Input": '"in"',
                              "RuntimeStatus": status, "CreatedTime": created,
                              "LastUpdatedTime": created, "ExecutionId": execution_id,
                              "CustomStatus": "null"}
    fields.update(more)
    return fields


def started_history(execution_id: str, n_tasks: int = 0) -> list[dict[str, Any]]:
    events = [history.orchestrator_started(T0),
              history.execution_started("i1", execution_id, "Orch", "null", T0)]
    events += [history.task_scheduled(i, "Act", None, T0) for i in range(n_tasks)]
    return events + [history.orchestrator_completed(T0)]


async def until(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_it_is_a_task_hub_with_the_dtfx_names() -> None:
    hub = MemoryTaskHub("MyHub", 3)
    assert isinstance(hub, TaskHub)
    assert hub.hub_name == "MyHub"
    assert [hub.control_queue(p) for p in range(3)] == [
        "myhub-control-00", "myhub-control-01", "myhub-control-02"]
    assert hub.workitems_queue == "myhub-workitems"
    assert 0 <= hub.partition_of("some id") < 3


def test_a_bad_hub_name_or_partition_count_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with a letter"):
        MemoryTaskHub("1hub", 4)
    with pytest.raises(ValueError, match="partitionCount must be between 1 and 16"):
        MemoryTaskHub("hub", 17)


# --- queues ---------------------------------------------------------------------------


async def test_send_to_instance_lands_on_the_partition_of_the_instance() -> None:
    hub = new_hub(partitions=8)
    sent = await hub.send_to_instance("order-7", "x1", raised(), sender=("p", "px"), episode=3)
    queue = hub.control_queue(hub.partition_of("order-7"))
    assert sent.queue == queue
    assert (sent.instance_id, sent.execution_id) == ("order-7", "x1")
    assert sent.event["EventType"] == EventType.EventRaised
    assert sent.body["Sender"] == {"InstanceId": "p", "ExecutionId": "px"}
    assert sent.body["Episode"] == 3
    got = await hub.receive(queue, 32, 30)
    assert [m.message_id for m in got] == [sent.message_id]
    assert got[0].dequeue_count == 1
    assert got[0].body == sent.body
    others = [q for q in hub.names.all_queues if q != queue]
    for other in others:
        assert await hub.receive(other, 32, 30) == []


async def test_receive_returns_messages_in_queue_order_up_to_the_maximum() -> None:
    hub = new_hub()
    queue = hub.control_queue(hub.partition_of("i1"))
    sent = [await hub.send_to_instance("i1", "x1", raised(str(n))) for n in range(5)]
    first = await hub.receive(queue, 2, 30)
    rest = await hub.receive(queue, 32, 30)
    assert [m.message_id for m in first + rest] == [m.message_id for m in sent]
    assert [m.sequence_number for m in first + rest] == sorted(
        m.sequence_number for m in sent)
    assert await hub.receive(queue, 32, 30) == []


async def test_a_received_message_is_hidden_for_its_lock_then_comes_back() -> None:
    hub = new_hub()
    queue = hub.control_queue(hub.partition_of("i1"))
    await hub.send_to_instance("i1", None, raised())
    (held,) = await hub.receive(queue, 1, 1.0)
    assert await hub.receive(queue, 1, 1.0) == []
    assert hub.visible(queue) == []

    async def back() -> bool:
        return bool(hub.visible(queue))
    await until(back)
    (again,) = await hub.receive(queue, 1, 30)
    assert again.message_id == held.message_id
    assert again.dequeue_count == 2
    assert again.pop_receipt != held.pop_receipt


async def test_abandon_with_no_delay_makes_a_message_visible_at_once() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0))
    (held,) = await hub.receive(queue, 1, 300)
    await hub.abandon(held, 0)
    (again,) = await hub.receive(queue, 1, 300)
    assert again.message_id == held.message_id
    assert again.dequeue_count == 2


async def test_abandon_with_a_delay_keeps_it_hidden() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0))
    (held,) = await hub.receive(queue, 1, 300)
    await hub.abandon(held, 60)
    assert await hub.receive(queue, 1, 300) == []


async def test_delete_removes_a_received_message_and_twice_is_fine() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0))
    (held,) = await hub.receive(queue, 1, 300)
    await hub.delete_message(held)
    await hub.delete_message(held)
    await hub.abandon(held, 0)
    assert hub.queues[queue] == []


async def test_extend_gives_a_new_receipt_and_the_stale_one_does_nothing() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0))
    (held,) = await hub.receive(queue, 1, 300)
    renewed = await hub.extend(held, 300)
    assert renewed.message_id == held.message_id
    assert renewed.pop_receipt != held.pop_receipt

    await hub.delete_message(held)  # stale: another receiver's receipt is current
    await hub.abandon(held, 0)  # stale: stays hidden
    assert await hub.extend(held, 300) == held  # stale: unchanged
    assert len(hub.queues[queue]) == 1
    assert await hub.receive(queue, 1, 300) == []

    await hub.delete_message(renewed)
    assert hub.queues[queue] == []


async def test_a_stale_receipt_after_the_lock_ran_out_and_another_receive() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0))
    (first,) = await hub.receive(queue, 1, 300)
    await hub.abandon(first, 0)
    (second,) = await hub.receive(queue, 1, 300)
    await hub.delete_message(first)
    assert len(hub.queues[queue]) == 1
    await hub.delete_message(second)
    assert hub.queues[queue] == []


async def test_a_timer_message_is_not_receivable_until_the_virtual_clock_reaches_it() -> None:
    clock = VirtualClock(T0)
    hub = new_hub(clock)
    queue = hub.control_queue(hub.partition_of("i1"))
    fire = history.timer_fired(1, at(3600), T0)
    sent = await hub.send_to_instance("i1", "x1", fire, visible_at=at(3600))
    now_msg = await hub.send_to_instance("i1", "x1", raised())
    assert hub.next_visible_at() == at(3600)

    got = await hub.receive(queue, 32, 30)
    assert [m.message_id for m in got] == [now_msg.message_id]

    await clock.advance(timedelta(minutes=59))
    assert await hub.receive(queue, 32, 30) == []
    await clock.advance(timedelta(minutes=1))
    assert hub.next_visible_at() is None
    (timer,) = await hub.receive(queue, 32, 30)
    assert timer.message_id == sent.message_id
    assert timer.event["EventType"] == EventType.TimerFired


async def test_an_abandoned_timer_message_stays_visible() -> None:
    clock = VirtualClock(T0)
    hub = new_hub(clock)
    queue = hub.control_queue(hub.partition_of("i1"))
    await hub.send_to_instance("i1", "x1", history.timer_fired(1, at(10), T0),
                               visible_at=at(10))
    await clock.advance_to(at(10))
    (held,) = await hub.receive(queue, 1, 30)
    await hub.abandon(held, 0)
    assert len(await hub.receive(queue, 1, 30)) == 1


async def test_send_activity_hidden_for_is_held_by_the_sender() -> None:
    hub = new_hub()
    queue = hub.workitems_queue
    sent = await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", '"a"', T0),
                                   hidden_for=300, episode=2)
    assert sent.queue == queue
    assert sent.body["Episode"] == 2
    assert await hub.receive(queue, 32, 30) == []
    assert len(hub.queues[queue]) == 1  # the queued copy is the source of truth
    # the sender holds it as a receiver would: its receipt works
    await hub.abandon(sent, 0)
    (got,) = await hub.receive(queue, 32, 30)
    assert got.message_id == sent.message_id
    assert got.event["Name"] == "Act"


async def test_send_activity_hidden_sender_can_delete_it() -> None:
    hub = new_hub()
    sent = await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0),
                                   hidden_for=300)
    await hub.delete_message(sent)
    assert hub.queues[hub.workitems_queue] == []


async def test_an_event_that_is_not_json_cannot_be_sent() -> None:
    hub = new_hub()
    with pytest.raises(TypeError):
        await hub.send_to_instance("i1", "x1", {"EventType": 4, "Input": object()})


# --- history --------------------------------------------------------------------------


async def test_a_new_history_has_no_etag() -> None:
    hub = new_hub()
    snapshot = await hub.load_history("nobody")
    assert (snapshot.events, snapshot.etag, snapshot.execution_id) == ([], None, None)


async def test_append_and_load_history_with_etags() -> None:
    hub = new_hub()
    first = started_history("x1")
    etag1 = await hub.append_history("i1", "x1", 0, first, None)
    snapshot = await hub.load_history("i1")
    assert snapshot.events == first
    assert (snapshot.etag, snapshot.execution_id) == (etag1, "x1")

    more = [history.orchestrator_started(at(1)), history.event_raised("e", "1", at(1)),
            history.orchestrator_completed(at(1))]
    etag2 = await hub.append_history("i1", "x1", len(first), more, etag1)
    assert etag2 != etag1
    snapshot = await hub.load_history("i1")
    assert snapshot.events == first + more
    assert snapshot.etag == etag2


async def test_a_stale_etag_is_a_checkpoint_conflict() -> None:
    hub = new_hub()
    etag1 = await hub.append_history("i1", "x1", 0, started_history("x1"), None)
    await hub.append_history("i1", "x1", 3, [history.orchestrator_started(at(1))], etag1)
    with pytest.raises(CheckpointConflict) as caught:
        await hub.append_history("i1", "x1", 3, [history.orchestrator_started(at(2))], etag1)
    assert caught.value.instance_id == "i1"
    assert str(caught.value) == "History of 'i1' changed under this checkpoint."
    # the losing write changed nothing
    snapshot = await hub.load_history("i1")
    assert snapshot.events[3]["Timestamp"] == history.format_timestamp(at(1))


async def test_a_second_new_history_conflicts_with_the_first() -> None:
    hub = new_hub()
    await hub.append_history("i1", "x1", 0, started_history("x1"), None)
    with pytest.raises(CheckpointConflict):
        await hub.append_history("i1", "x2", 0, started_history("x2"), None)


async def test_an_etag_for_a_history_that_does_not_exist_conflicts() -> None:
    hub = new_hub()
    with pytest.raises(CheckpointConflict):
        await hub.append_history("ghost", "x1", 0, started_history("x1"), "1")


async def test_a_new_execution_hides_the_rows_of_the_older_one() -> None:
    hub = new_hub()
    old = started_history("x1", n_tasks=4)  # 7 events
    etag = await hub.append_history("i1", "x1", 0, old, None)
    new = started_history("x2")  # 3 events at indexes 0..2, rows 3..6 still hold x1's
    etag = await hub.append_history("i1", "x2", 0, new, etag)
    snapshot = await hub.load_history("i1")
    assert snapshot.execution_id == "x2"
    assert snapshot.events == new
    assert snapshot.etag == etag


async def test_large_history_values_round_trip() -> None:
    hub = new_hub()
    big = '"' + "x" * 100_000 + '"'
    events = [history.orchestrator_started(T0),
              history.execution_started("i1", "x1", "Orch", big, T0)]
    await hub.append_history("i1", "x1", 0, events, None)
    assert hub.blobs  # offloaded as the Azure hub would
    snapshot = await hub.load_history("i1")
    assert snapshot.events[1]["Input"] == big
    assert await hub.purge_instance("i1")
    assert hub.blobs == {}


# --- instances ------------------------------------------------------------------------


async def test_insert_and_read_an_instance() -> None:
    hub = new_hub()
    assert await hub.read_instance("i1") is None
    await hub.insert_instance("i1", instance_fields("Pending"))
    row = await hub.read_instance("i1")
    assert row is not None
    assert row["InstanceId"] == "i1"
    assert row["RuntimeStatus"] == "Pending"
    assert row["CreatedTime"] == T0
    assert row["Input"] == '"in"'
    assert row["Output"] is None
    assert isinstance(row["etag"], str)


async def test_inserting_a_taken_instance_raises_instance_exists_with_its_status() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields("Running", execution_id="x1"))
    with pytest.raises(InstanceExists) as caught:
        await hub.insert_instance("i1", instance_fields("Pending", execution_id="x2"))
    assert caught.value.status == "Running"
    assert str(caught.value) == \
        "An Orchestration instance with the status Running already exists."
    # the very same row again (a retried insert) is fine
    await hub.insert_instance("i1", instance_fields("Pending", execution_id="x1"))
    row = await hub.read_instance("i1")
    assert row is not None and row["RuntimeStatus"] == "Running"


async def test_replace_with_the_read_etag_replaces_the_row() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields("Completed", execution_id="x1",
                                                    Output='"done"'))
    row = await hub.read_instance("i1")
    assert row is not None
    await hub.replace_instance("i1", instance_fields("Pending", execution_id="x2"),
                               row["etag"])
    replaced = await hub.read_instance("i1")
    assert replaced is not None
    assert (replaced["RuntimeStatus"], replaced["ExecutionId"]) == ("Pending", "x2")
    assert replaced["Output"] is None  # a replace drops old columns
    assert replaced["etag"] != row["etag"]


async def test_replace_with_a_stale_etag_raises_instance_exists() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields("Completed", execution_id="x1"))
    row = await hub.read_instance("i1")
    assert row is not None
    await hub.merge_instance("i1", {"RuntimeStatus": "Running", "ExecutionId": "x9"})
    with pytest.raises(InstanceExists) as caught:
        await hub.replace_instance("i1", instance_fields("Pending", execution_id="x2"),
                                   row["etag"])
    assert caught.value.status == "Running"


async def test_merge_updates_given_columns_and_none_keeps_the_old_value() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields("Running"))
    await hub.merge_instance("i1", {"RuntimeStatus": "Completed", "Output": '"out"',
                                    "Input": None, "CompletedTime": at(5)})
    row = await hub.read_instance("i1")
    assert row is not None
    assert row["RuntimeStatus"] == "Completed"
    assert row["Output"] == '"out"'
    assert row["Input"] == '"in"'
    assert row["CompletedTime"] == at(5)
    assert row["Name"] == "Orch"


async def test_merge_creates_a_missing_row() -> None:
    hub = new_hub()
    await hub.merge_instance("i1", {"RuntimeStatus": "Completed", "Name": "Orch"})
    row = await hub.read_instance("i1")
    assert row is not None
    assert (row["InstanceId"], row["RuntimeStatus"], row["Name"]) == (
        "i1", "Completed", "Orch")


async def test_a_large_value_then_a_small_one_reads_back_the_small_one() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields("Running"))
    big = '"' + "y" * 100_000 + '"'
    await hub.merge_instance("i1", {"Output": big})
    row = await hub.read_instance("i1")
    assert row is not None and row["Output"] == big
    await hub.merge_instance("i1", {"Output": '"small"'})
    row = await hub.read_instance("i1")
    assert row is not None and row["Output"] == '"small"'


async def test_instance_ids_with_key_characters_round_trip() -> None:
    hub = new_hub()
    odd = "a/b\\c#d?e^f"
    await hub.insert_instance(odd, instance_fields("Running"))
    row = await hub.read_instance(odd)
    assert row is not None and row["InstanceId"] == odd
    rows, _ = await hub.query_instances(prefix="a/b")
    assert [r["InstanceId"] for r in rows] == [odd]


async def test_delete_instance_row() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields())
    await hub.delete_instance_row("i1")
    await hub.delete_instance_row("i1")
    assert await hub.read_instance("i1") is None


async def seeded() -> MemoryTaskHub:
    hub = new_hub()
    for n, status in enumerate(["Running", "Completed", "Failed", "Completed", "Pending"]):
        await hub.insert_instance(f"order-{n}", instance_fields(status, created=at(n * 60)))
    await hub.insert_instance("other-0", instance_fields("Completed", created=at(600)))
    return hub


async def ids(hub: MemoryTaskHub, **query: Any) -> list[str]:
    rows, token = await hub.query_instances(**query)
    assert token is None
    return [r["InstanceId"] for r in rows]


async def test_query_without_filters_returns_every_instance_in_key_order() -> None:
    hub = await seeded()
    assert await ids(hub) == [f"order-{n}" for n in range(5)] + ["other-0"]


async def test_query_filters_by_status_created_range_and_prefix() -> None:
    hub = await seeded()
    assert await ids(hub, statuses=["Completed"]) == ["order-1", "order-3", "other-0"]
    assert await ids(hub, statuses={"Failed", "Pending"}) == ["order-2", "order-4"]
    assert await ids(hub, statuses=[]) == await ids(hub)
    assert await ids(hub, created_from=at(120)) == ["order-2", "order-3", "order-4",
                                                    "other-0"]
    assert await ids(hub, created_to=at(60)) == ["order-0", "order-1"]
    assert await ids(hub, created_from=at(60), created_to=at(180)) == [
        "order-1", "order-2", "order-3"]
    assert await ids(hub, prefix="order-") == [f"order-{n}" for n in range(5)]
    assert await ids(hub, prefix="oth") == ["other-0"]
    assert await ids(hub, prefix="nothing") == []
    assert await ids(hub, prefix="order-", statuses=["Completed"],
                     created_from=at(100)) == ["order-3"]


async def test_query_pages_with_top_and_continuation_tokens() -> None:
    hub = await seeded()
    seen: list[str] = []
    tokens: list[str | None] = []
    token: str | None = None
    while True:
        rows, token = await hub.query_instances(top=2, continuation=token)
        seen += [r["InstanceId"] for r in rows]
        tokens.append(token)
        if token is None:
            break
    assert seen == await ids(hub)
    assert len(tokens) == 3 and tokens[-1] is None
    rows, token = await hub.query_instances(top=10)
    assert len(rows) == 6 and token is None


@pytest.mark.parametrize("token", ["garbage!", base64.urlsafe_b64encode(b"row:5").decode(),
                                   base64.urlsafe_b64encode(b"offset:x").decode()])
async def test_an_invalid_continuation_token_is_an_invalid_argument(token: str) -> None:
    hub = await seeded()
    with pytest.raises(InvalidArgument, match="The continuation token is not valid."):
        await hub.query_instances(top=2, continuation=token)


async def test_paging_while_deleting_the_rows_seen_visits_every_row() -> None:
    """A continuation token names where the next page starts, as an Azure table's
    next-partition-key token does: deleting the rows already returned (as purge by
    filter does) must not skip rows that were not returned yet."""
    hub = new_hub()
    for n in range(6):
        await hub.insert_instance(f"i{n}", instance_fields("Completed"))
    visited: list[str] = []
    token: str | None = None
    while True:
        rows, token = await hub.query_instances(top=2, continuation=token)
        for row in rows:
            visited.append(row["InstanceId"])
            await hub.purge_instance(row["InstanceId"])
        if token is None:
            break
    assert visited == [f"i{n}" for n in range(6)]


async def test_purge_instance_removes_history_and_row_and_says_whether_it_found_any() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields())
    await hub.append_history("i1", "x1", 0, started_history("x1"), None)
    await hub.append_history("only-history", "x1", 0, started_history("x1"), None)
    assert await hub.purge_instance("i1") is True
    assert await hub.read_instance("i1") is None
    assert (await hub.load_history("i1")).events == []
    assert await hub.purge_instance("i1") is False
    assert await hub.purge_instance("never") is False
    assert await hub.purge_instance("only-history") is True
    # a purged id starts afresh
    await hub.append_history("i1", "x2", 0, started_history("x2"), None)


async def test_delete_task_hub_empties_everything() -> None:
    hub = new_hub()
    await hub.insert_instance("i1", instance_fields())
    await hub.append_history("i1", "x1", 0, started_history("x1"), None)
    await hub.send_to_instance("i1", "x1", raised())
    await hub.delete_task_hub()
    await hub.create_if_missing()
    assert await hub.read_instance("i1") is None
    assert (await hub.load_history("i1")).etag is None
    assert all(hub.visible(q) == [] for q in hub.names.all_queues)


async def test_a_completed_execution_row_reads_back_its_terminal_fields() -> None:
    hub = new_hub()
    events = started_history("x1")[:-1] + [
        history.execution_completed(OrchestrationStatus.Completed, '"r"', at(1)),
        history.orchestrator_completed(at(1))]
    await hub.append_history("i1", "x1", 0, events, None)
    snapshot = await hub.load_history("i1")
    assert snapshot.events[2]["OrchestrationStatus"] == OrchestrationStatus.Completed
    assert snapshot.events[2]["Result"] == '"r"'


def test_queue_message_properties() -> None:
    body = {"TaskMessage": {"Event": {"EventType": 4},
                            "OrchestrationInstance": {"InstanceId": "i", "ExecutionId": None}},
            "SequenceNumber": None}
    msg = QueueMessage("q", "m", "r", 1, T0, body)
    assert (msg.instance_id, msg.execution_id, msg.sequence_number) == ("i", None, 0)
    assert msg.event == {"EventType": 4}


async def test_peek_looks_without_taking() -> None:
    hub = new_hub()
    await hub.create_if_missing()
    await hub.send_to_instance("i1", None, raised())
    queue = hub.control_queue(hub.partition_of("i1"))
    [seen] = await hub.peek(queue)
    assert seen.instance_id == "i1" and seen.dequeue_count == 0 and seen.pop_receipt == ""
    [held] = await hub.receive(queue, 32, 30)
    assert held.message_id == seen.message_id and held.dequeue_count == 1
    assert await hub.peek(queue) == []
    assert await hub.queue_length(queue) == 1
