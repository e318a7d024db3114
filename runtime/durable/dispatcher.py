"""The durable dispatcher: composes the orchestration worker, the activity worker and the
checkpoint over one task hub, and hands work back on shutdown.

What keeps polling and storage round trips off the critical path of a durable step,
without weakening the backend's guarantees (see each worker's docstring): activities a
checkpoint schedules run at once while their hidden work item is written; results for
instances this host owns go straight into their session; histories are cached while
their partition is owned; poll loops sleep only while their queues are idle and wake as
soon as this process enqueues work for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from runtime import console
from runtime.clock import Clock, SystemClock
from runtime.config import DurableTaskConfig
from runtime.durable.activities import ActivityWorker, abandon_delay
from runtime.durable.app import AppFunctions, Invoker
from runtime.durable.checkpoint import Checkpoint, CommitObserver
from runtime.durable.entities import EntityWorker
from runtime.durable.inflight import HistoryCache, OrderedWrites, Pending
from runtime.durable.leases import Partitions
from runtime.durable.orchestrations import OrchestrationWorker, control_lock
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.errors import HostError, StorageError
from runtime.functions import FunctionIndex

log = console.get("durable")

# A clean stop's steps, each bounded so that Ctrl-C ends within about 25 s (with the
# workers' 5 s) even when storage stalls (a second Ctrl-C ends the process at once:
# runtime/cli/start.py).
FINISH_SECONDS = 5.0  # episodes in flight commit, activities in flight finish
DRAIN_SECONDS = 5.0  # background writes (instance rows, deletions) finish
HAND_BACK_SECONDS = 5.0  # held messages made visible, buffered results reported
RELEASE_SECONDS = 5.0  # partition leases released


class Dispatcher:
    """Runs the durable work of one task hub in this host.

    `partitions` decides which control queues this host reads; `clock` gives durable
    time (history timestamps, timer fire times) and process time (locks, polls).
    """

    def __init__(self, hub: TaskHub, partitions: Partitions, config: DurableTaskConfig,
                 *, function_timeout: float | None = None, clock: Clock | None = None) -> None:
        self.hub = hub
        self.partitions = partitions
        self.config = config
        self.clock = clock or SystemClock()
        self.app = AppFunctions()
        self.app.function_timeout = function_timeout
        self.tasks: set[asyncio.Task[Any]] = set()
        self.finish_seconds = FINISH_SECONDS  # what a clean stop gives work in flight
        self.cache = HistoryCache()
        self.writes = OrderedWrites(self._spawn)
        self.activities = ActivityWorker(hub, config, self.app, self.clock, self._spawn)
        self.checkpoint = Checkpoint(hub, self.clock, self.activities, self.cache, self.writes,
                                     notify=self.notify_instance)
        self.orchestrations = OrchestrationWorker(hub, partitions, config, self.app,
                                                  self.clock, self.cache, self.checkpoint,
                                                  self.activities, self._spawn)
        self.orchestrations.entities = EntityWorker(
            hub, config, self.app, self.clock, self.cache, self.checkpoint,
            lock_seconds=control_lock(config))
        self.activities.sink = self.orchestrations
        self.running = False

    # -- wiring --------------------------------------------------------------------

    @property
    def function_timeout(self) -> float | None:
        return self.app.function_timeout

    @function_timeout.setter
    def function_timeout(self, value: float | None) -> None:
        self.app.function_timeout = value

    def set_functions(self, index: FunctionIndex, invoker: Invoker) -> None:
        """Run the durable functions of `index` through `invoker` from now on (reload)."""
        self.app.set(index, invoker)

    def notify_instance(self, instance_id: str) -> None:
        """Work was enqueued for an instance: skip the poll delay on its partition."""
        self.orchestrations.notify_instance(instance_id)

    def notify_all(self) -> None:
        """Look at every queue now (a virtual clock moved)."""
        self.orchestrations.notify_all()
        self.activities.wake.set()

    def owns(self, instance_id: str) -> bool:
        return self.orchestrations.owns(instance_id)

    def on_commit(self, observer: CommitObserver) -> None:
        """Call `observer(episode, result)` after every orchestration checkpoint's
        history write, in the event loop (it must not block)."""
        self.checkpoint.observers.append(observer)

    def busy(self) -> list[str]:
        """What this dispatcher is doing now, in words (empty when idle): episodes and
        entity batches running or waiting, activities running, work items held until
        their results are checkpointed, background writes not yet done."""
        found: list[str] = []
        if self.orchestrations.sessions:
            found.append(f"{len(self.orchestrations.sessions)} instance(s) in an episode: "
                         + ", ".join(sorted(self.orchestrations.sessions)[:5]))
        if self.activities.running:
            found.append(f"{self.activities.running} activity(ies) running")
        if self.activities.work_items.held:
            found.append(f"{len(self.activities.work_items.held)} activity result(s) not "
                         "yet checkpointed")
        if self.writes.tails:
            found.append(f"{len(self.writes.tails)} instance row update(s) in progress")
        return found

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        await self.orchestrations.start()
        self.activities.start()

    async def stop(self, *, finish: bool = True) -> None:
        """Stop polling and starting work, let the episodes in flight commit and the
        background writes finish, hand held messages back so that the next host need not
        wait for their locks (results already computed go to their control queue, as on
        a partition hand-over, so they do not run again), and release the partitions.
        Each step is bounded (FINISH_SECONDS, ...). Activities in flight get the same
        few seconds (their results go to their control queues); the ones still running
        then are cancelled: their work items are handed back and run by the next host.
        `finish=False` cancels episodes at once (a task hub discarded afterwards)."""
        self.running = False
        self.orchestrations.stop()
        self.activities.stop()
        if finish:
            await self._finish_in_flight()
        try:
            await asyncio.wait_for(self.writes.drain(), DRAIN_SECONDS)
        except asyncio.TimeoutError:
            pass
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        held = self.orchestrations.held()  # sessions cut by the cancel keep their messages
        try:
            await asyncio.wait_for(self._hand_back(held), HAND_BACK_SECONDS)
        except asyncio.TimeoutError:
            log.warning("Some messages could not be handed back; they are delivered again "
                        "when their locks run out.")
        await self.activities.close()
        try:
            await asyncio.wait_for(self.partitions.release_all(), RELEASE_SECONDS)
        except (HostError, asyncio.TimeoutError) as exc:
            log.warning("Could not release partition leases (%s); they expire within "
                        "15 s.", str(exc) or "storage did not answer")

    async def _finish_in_flight(self) -> None:
        """Let episodes and activities in flight finish, together, for `finish_seconds`."""
        episodes, activities = self.orchestrations.in_flight(), list(self.activities.in_flight)
        if episodes or activities:
            log.info("Waiting for work in flight to finish (at most %.0f s): %d episode(s), "
                     "%d activity(ies)...", self.finish_seconds, len(episodes),
                     len(activities))
            try:
                await asyncio.wait_for(self._idle(), self.finish_seconds)
            except asyncio.TimeoutError:
                pass

    async def _idle(self) -> None:
        """Until no episode or activity is in flight (an episode that commits may
        still send an activity that runs: both are looked at again each time)."""
        while waits := [*self.orchestrations.in_flight(), *self.activities.in_flight]:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    async def _hand_back(self, held: list[Pending]) -> None:
        """Make the messages this host held visible again at once, after reporting the
        activity results buffered in memory through their control queues. Ones whose
        episode committed meanwhile are already gone, which is fine."""
        async def visible(message: QueueMessage) -> None:
            try:
                await self.orchestrations.locks.release(message, 0)
            except StorageError:
                pass
        # Reported first: the work items of those results are held until then, and
        # handing them back would run their activities again.
        await asyncio.gather(*(self.activities.report_via_queue(p) for p in held if p.local))
        await asyncio.gather(*(visible(p.message) for p in held if not p.local),
                             self.activities.hand_back())


__all__ = ["Dispatcher", "Pending", "abandon_delay"]
