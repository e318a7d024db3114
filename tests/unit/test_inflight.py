"""runtime/durable/inflight.py: the history cache, ordered background writes, and activity
work items kept locked against the in-memory task hub."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from runtime.clock import SystemClock
from runtime.durable import history
from runtime.durable.inflight import (
    HISTORY_CACHE_EVENTS,
    HISTORY_CACHE_INSTANCES,
    HistoryCache,
    OrderedWrites,
    WorkItems,
)
from runtime.durable.taskhub import HistorySnapshot, QueueMessage
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.errors import StorageError

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
EVENT: dict[str, Any] = history.orchestrator_started(T0)


def snapshot(n_events: int, etag: str = "1") -> HistorySnapshot:
    return HistorySnapshot(events=[EVENT] * n_events, etag=etag, execution_id="x")


# --- HistoryCache ---------------------------------------------------------------------


def test_the_cache_returns_what_was_put_and_counts_events() -> None:
    cache = HistoryCache()
    assert cache.get("a") is None
    cache.put("a", snapshot(3))
    cache.put("b", snapshot(4))
    assert cache.get("a") == snapshot(3)
    assert cache.events == 7
    cache.put("a", snapshot(5, etag="2"))  # replaced, counted once
    assert cache.get("a") == snapshot(5, etag="2")
    assert cache.events == 9
    cache.drop("a")
    cache.drop("a")
    assert cache.get("a") is None
    assert cache.events == 4


def test_the_cache_keeps_at_most_its_instance_limit_evicting_the_least_recent() -> None:
    cache = HistoryCache()
    for n in range(HISTORY_CACHE_INSTANCES):
        cache.put(f"i{n}", snapshot(1))
    assert cache.get("i0") is not None  # now the most recently used
    cache.put("new", snapshot(1))
    assert len(cache.entries) == HISTORY_CACHE_INSTANCES
    assert cache.get("i1") is None  # the least recently used went
    assert cache.get("i0") is not None
    assert cache.get("new") is not None
    assert cache.events == HISTORY_CACHE_INSTANCES


def test_the_cache_keeps_at_most_its_event_limit() -> None:
    cache = HistoryCache()
    half = HISTORY_CACHE_EVENTS // 2
    cache.put("a", snapshot(half))
    cache.put("b", snapshot(half))
    assert cache.events == HISTORY_CACHE_EVENTS
    cache.put("c", snapshot(1))
    assert cache.get("a") is None
    assert list(cache.entries) == ["b", "c"]
    assert cache.events == half + 1


def test_a_history_larger_than_the_whole_cache_is_not_kept() -> None:
    cache = HistoryCache()
    cache.put("small", snapshot(2))
    cache.put("huge", snapshot(HISTORY_CACHE_EVENTS + 1))
    assert cache.entries == {}
    assert cache.events == 0


def test_drop_where() -> None:
    cache = HistoryCache()
    for instance_id in ("p0:a", "p1:b", "p0:c"):
        cache.put(instance_id, snapshot(2))
    cache.drop_where(lambda instance_id: instance_id.startswith("p0:"))
    assert list(cache.entries) == ["p1:b"]
    assert cache.events == 2
    cache.drop_where(lambda instance_id: False)
    assert list(cache.entries) == ["p1:b"]


# --- OrderedWrites --------------------------------------------------------------------


async def test_writes_for_one_instance_run_in_order_even_when_the_first_is_slow() -> None:
    writes = OrderedWrites(asyncio.ensure_future)
    done: list[str] = []
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()
        done.append("row")

    async def quick() -> None:
        done.append("delete")

    writes.submit("i1", slow)
    writes.submit("i1", quick)
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == []  # the second waits for the first
    release.set()
    await writes.drain()
    assert done == ["row", "delete"]
    assert writes.tails == {}


async def test_writes_for_different_instances_do_not_wait_for_each_other() -> None:
    writes = OrderedWrites(asyncio.ensure_future)
    done: list[str] = []
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()
        done.append("a")

    async def free() -> None:
        done.append("b")

    writes.submit("a", blocked)
    writes.submit("b", free)
    await asyncio.wait_for(writes.tails["b"], 1.0)
    assert done == ["b"]
    release.set()
    await writes.drain()
    assert done == ["b", "a"]


async def test_a_failing_write_does_not_stop_the_next() -> None:
    writes = OrderedWrites(asyncio.ensure_future)
    done: list[str] = []

    async def fails() -> None:
        done.append("tried")
        raise StorageError("Azure Storage did not complete the Instances merge")

    async def after() -> None:
        done.append("after")

    writes.submit("i1", fails)
    writes.submit("i1", after)
    writes.submit("i1", after)
    await writes.drain()
    assert done == ["tried", "after", "after"]
    assert writes.tails == {}


async def test_drain_with_nothing_submitted() -> None:
    await OrderedWrites(asyncio.ensure_future).drain()


# --- WorkItems ------------------------------------------------------------------------


def new_hub() -> MemoryTaskHub:
    return MemoryTaskHub("t" + uuid.uuid4().hex[:12], 2, clock=SystemClock())


async def held_activity(hub: MemoryTaskHub, hidden_for: float) -> QueueMessage:
    return await hub.send_activity("i1", "x1", history.task_scheduled(0, "Act", None, T0),
                                   hidden_for=hidden_for)


def hidden_for(hub: MemoryTaskHub, message: QueueMessage) -> float:
    (stored,) = [m for m in hub.queues[message.queue] if m.message_id == message.message_id]
    return stored.hidden_until - time.monotonic()


async def test_a_lock_with_more_than_half_left_is_not_renewed() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 10.0)
    items.hold(message, 10.0)
    await items.renew_expiring()
    assert items.current(message) == message
    assert items.current(message).pop_receipt == message.pop_receipt


async def test_a_lock_with_less_than_half_left_is_renewed_for_a_whole_lock() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 3.0)
    items.hold(message, 3.0)
    assert hidden_for(hub, message) < 3.1
    await items.renew_expiring()
    renewed = items.current(message)
    assert renewed.message_id == message.message_id
    assert renewed.pop_receipt != message.pop_receipt
    assert 9.0 < hidden_for(hub, message) <= 10.0
    # renewed for a whole lock: the next round leaves it alone
    await items.renew_expiring()
    assert items.current(message).pop_receipt == renewed.pop_receipt
    assert hub.visible(hub.workitems_queue) == []


async def test_delete_uses_the_latest_receipt() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 1.0)
    items.hold(message, 1.0)
    await items.renew_expiring()
    assert items.current(message).pop_receipt != message.pop_receipt
    await items.delete(message)  # the caller's copy has the old receipt
    assert hub.queues[hub.workitems_queue] == []
    assert items.held == {}
    assert items.current(message) == message


async def test_release_makes_the_work_item_visible_again() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 1.0)
    items.hold(message, 1.0)
    await items.renew_expiring()
    await items.release(message, 0)
    assert items.held == {}
    (again,) = await hub.receive(hub.workitems_queue, 1, 30)
    assert again.message_id == message.message_id


async def test_release_with_a_delay_keeps_it_hidden() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 10.0)
    items.hold(message, 10.0)
    await items.release(message, 60)
    assert await hub.receive(hub.workitems_queue, 1, 30) == []


async def test_release_id_releases_a_held_item_and_ignores_unknown_ids() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    message = await held_activity(hub, 10.0)
    items.hold(message, 10.0)
    await items.release_id("unknown", 0)
    assert message.message_id in items.held
    await items.release_id(message.message_id, 0)
    assert items.held == {}
    assert len(await hub.receive(hub.workitems_queue, 1, 30)) == 1


async def test_a_received_work_item_can_be_held_and_renewed() -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=10.0, clock=SystemClock())
    await held_activity(hub, 0.0)
    (received,) = await hub.receive(hub.workitems_queue, 1, 2.0)
    items.hold(received, 2.0)
    await items.renew_expiring()
    assert hidden_for(hub, received) > 9.0
    await items.delete(received)
    assert hub.queues[hub.workitems_queue] == []


@pytest.mark.parametrize("lock", [4.0, 10.0])
async def test_renewal_threshold_is_half_the_lock(lock: float) -> None:
    hub = new_hub()
    items = WorkItems(hub, lock=lock, clock=SystemClock())
    keep = await held_activity(hub, lock / 2 + 1.0)
    renew = await held_activity(hub, lock / 2 - 1.0)
    items.hold(keep, lock / 2 + 1.0)
    items.hold(renew, lock / 2 - 1.0)
    await items.renew_expiring()
    assert items.current(keep).pop_receipt == keep.pop_receipt
    assert items.current(renew).pop_receipt != renew.pop_receipt


def test_worker_exits_are_charged_only_to_what_ran_alone() -> None:
    from runtime.durable.inflight import WorkerExits
    from runtime.errors import WorkerDied, WorkerError
    exits = WorkerExits(limit=2)
    shared = WorkerDied(1, 1, others=2)
    alone = WorkerDied(1, 1)
    recycled = WorkerDied(1, -9, recycled=True)
    # Cut off beside others, or by the host: not charged, but the next run is alone.
    assert exits.interrupted("a", shared) is None and exits.alone("a")
    assert exits.interrupted("a", recycled) is None
    assert exits.interrupted("a", WorkerError("no worker")) is None
    assert exits.charged == {}
    # Alone: charged; at the limit the caller fails it, and it is forgotten.
    assert exits.interrupted("a", alone) is None
    assert exits.interrupted("a", alone) == 2
    assert not exits.alone("a") and exits.charged == {}
    # An answer clears what was charged.
    assert exits.interrupted("b", alone) is None
    exits.done("b")
    assert exits.interrupted("b", alone) is None and exits.charged == {"b": 1}
    assert WorkerExits.verdict(3, "It") == (
        "It made its worker process exit 3 times, each time running alone in it, so it "
        "is not run again.")


@pytest.mark.parametrize(("configured", "lock"), [(300.0, 15.0), (10.0, 10.0), (1.0, 5.0)])
def test_the_control_message_lock_is_short_but_renewable(configured: float,
                                                         lock: float) -> None:
    """Locks are renewed on the 2.5 s lease loop: a lock shorter than two of its turns
    would run out before its renewal (host.json controlQueueVisibilityTimeout)."""
    from runtime.config import DurableTaskConfig
    from runtime.durable.orchestrations import control_lock

    assert control_lock(DurableTaskConfig(control_queue_visibility_timeout=configured)) == lock
