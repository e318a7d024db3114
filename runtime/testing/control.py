"""Time and waiting in a test environment (run in the hosts' loop, on a `TestHost`).

Durable time is virtual: it moves only when the test moves it (`fast_forward`), or by
itself while a wait is waiting and the host is idle with every running instance
waiting only on timers (auto time skipping). Either way it moves one timer at a time:
to the earliest due timer, then the host runs what that timer wakes until it is idle
again, then to the next. So timers fire in order, an orchestration's
`current_utc_datetime` is its timer's due time when it resumes, and timers created
while time moves (a monitor's next check, a retry) fire in their turn. This is how
Temporal's time-skipping test server moves time.

A wait looks at the condition before each step of time, on an idle host, so it returns
at the first moment the condition holds, whatever comes after it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from runtime.clock import VirtualClock
from runtime.errors import HarnessError, WaitTimeout
from runtime.testing.history import format_history, pending_timers, typed
from runtime.testing.hosting import TestHost

TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
POLL = 0.02  # the longest a waiter sleeps before looking again without being woken
QUICK = 0.002  # the same while the dispatcher is busy: its work may end without a write
IDLE_POLL = 0.25  # the same, while the host is idle and time cannot skip

Status = dict[str, Any]


async def wait_for_change(host: TestHost, generation: int, seconds: float) -> None:
    """Return once the host's storage or invocations changed since `generation`, or after
    `seconds`."""
    hub = host.hub
    deadline = time.monotonic() + seconds
    while hub.generation == generation:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        hub.changed.clear()
        if hub.generation != generation:
            return
        try:
            await asyncio.wait_for(hub.changed.wait(), remaining)
        except asyncio.TimeoutError:
            pass


async def settle(host: TestHost, timeout: float) -> None:
    """Wait until the host is idle (see `TestHost.busy`); WaitTimeout after `timeout`
    seconds, saying what kept it busy."""
    deadline = time.monotonic() + timeout
    while True:
        generation = host.hub.generation
        reasons = await host.busy()
        if not reasons:
            return
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"The environment was still busy after {timeout:g} s: "
                              + "; ".join(reasons) + ".")
        await wait_for_change(host, generation, QUICK if host.services_busy() else POLL)


def virtual_clock(host: TestHost) -> VirtualClock:
    clock = host.clock
    if not isinstance(clock, VirtualClock):
        raise HarnessError("This environment runs on the real clock (virtual_time=False): "
                           "durable time cannot be moved.")
    return clock


async def step_to(host: TestHost, when: datetime) -> None:
    """Move durable time to `when`, firing what is due by then."""
    await virtual_clock(host).advance_to(when)


async def fast_forward(host: TestHost, delta: timedelta, timeout: float) -> datetime:
    """Let the host settle, then move durable time forward by `delta`, one due timer at a
    time, settling after each. Returns the new durable time."""
    if delta < timedelta(0):
        raise HarnessError(f"Time cannot move backwards ({delta}).")
    clock = virtual_clock(host)
    target = clock.now() + delta
    await settle(host, timeout)
    while True:
        due = host.next_timer()
        if due is None or due > target:
            break
        await clock.advance_to(due)
        await settle(host, timeout)
    await clock.advance_to(target)
    return clock.now()


async def status_of(host: TestHost, instance_id: str) -> Status | None:
    assert host.reader is not None
    return await host.reader.get_status(instance_id)


async def wait_for(host: TestHost, instance_id: str, accept: Callable[[Status | None], bool],
                   wanted: str, *, timeout: float, auto_skip: bool) -> Status:
    """The instance's status once `accept` takes it; meanwhile, with `auto_skip`, time
    skips to the next timer whenever the host is idle and no running instance waits
    for an external event. WaitTimeout (with the instance's story) after `timeout`
    seconds."""
    deadline = time.monotonic() + timeout
    skipping = auto_skip and isinstance(host.clock, VirtualClock)
    read_at: int | None = None
    status: Status | None = None
    while True:
        generation = host.hub.generation
        if generation != read_at:  # a status changes only by a write through the hub
            status, read_at = await status_of(host, instance_id), generation
        if accept(status):
            assert status is not None
            return status
        if time.monotonic() >= deadline:
            raise WaitTimeout(await explain(host, instance_id, status, wanted, timeout,
                                            auto_skip=skipping))
        pause = QUICK if host.services_busy() else POLL
        if skipping and pause == POLL and not await host.busy():
            due = host.next_timer()
            if due is not None and not host.waiting_for_events():
                # The condition was read before the idle check: read it again on the
                # idle host, so time never skips past a moment it held.
                status = await status_of(host, instance_id)
                if accept(status):
                    assert status is not None
                    return status
                await step_to(host, due)
                continue
            # Idle, and time cannot move by itself: only the test (or a function it
            # called) can change anything now, and every change wakes this wait.
            pause = IDLE_POLL
        await wait_for_change(host, generation, min(pause, max(0.0, deadline - time.monotonic())))


async def explain(host: TestHost, instance_id: str, status: Status | None, wanted: str,
                  timeout: float, *, auto_skip: bool) -> str:
    """Why a wait did not end: the instance's status, what it waits for, durable time,
    what the host is doing, and the instance's history."""
    if status is None:
        return (f"Waited {timeout:g} s for instance '{instance_id}' to {wanted}, but task "
                f"hub {host.hub_name} has no such instance.")
    lines = [f"Waited {timeout:g} s for instance '{instance_id}' ({status.get('name')}) to "
             f"{wanted}; it is {status.get('runtimeStatus')}."]
    if status.get("customStatus") is not None:
        lines.append(f"Custom status: {json.dumps(status['customStatus'], default=str)}")
    if status.get("output") is not None:
        lines.append(f"Output: {json.dumps(status['output'], default=str)}")
    assert host.reader is not None
    snapshot = await host.inner_hub.load_history(instance_id)
    events = typed(snapshot.events)
    timers = pending_timers(events)
    if isinstance(host.clock, VirtualClock):
        lines.append(f"Durable time (virtual) is {_time(host.clock.now())}.")
        waits = host.waiting_for_events()
        if waits.get(instance_id):
            lines.append(f"It waits for external event(s): {', '.join(waits[instance_id])}.")
        if timers:
            lines.append("Its timers are due at " + ", ".join(_time(t) for t in timers)
                         + ".")
        if not auto_skip:
            lines.append("Time skipping is off: move time with fast_forward().")
        elif waits:
            blocked = ", ".join(f"'{i}' waits for {', '.join(n)}" for i, n in waits.items())
            lines.append(f"Time does not skip by itself while an instance waits for an "
                         f"event ({blocked}): raise the event, or fast_forward().")
    busy = await host.busy()
    if busy:
        lines.append("The host is busy: " + "; ".join(busy) + ".")
    lines.append(f"History of '{instance_id}':")
    lines.append(format_history(events))
    return "\n".join(lines)


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


__all__ = ["TERMINAL", "explain", "fast_forward", "settle", "status_of", "step_to",
           "wait_for", "wait_for_change"]
