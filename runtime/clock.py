"""Time, as funclocal's durable runtime reads it: one seam for the wall clock.

Two kinds of time are used, and a clock gives both:
- *durable time* (`now`): what history timestamps, `current_utc_datetime`, timer fire
  times and instance rows record. A `VirtualClock` moves it only when told to, so tests
  can jump over a three-day timer.
- *process time* (`monotonic`, `sleep`): lock renewals, poll intervals, storage deadlines.
  It is always real; a virtual clock does not stop the host from polling storage.

A durable timer is "deliver this at fire-at": `call_at(when, callback)` runs `callback`
once durable time reaches `when`. On the `SystemClock` that is a real delay; on a
`VirtualClock` it happens inside `advance_to`, in fire-at order.

Everything in `runtime/durable/` reads time through a clock (a unit test keeps it so).
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

TimerCallback = Callable[[], "Awaitable[Any] | None"]


class TimerHandle(ABC):
    """A callback scheduled with `Clock.call_at`; `cancel()` stops it if not yet run."""

    @abstractmethod
    def cancel(self) -> None: ...


class Clock(ABC):
    """The time source of the durable runtime (see the module docstring)."""

    @abstractmethod
    def now(self) -> datetime:
        """Durable time: an aware UTC datetime."""

    def monotonic(self) -> float:
        """Process time in seconds, for deadlines and lock renewals (never virtual)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of process time."""
        await asyncio.sleep(max(0.0, seconds))

    @abstractmethod
    def real_delay(self, when: datetime) -> float | None:
        """The seconds of process time until durable time reaches `when` (0 when it has
        already), or None when no real delay can say it (virtual time: only
        `advance_to` moves it)."""

    @abstractmethod
    def call_at(self, when: datetime, callback: TimerCallback) -> TimerHandle:
        """Run `callback` (a function, or one returning an awaitable) once durable time
        reaches `when`; at once (soon) when it already has."""

    @property
    def is_virtual(self) -> bool:
        return False


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# --- the wall clock -------------------------------------------------------------------


class _LoopHandle(TimerHandle):
    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self.handle = handle

    def cancel(self) -> None:
        self.handle.cancel()


class SystemClock(Clock):
    """The wall clock: durable time is real UTC time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def real_delay(self, when: datetime) -> float | None:
        return max(0.0, (utc(when) - self.now()).total_seconds())

    def call_at(self, when: datetime, callback: TimerCallback) -> TimerHandle:
        loop = asyncio.get_running_loop()
        delay = self.real_delay(when) or 0.0
        return _LoopHandle(loop.call_later(delay, _run_callback, callback))


_RUNNING: set[asyncio.Future[Any]] = set()  # async callbacks, kept until they finish


def _run_callback(callback: TimerCallback) -> None:
    result = callback()
    if inspect.isawaitable(result):
        future = asyncio.ensure_future(result)
        _RUNNING.add(future)
        future.add_done_callback(_RUNNING.discard)


# --- a clock for tests ----------------------------------------------------------------


@dataclass(order=True)
class _Due:
    when: datetime
    sequence: int
    callback: TimerCallback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _VirtualHandle(TimerHandle):
    def __init__(self, due: _Due) -> None:
        self.due = due

    def cancel(self) -> None:
        self.due.cancelled = True


class VirtualClock(Clock):
    """Durable time that moves only when `advance_to`/`advance` is called; callbacks whose
    time has come run during that call, earliest first (ties in the order they were
    scheduled), each awaited before the next. Process time stays real.

    The shape follows Temporal's time-skipping test environment: tests jump to a time and
    every timer due by then fires, in order.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start is not None else datetime.now(timezone.utc)
        self._due: list[_Due] = []
        self._sequence = itertools.count()
        self._listeners: list[Callable[[datetime], None]] = []

    @property
    def is_virtual(self) -> bool:
        return True

    def now(self) -> datetime:
        return self._now

    def real_delay(self, when: datetime) -> float | None:
        return 0.0 if utc(when) <= self._now else None

    def call_at(self, when: datetime, callback: TimerCallback) -> TimerHandle:
        due = _Due(utc(when), next(self._sequence), callback)
        heapq.heappush(self._due, due)
        return _VirtualHandle(due)

    def next_due(self) -> datetime | None:
        """When the earliest pending callback is due, or None when none is pending."""
        while self._due and self._due[0].cancelled:
            heapq.heappop(self._due)
        return self._due[0].when if self._due else None

    def on_advance(self, listener: Callable[[datetime], None]) -> None:
        """Call `listener(new_now)` after every move of durable time (pollers use it to
        look at their queues again)."""
        self._listeners.append(listener)

    async def advance(self, delta: timedelta) -> None:
        """Move durable time forward by `delta` (ValueError if negative)."""
        if delta < timedelta(0):
            raise ValueError(f"time cannot move backwards ({delta})")
        await self.advance_to(self._now + delta)

    async def advance_to(self, when: datetime) -> None:
        """Move durable time to `when`, running every callback due by then in order; a
        callback due at or before `when` that is scheduled meanwhile runs too. Moving to
        an earlier time only runs what is already due."""
        target = max(utc(when), self._now)
        while True:
            due = self.next_due()
            if due is None or due > target:
                break
            entry = heapq.heappop(self._due)
            self._now = max(self._now, entry.when)
            result = entry.callback()
            if inspect.isawaitable(result):
                await result
        self._now = target
        for listener in list(self._listeners):
            listener(self._now)


__all__ = ["Clock", "SystemClock", "TimerHandle", "VirtualClock", "utc"]
