"""The activity worker: activity work items from the `h-workitems` queue, run in the
app's worker processes, their results handed to the orchestration they belong to.

Two ways in:
- `schedule`: an activity a checkpoint of this host is sending. When a slot is free it
  runs at once, while its work item is written hidden (as if received); the queued copy
  is the source of truth should this host crash before the result is recorded;
- the poll loop: work items sent by other hosts, or by this one when no slot was free.

Two ways out, both at least once:
- the result goes straight into the orchestration's session when this host owns the
  instance's partition (`ResultSink.accept_local`); the work item is deleted only after
  the checkpoint that records it;
- otherwise it is sent to the instance's control queue, then the work item is deleted.

Work items held are kept hidden by renewing their lock (`WorkItems`), so a crashed host's
work becomes visible again within one lock period.

Crash attribution: when a worker process exits, every invocation it was running fails
with WorkerDied. Only one that ran alone in the worker is charged with the exit; the
others are "suspects" and run again alone (an exclusive invocation), so an activity that
kills its worker fails after MAX_WORKER_EXITS exits of its own, with a message saying
so, and the activities beside it are retried without losing anything.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Protocol

import aiohttp

from runtime import console
from runtime.clock import Clock
from runtime.config import DurableTaskConfig
from runtime.durable import engine, history, http_activity
from runtime.durable.app import AppFunctions
from runtime.durable.engine import activity
from runtime.durable.inflight import Pending, WorkerExits, WorkItems
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.errors import (
    FunctionInvocationError,
    InvocationTimeout,
    StorageError,
    WorkerError,
)

log = console.get("durable")

MIN_POLL = 0.05
MAX_IDLE_POLL = 1.0  # locally, a second is the most a new message waits for a poll
LOCAL_LOCK = 15.0  # the longest an activity this host runs stays hidden between renewals
# An activity that made its worker exit this many times, each time running alone in it,
# fails. Attempts cut off by another invocation's crash, a timeout recycle or a host
# crash are not counted: they run again, alone in a worker, to learn who is at fault.
MAX_WORKER_EXITS = 3


def abandon_delay(dequeue_count: int) -> float:
    """The backend's backoff for abandoned messages is 2^DequeueCount s, capped at
    600 s; locally a one-minute cap keeps retries visible to a developer."""
    return float(min(2 ** max(0, dequeue_count - 1), 60))


class ResultSink(Protocol):
    """Where a result goes when this host owns the instance (the orchestration worker)."""

    def accept_local(self, pending: Pending) -> bool:
        """Take the result into the instance's session; False when not owned here."""

    def notify_instance(self, instance_id: str) -> None:
        """Work was enqueued for the instance: look at its control queue now."""


