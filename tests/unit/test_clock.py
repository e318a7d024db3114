"""runtime/clock.py: the virtual clock's time skipping and the system clock's real delays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest

from runtime.clock import SystemClock, VirtualClock, utc

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- VirtualClock: time ---------------------------------------------------------------


async def test_virtual_time_stays_put_until_advanced() -> None:
    clock = VirtualClock(T0)
    assert clock.now() == T0
    await asyncio.sleep(0.01)  # real time passes; durable time does not
    assert clock.now() == T0
    assert clock.is_virtual
    await clock.advance(timedelta(hours=72))
    assert clock.now() == at(72 * 3600)
    await clock.advance_to(at(72 * 3600 + 1))
    assert clock.now() == at(72 * 3600 + 1)


def test_a_naive_start_is_taken_as_utc() -> None:
    clock = VirtualClock(datetime(2024, 1, 2, 3, 4, 5))
    assert clock.now() == T0
    assert clock.now().tzinfo is not None


def test_the_default_start_is_about_now() -> None:
    before = datetime.now(timezone.utc)
    now = VirtualClock().now()
    assert before <= now <= datetime.now(timezone.utc)


def test_process_time_stays_real() -> None:
    clock = VirtualClock(T0)
    first = clock.monotonic()
    assert abs(first - time.monotonic()) < 1.0
    assert clock.monotonic() >= first


# --- VirtualClock: callbacks ----------------------------------------------------------


async def test_advance_runs_due_callbacks_in_fire_at_order_ties_in_scheduling_order() -> None:
    clock = VirtualClock(T0)
    ran: list[tuple[str, datetime]] = []

    def record(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, clock.now()))

    clock.call_at(at(30), record("c"))
    clock.call_at(at(10), record("a1"))
    clock.call_at(at(20), record("b"))
    clock.call_at(at(10), record("a2"))
    clock.call_at(at(40), record("later"))

    await clock.advance(timedelta(seconds=30))

    # each callback sees durable time at its own fire time
    assert ran == [("a1", at(10)), ("a2", at(10)), ("b", at(20)), ("c", at(30))]
    assert clock.now() == at(30)
    assert clock.next_due() == at(40)


async def test_async_callbacks_are_awaited_one_after_the_other() -> None:
    clock = VirtualClock(T0)
    trace: list[str] = []

    def slow(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            trace.append(f"{name} start")
            for _ in range(3):
                await asyncio.sleep(0)
            trace.append(f"{name} end")
        return run

    clock.call_at(at(1), slow("first"))
    clock.call_at(at(1), slow("second"))
    clock.call_at(at(2), lambda: trace.append("sync"))

    await clock.advance_to(at(5))

    assert trace == ["first start", "first end", "second start", "second end", "sync"]


async def test_a_callback_scheduled_during_advance_runs_when_due_by_the_target() -> None:
    clock = VirtualClock(T0)
    ran: list[tuple[str, datetime]] = []

    def first() -> None:
        ran.append(("first", clock.now()))
        clock.call_at(at(15), lambda: ran.append(("chained", clock.now())))
        clock.call_at(at(100), lambda: ran.append(("too late", clock.now())))

    clock.call_at(at(10), first)
    clock.call_at(at(20), lambda: ran.append(("second", clock.now())))

    await clock.advance_to(at(50))

    assert ran == [("first", at(10)), ("chained", at(15)), ("second", at(20))]
    assert clock.next_due() == at(100)


async def test_a_callback_scheduled_in_the_past_runs_at_the_next_advance() -> None:
    clock = VirtualClock(T0)
    ran: list[datetime] = []
    clock.call_at(at(-60), lambda: ran.append(clock.now()))
    assert clock.next_due() == at(-60)
    await clock.advance(timedelta(0))
    assert ran == [T0]  # durable time does not go back to run it
    assert clock.now() == T0


async def test_cancelled_callbacks_do_not_run() -> None:
    clock = VirtualClock(T0)
    ran: list[str] = []
    first = clock.call_at(at(1), lambda: ran.append("first"))
    clock.call_at(at(2), lambda: ran.append("second"))
    third = clock.call_at(at(3), lambda: ran.append("third"))
    first.cancel()
    third.cancel()
    assert clock.next_due() == at(2)  # the cancelled earliest one is skipped
    await clock.advance_to(at(10))
    assert ran == ["second"]
    assert clock.next_due() is None


async def test_cancel_after_running_is_harmless() -> None:
    clock = VirtualClock(T0)
    ran: list[str] = []
    handle = clock.call_at(at(1), lambda: ran.append("x"))
    await clock.advance_to(at(1))
    handle.cancel()
    await clock.advance_to(at(2))
    assert ran == ["x"]


def test_next_due_is_none_without_callbacks() -> None:
    assert VirtualClock(T0).next_due() is None


def test_call_at_accepts_a_naive_datetime_as_utc() -> None:
    clock = VirtualClock(T0)
    clock.call_at(datetime(2024, 1, 2, 4, 0, 0), lambda: None)
    assert clock.next_due() == datetime(2024, 1, 2, 4, 0, 0, tzinfo=timezone.utc)


async def test_advance_with_a_negative_delta_raises_and_changes_nothing() -> None:
    clock = VirtualClock(T0)
    ran: list[str] = []
    clock.call_at(at(-5), lambda: ran.append("due"))
    with pytest.raises(ValueError, match="time cannot move backwards"):
        await clock.advance(timedelta(seconds=-1))
    assert clock.now() == T0
    assert ran == []


async def test_advance_to_an_earlier_time_only_runs_what_is_already_due() -> None:
    clock = VirtualClock(T0)
    ran: list[str] = []
    clock.call_at(at(-30), lambda: ran.append("past"))
    clock.call_at(at(30), lambda: ran.append("future"))
    await clock.advance_to(at(-3600))
    assert ran == ["past"]
    assert clock.now() == T0
    assert clock.next_due() == at(30)


async def test_on_advance_listeners_get_the_new_time() -> None:
    clock = VirtualClock(T0)
    seen: list[datetime] = []
    also: list[datetime] = []
    clock.on_advance(seen.append)
    clock.on_advance(also.append)
    await clock.advance(timedelta(minutes=1))
    await clock.advance_to(at(3600))
    await clock.advance_to(at(0))  # backwards: time stays, listeners still told
    assert seen == [at(60), at(3600), at(3600)]
    assert also == seen


async def test_listeners_run_after_the_due_callbacks() -> None:
    clock = VirtualClock(T0)
    trace: list[str] = []
    clock.call_at(at(1), lambda: trace.append("callback"))
    clock.on_advance(lambda now: trace.append(f"listener {now == at(5)}"))
    await clock.advance_to(at(5))
    assert trace == ["callback", "listener True"]


def test_virtual_real_delay_is_zero_for_the_past_and_none_for_the_future() -> None:
    clock = VirtualClock(T0)
    assert clock.real_delay(at(-1)) == 0.0
    assert clock.real_delay(T0) == 0.0
    assert clock.real_delay(at(1)) is None


# --- SystemClock ----------------------------------------------------------------------


def test_system_clock_now_is_aware_utc_wall_time() -> None:
    clock = SystemClock()
    before = datetime.now(timezone.utc)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(timezone.utc)
    assert not clock.is_virtual


def test_system_real_delay_counts_seconds_to_the_future_and_zero_for_the_past() -> None:
    clock = SystemClock()
    delay = clock.real_delay(clock.now() + timedelta(seconds=10))
    assert delay is not None and 9.0 < delay <= 10.0
    assert clock.real_delay(clock.now() - timedelta(hours=1)) == 0.0
    naive_past = datetime(2000, 1, 1)
    assert clock.real_delay(naive_past) == 0.0


async def test_system_call_at_runs_the_callback_after_the_real_delay() -> None:
    clock = SystemClock()
    fired = asyncio.Event()
    started = time.monotonic()
    clock.call_at(clock.now() + timedelta(seconds=0.05), fired.set)
    assert not fired.is_set()
    await asyncio.wait_for(fired.wait(), timeout=2.0)
    assert time.monotonic() - started >= 0.04


async def test_system_call_at_runs_an_async_callback() -> None:
    clock = SystemClock()
    done = asyncio.Event()

    async def callback() -> None:
        await asyncio.sleep(0)
        done.set()

    clock.call_at(clock.now() + timedelta(seconds=0.05), callback)
    await asyncio.wait_for(done.wait(), timeout=2.0)


async def test_system_call_at_in_the_past_runs_soon() -> None:
    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_at(clock.now() - timedelta(days=1), fired.set)
    await asyncio.wait_for(fired.wait(), timeout=1.0)


async def test_a_cancelled_system_timer_does_not_run() -> None:
    clock = SystemClock()
    cancelled = asyncio.Event()
    control = asyncio.Event()
    handle = clock.call_at(clock.now() + timedelta(seconds=0.02), cancelled.set)
    handle.cancel()
    clock.call_at(clock.now() + timedelta(seconds=0.06), control.set)
    await asyncio.wait_for(control.wait(), timeout=2.0)
    assert not cancelled.is_set()


async def test_clock_sleep_waits_process_time_and_accepts_negative() -> None:
    clock = VirtualClock(T0)
    started = time.monotonic()
    await clock.sleep(-5)
    await clock.sleep(0.02)
    assert time.monotonic() - started >= 0.015
    assert clock.now() == T0


def test_utc_converts_other_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert utc(datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two)) == T0
    assert utc(datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two)).tzinfo == timezone.utc