class ActivityWorker:
    def __init__(self, hub: TaskHub, config: DurableTaskConfig, app: AppFunctions,
                 clock: Clock, spawn: Any) -> None:
        self.hub = hub
        self.config = config
        self.app = app
        self.clock = clock
        self.spawn = spawn
        self.sink: ResultSink | None = None
        self.work_items = WorkItems(hub, min(LOCAL_LOCK, config.work_item_queue_visibility_timeout),
                                    clock)
        self.running = 0  # activities in flight (slots taken)
        self.starved = False  # the poller waits for a free slot
        self.exits = WorkerExits(MAX_WORKER_EXITS)  # crash attribution, by work item
        self.wake = asyncio.Event()
        self.active = False
        # Running until their results are out (a stop gives them a few seconds, as DTFx's
        # WorkItemDispatcher.StopAsync does unless forced).
        self.in_flight: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.active = True
        self.spawn(self._poll_loop())
        self.spawn(self._renewal_loop())

    def stop(self) -> None:
        self.active = False
        self.wake.set()

    def _track(self, task: asyncio.Task[None]) -> None:
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def hand_back(self) -> None:
        """Make every held work item visible again at once (graceful shutdown)."""
        await asyncio.gather(*(self.work_items.release_id(i, 0)
                               for i in list(self.work_items.held)))

    # -- scheduling ------------------------------------------------------------------

    def _reserve_slot(self) -> bool:
        if self.running >= self.config.max_concurrent_activity_functions:
            return False
        self.running += 1
        return True

    async def schedule(self, instance_id: str, execution_id: str, event: dict[str, Any],
                       episode: int) -> None:
        """Send an activity of a checkpoint; run it here at once when a slot is free and
        the host is not stopping (then it goes to the queue for the next host)."""
        if not self.active or not self._reserve_slot():
            await self.hub.send_activity(instance_id, execution_id, event, episode=episode)
            self.wake.set()
            return
        # Run it now, while its hidden work item is being written: the result waits in
        # the session until the checkpoint (which needs the work item) has committed.
        outcome = self.spawn(self._attempt(event))
        try:
            sent = await self.hub.send_activity(instance_id, execution_id, event,
                                                episode=episode, hidden_for=self.work_items.lock)
        except BaseException:
            self.spawn(_discard(outcome))
            raise
        self.work_items.hold(sent, self.work_items.lock)
        self._track(self.spawn(self._hand_over(sent, outcome)))

    # -- the poll loop ---------------------------------------------------------------

    async def _poll(self, delay: float) -> float:
        try:
            await asyncio.wait_for(self.wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
        return min(delay * 2 * random.uniform(0.8, 1.2), self.config.max_queue_polling_interval,
                   MAX_IDLE_POLL)

    async def _poll_loop(self) -> None:
        queue = self.hub.workitems_queue
        lock = self.work_items.lock
        delay = MIN_POLL
        while self.active:
            self.wake.clear()
            free = self.config.max_concurrent_activity_functions - self.running
            self.starved = free <= 0
            if self.starved:
                await self._poll(MAX_IDLE_POLL)
                continue
            try:
                messages = await self.hub.receive(queue, min(32, free), lock)
            except StorageError as exc:
                log.warning("Receiving activities failed: %s", exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
                    self.running += 1
                    self.work_items.hold(message, lock)
                    alone = self.exits.alone(message.message_id)
                    self._track(self.spawn(self._hand_over(message, self.spawn(
                        self._attempt(message.event, alone)))))
                continue
            delay = await self._poll(delay)

    async def _renewal_loop(self) -> None:
        while self.active:
            await self.clock.sleep(self.work_items.lock / 6)
            await self.work_items.renew_expiring()

    # -- running one -----------------------------------------------------------------

    async def _attempt(self, event: dict[str, Any],
                       exclusive: bool = False) -> dict[str, Any] | WorkerError:
        """The activity's TaskCompleted/TaskFailed, or the WorkerError that interrupted it.
        Frees the activity slot when done."""
        try:
            return await self.execute(event, exclusive=exclusive)
        except WorkerError as exc:
            return exc
        finally:
            self.running -= 1
            if self.starved:
                self.wake.set()  # the poller waits for a free slot

    async def execute(self, event: dict[str, Any], *,
                      exclusive: bool = False) -> dict[str, Any]:
        """Run the activity `event` (a TaskScheduled) names; its completion event.
        Raises WorkerError when its worker died under it; `exclusive` runs it alone in
        its worker."""
        name = str(event.get("Name"))
        if name == engine.HTTP_ACTIVITY:
            return await self._call_http(event)
        spec = self.app.activity(name)
        now = self.clock.now
        if spec is None or self.app.invoker is None:
            return activity.unknown(event, self.app.names("activityTrigger"), now())
        trigger_name = str(spec.trigger.get("name", "input"))
        input_text = event.get("Input")
        try:
            value = await self.app.invoker.invoke(
                spec.name, {trigger_name: "null" if input_text is None else input_text},
                timeout=self.app.function_timeout, exclusive=exclusive)
        except FunctionInvocationError as exc:
            return activity.raised(event, exc.exc_type, exc.exc_message, exc.traceback_text,
                                   now())
        except InvocationTimeout as exc:
            return activity.failed(event, str(exc), now())
        return activity.completed(event, value.get("text"), now())

    async def _call_http(self, event: dict[str, Any]) -> dict[str, Any]:
        """The built-in HTTP activity of call_http, run here in the host."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(trust_env=True)
        try:
            request = http_activity.parse_request(event.get("Input"))
            response = await http_activity.send(self._http, request)
        except http_activity.HttpActivityError as exc:
            return history.task_failed(activity.scheduled_id(event), str(exc), None,
                                       self.clock.now())
        return activity.completed(event, json.dumps(response), self.clock.now())

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _hand_over(self, message: QueueMessage,
                         outcome: asyncio.Task[dict[str, Any] | WorkerError]) -> None:
        completion = await outcome
        event = message.event
        key = message.message_id
        if isinstance(completion, WorkerError):
            charged = self.exits.interrupted(key, completion)
            if charged is None:
                log.warning("Activity '%s' of '%s' was interrupted (%s); it will run again, "
                            "alone in a worker process.", event.get("Name"),
                            message.instance_id, completion)
                await self._release(message)
                return
            completion = activity.failed(
                event, f"{completion} {WorkerExits.verdict(charged, 'It')}", self.clock.now())
        self.exits.done(key)
        pending = Pending(completion, message, local=True)
        if self.sink is None or not self.sink.accept_local(pending):
            await self.report_via_queue(pending)

    async def _release(self, message: QueueMessage) -> None:
        try:
            await self.work_items.release(message, abandon_delay(message.dequeue_count + 1))
        except StorageError:
            pass  # its lock runs out and it is received again anyway

    # -- results that cannot go in memory --------------------------------------------

    async def report_via_queue(self, pending: Pending) -> bool:
        """Send an activity result to its instance's control queue, then delete the work
        item: the at-least-once path, used when the result cannot go in memory. False
        when storage failed (the activity then runs again)."""
        message = pending.message
        try:
            await self.hub.send_to_instance(message.instance_id, message.execution_id,
                                            pending.event)
            await self.work_items.delete(message)
        except StorageError as exc:
            log.warning("Could not report an activity result of '%s' (%s); the activity "
                        "will run again.", message.instance_id, exc)
            return False
        if self.sink is not None:
            self.sink.notify_instance(message.instance_id)
        return True

    async def delete(self, message: QueueMessage) -> None:
        """Delete a work item whose result a checkpoint has recorded."""
        await self.work_items.delete(message)


async def _discard(outcome: asyncio.Task[Any]) -> None:
    await asyncio.gather(outcome, return_exceptions=True)


__all__ = ["LOCAL_LOCK", "MAX_WORKER_EXITS", "ActivityWorker", "ResultSink",
           "abandon_delay"]
