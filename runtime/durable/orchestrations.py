"""The orchestration worker: owned control-queue partitions, one session per instance,
and episodes.

Each owned partition has a poll loop; its messages go to their instance's session. One
session per instance runs at a time; events that arrive while it runs wait in its buffer
and form the next episode, so completions batch up naturally (fan-in). An episode loads
history (or takes it from the cache, proven current by the sentinel ETag on the next
write), lets the engine plan it, has a worker replay the orchestrator through the SDK,
and hands the result to the checkpoint. An episode that cannot commit gives its
messages back; a crash anywhere replays it, and the engine drops duplicates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runtime import console
from runtime.clock import Clock
from runtime.config import DurableTaskConfig
from runtime.durable import engine
from runtime.durable.activities import abandon_delay
from runtime.durable.app import AppFunctions
from runtime.durable.checkpoint import Checkpoint
from runtime.durable.entities import EntityWorker
from runtime.durable.inflight import HistoryCache, Pending, Session, WorkerExits, WorkItems
from runtime.durable.leases import Partitions
from runtime.durable.poison import LocalResults, quarantine_work_item
from runtime.durable.taskhub import HistorySnapshot, QueueMessage, TaskHub
from runtime.errors import (
    CheckpointConflict,
    FunctionInvocationError,
    HostError,
    InvocationTimeout,
    ProtocolError,
    StorageError,
    VersionRejected,
    WorkerError,
)

log = console.get("durable")

LEASE_INTERVAL = 2.5  # a survey of the partition leases (one request), renewals as due
MIN_POLL = 0.05
MAX_IDLE_POLL = 1.0  # locally, a second is the most a new message waits for a poll
# Control messages are locked for 15 s (or controlQueueVisibilityTimeout, at least two
# lease intervals, as renewals run on that loop) and renewed while held, so a crashed
# host's messages come back when its partitions are taken over.
CONTROL_LOCK = 15.0
DRAIN_SECONDS = 10.0  # how long a partition handed over lets its episodes finish
MAX_ORCHESTRATOR_CRASHES = 3
POISON_ATTEMPTS = 5  # deliveries of a work item that cannot apply before it is moved aside
# Deliveries of events that wait for a Pending instance's start (backing off up to a
# minute each) before they are discarded as DTFx discards them.
START_WAIT_ATTEMPTS = 10
RENEW_EVERY = 5.0  # partition leases last 15 s


def control_lock(config: DurableTaskConfig) -> float:
    """Seconds a control message is locked for (see CONTROL_LOCK)."""
    return max(min(CONTROL_LOCK, config.control_queue_visibility_timeout), 2 * LEASE_INTERVAL)


def _list(partitions: Any) -> str:
    return ", ".join(str(p) for p in sorted(partitions))


class OrchestrationWorker:
    def __init__(self, hub: TaskHub, partitions: Partitions, config: DurableTaskConfig,
                 app: AppFunctions, clock: Clock, cache: HistoryCache,
                 checkpoint: Checkpoint, results: LocalResults,
                 spawn: Callable[[Any], asyncio.Task[Any]]) -> None:
        self.hub = hub
        self.partitions = partitions
        self.config = config
        self.app = app
        self.clock = clock
        self.cache = cache
        self.checkpoint = checkpoint
        self.results = results
        self.spawn = spawn
        self.sessions: dict[str, Session] = {}
        self.slots = asyncio.Semaphore(config.max_concurrent_orchestrator_functions)
        self.crashes = WorkerExits(MAX_ORCHESTRATOR_CRASHES)  # crash attribution
        self.rejected: set[str] = set()  # instances whose version this host refused (logged)
        self.poison_logged: set[str] = set()  # instances whose work item cannot apply
        # instance id -> the frames of user code behind its orchestrator's last error
        self.failure_details: dict[str, str] = {}
        self.entities: EntityWorker | None = None  # runs the sessions of `@name@key` ids
        self.wake = [asyncio.Event() for _ in range(hub.partition_count)]
        self.partition_tasks: dict[int, asyncio.Task[None]] = {}
        self.draining: set[int] = set()  # partitions being handed over to another host
        self.renewed_at = clock.monotonic()
        # Control messages held (buffered or in an episode), their locks renewed.
        self.locks = WorkItems(hub, control_lock(config), clock)
        checkpoint.locks = self.locks
        checkpoint.timer_due = self.timer_due
        self.active = False

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.active = True
        await self.balance()
        self.spawn(self._lease_loop())

    def stop(self) -> None:
        self.active = False
        for event in self.wake:
            event.set()

    def in_flight(self) -> list[asyncio.Task[None]]:
        """The session tasks running an episode now (a stop waits for them: one cut
        mid-checkpoint leaves activities sent but not in history, to run twice)."""
        return [s.task for s in self.sessions.values() if s.task is not None and s.active]

    def held(self) -> list[Pending]:
        """Every message buffered or in a running episode (handed back at shutdown)."""
        return [p for s in self.sessions.values() for p in (*s.active, *s.buffer.values())]

    def notify_instance(self, instance_id: str) -> None:
        """Work was enqueued for an instance: skip the poll delay on its partition."""
        self.wake[self.hub.partition_of(instance_id)].set()

    def notify_all(self) -> None:
        for event in self.wake:
            event.set()

    def owns(self, instance_id: str) -> bool:
        partition = self.hub.partition_of(instance_id)
        return self.active and partition in self.partitions.owned and \
            partition not in self.draining

    def timer_due(self, message: QueueMessage) -> None:
        """A durable timer this host sent is due: into its instance's session when this
        host owns it (the queued copy, still hidden, is deleted with the send's receipt
        once the timer is checkpointed; if it shows up first, it is a duplicate the
        engine drops), else its control queue is looked at now."""
        if self.owns(message.instance_id):
            self._enqueue(message.instance_id, Pending(message.event, message))
        else:
            self.notify_instance(message.instance_id)

    def accept_local(self, pending: Pending) -> bool:
        """An activity result for an instance this host owns goes into its session
        (while stopping, none: it goes through the queue to the next host)."""
        if not self.active or not self.owns(pending.message.instance_id):
            return False
        self._enqueue(pending.message.instance_id, pending)
        return True

    # -- partitions ------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        # Runs until the dispatcher cancels it: while a stop waits for episodes to
        # commit, leases and locks are still renewed (nothing new is taken).
        while True:
            await self.clock.sleep(LEASE_INTERVAL)
            try:
                if self.active:
                    await self.balance()
                else:
                    await self._renew_due()
                await self.locks.renew_expiring()
            except HostError as exc:
                log.warning("Partition lease renewal failed: %s", exc)

    async def balance(self) -> None:
        """Renew owned partitions (when due), stop reading lost ones, start reading new
        ones, and drain the ones another host asked for."""
        await self._renew_due()
        before = self.partitions.owned
        acquired = await self.partitions.acquire_available()
        for partition in acquired:
            self.partition_tasks[partition] = self.spawn(self._partition_loop(partition))
        for partition, requester in self.partitions.requested().items():
            if partition not in self.draining:
                self.draining.add(partition)
                self.spawn(self._hand_over(partition, requester))
        if acquired:
            log.info("%s partition%s %s of task hub '%s' (now %s).",
                     "Owns" if not before else "Took", "" if len(acquired) == 1 else "s",
                     _list(acquired), self.hub.hub_name, _list(self.partitions.owned))

    async def _renew_due(self) -> None:
        """Renew owned partitions when due; stop reading the ones another host took."""
        now = self.clock.monotonic()
        if now - self.renewed_at >= RENEW_EVERY:
            self.renewed_at = now
            for partition in await self.partitions.renew():
                log.warning("Lost partition %d: another host holds its lease now.",
                            partition)
                self._stop_reading(partition)
                self.cache.drop_where(lambda i, p=partition: self.hub.partition_of(i) == p)
                self.locks.forget_where(
                    lambda m, p=partition: self.hub.partition_of(m.instance_id) == p)

    def _stop_reading(self, partition: int) -> None:
        task = self.partition_tasks.pop(partition, None)
        if task is not None:
            task.cancel()

    async def _hand_over(self, partition: int, requester: str) -> None:
        """Give a partition to the host that asked for it: stop reading its queue, let
        the episodes in flight finish (bounded), hand the buffered messages back, and
        release the lease (the framework's drain-then-release)."""
        try:
            self._stop_reading(partition)
            deadline = self.clock.monotonic() + DRAIN_SECONDS
            while self.clock.monotonic() < deadline and any(
                    s.active and self.hub.partition_of(s.instance_id) == partition
                    for s in self.sessions.values()):
                await self.clock.sleep(0.05)
            mine = [s for s in self.sessions.values()
                    if self.hub.partition_of(s.instance_id) == partition]
            left = [p for s in mine for p in (*s.active, *s.buffer.values())]
            for session in mine:
                session.buffer.clear()
            await self._abandon_now([p for p in left if not p.local])
            await asyncio.gather(*(self.results.report_via_queue(p)
                                   for p in left if p.local))
            self.cache.drop_where(lambda i: self.hub.partition_of(i) == partition)
            await self.partitions.release(partition)
            log.info("Handed partition %d of task hub '%s' over to another host (now %s).",
                     partition, self.hub.hub_name, _list(self.partitions.owned) or "none")
        finally:
            self.draining.discard(partition)

    async def _abandon_now(self, pendings: list[Pending]) -> None:
        async def one(pending: Pending) -> None:
            try:
                await self.locks.release(pending.message, 0)
            except StorageError:
                pass  # it reappears when its lock runs out anyway
        await asyncio.gather(*(one(p) for p in pendings))

    async def _poll(self, wake: asyncio.Event, delay: float) -> float:
        """Sleep until woken or `delay` passes; return the next, longer delay."""
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
        return min(delay * 2 * random.uniform(0.8, 1.2), self.config.max_queue_polling_interval,
                   MAX_IDLE_POLL)

    async def _partition_loop(self, partition: int) -> None:
        queue = self.hub.control_queue(partition)
        wake = self.wake[partition]
        delay = MIN_POLL
        while self.active and partition in self.partitions.owned:
            wake.clear()
            lock = self.locks.lock
            try:
                messages = await self.hub.receive(
                    queue, self.config.control_queue_batch_size, lock)
            except StorageError as exc:
                log.warning("Receiving from %s failed: %s", queue, exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
                    self.locks.hold(message, lock)
                    self._enqueue(message.instance_id, Pending(message.event, message))
                continue
            delay = await self._poll(wake, delay)

    # -- sessions --------------------------------------------------------------------

    def _enqueue(self, instance_id: str, pending: Pending) -> None:
        session = self.sessions.get(instance_id)
        if session is None:
            session = self.sessions[instance_id] = Session(instance_id)
        session.buffer[pending.key] = pending  # a redelivered copy replaces the old one
        if session.task is None:
            session.task = self.spawn(self._run_session(session))

    async def _run_session(self, session: Session) -> None:
        try:
            while session.buffer and self.active:
                async with self.slots:
                    # Taken once a slot is free: more messages batch up meanwhile, and a
                    # stop that began while it waited starts no new episode.
                    if not (session.buffer and self.active):
                        break
                    batch = sorted(session.buffer.values(), key=lambda p: p.order)
                    session.buffer.clear()
                    session.active = batch
                    try:
                        await self._episode(session.instance_id, batch)
                    except CheckpointConflict as exc:
                        log.warning("%s The work item is abandoned and will be retried.", exc)
                        await self._give_back(session.instance_id, batch)
                    except (StorageError, WorkerError) as exc:
                        log.warning("%s '%s' work item failed (%s); it will be retried.",
                                    "Entity" if engine.entities.is_entity(session.instance_id)
                                    else "Orchestration", session.instance_id, exc)
                        await self._give_back(session.instance_id, batch)
                    except VersionRejected as exc:
                        if session.instance_id not in self.rejected:
                            self.rejected.add(session.instance_id)
                            log.warning("%s", exc)
                        await self._give_back(session.instance_id, batch)
                    except Exception as exc:  # noqa: BLE001 - a work item that cannot apply
                        await self._cannot_apply(session.instance_id, batch, exc)
                session.active = []
        finally:
            session.task = None
            if session.buffer and self.active:
                session.task = self.spawn(self._run_session(session))
            elif not (session.buffer or session.active):
                self.sessions.pop(session.instance_id, None)
            # else: stopping (or an episode cancelled by the stop): its messages are
            # handed back with the other held ones

    async def _give_back(self, instance_id: str, batch: list[Pending]) -> None:
        """An episode did not commit: forget the cached history, return control messages
        to their queue, and route results handed over in memory through the queue."""
        self.cache.drop(instance_id)
        await self._abandon([p for p in batch if not p.local])
        await asyncio.gather(*(self.results.report_via_queue(p) for p in batch if p.local))

    async def _start_on_its_way(self, instance_id: str, batch: list[Pending]) -> bool:
        """Whether messages for an instance without history should wait for its start:
        its Instances row says Pending, and they have not waited long already (a row
        whose start message was never sent stays Pending for good)."""
        attempts = max((p.message.dequeue_count for p in batch if not p.local), default=0)
        if attempts >= START_WAIT_ATTEMPTS:
            return False
        row = await self.hub.read_instance(instance_id)
        return row is not None and row.get("RuntimeStatus") == "Pending"

    async def _cannot_apply(self, instance_id: str, batch: list[Pending],
                            error: Exception) -> None:
        """A work item that fails for a reason no retry of ours fixes by itself (a history
        that cannot be loaded, a row that contradicts it, a bug): retried with backoff
        and said once; after POISON_ATTEMPTS deliveries its messages go to the poison
        queue and the instance is marked Failed with the reason."""
        reason = f"{type(error).__name__}: {error}"
        attempts = max((p.message.dequeue_count for p in batch if not p.local), default=1)
        if attempts < POISON_ATTEMPTS:
            if instance_id not in self.poison_logged:
                self.poison_logged.add(instance_id)
                log.warning("Instance '%s': its work item cannot be applied (%s); it is "
                            "retried with backoff, then moved to %s.", instance_id, reason,
                            self.hub.names.poison_queue, exc_info=error)
            await self._give_back(instance_id, batch)
            return
        self.poison_logged.discard(instance_id)
        self.cache.drop(instance_id)
        await quarantine_work_item(self.hub, self.locks, self.results, self.clock.now(),
                                   instance_id, batch, attempts, reason)

    async def _abandon(self, batch: list[Pending]) -> None:
        for pending in batch:
            try:
                await self.locks.release(pending.message,
                                         abandon_delay(pending.message.dequeue_count))
            except StorageError:
                pass  # it reappears when its visibility timeout ends anyway

    # -- episodes --------------------------------------------------------------------

    async def _load(self, instance_id: str) -> HistorySnapshot:
        cached = self.cache.get(instance_id)
        return cached if cached is not None else await self.hub.load_history(instance_id)

    async def _episode(self, instance_id: str, batch: list[Pending]) -> None:
        self.failure_details.pop(instance_id, None)
        if self.entities is not None and engine.entities.is_entity(instance_id):
            await self.entities.run(instance_id, batch)
            return
        snapshot = await self._load(instance_id)
        stale = [p for p in batch
                 if engine.is_stale(p.event, p.execution_id, snapshot.execution_id)]
        if stale:
            # Replies to an execution that has since been replaced (id reuse): drop them.
            await self.checkpoint.delete(stale)
            batch = [p for p in batch if p not in stale]
            if not batch:
                return
        now = self.clock.now()
        episode = engine.plan_episode(instance_id, snapshot.events, [p.event for p in batch],
                                      now)
        if not snapshot.events and not episode.needs_replay and \
                await self._start_on_its_way(instance_id, batch):
            # Events for an instance whose start is recorded (its row is Pending) but not
            # run yet (its start message is held by a host that crashed, say): they wait
            # for it instead of being discarded (DTFx discards them: "No such instance").
            await self._abandon([p for p in batch if not p.local])
            await asyncio.gather(*(self.results.report_via_queue(p)
                                   for p in batch if p.local))
            return
        deferred_indexes = set(episode.deferred)
        deferred = [p for i, p in enumerate(batch) if i in deferred_indexes]
        consumed = [p for i, p in enumerate(batch) if i not in deferred_indexes]
        if deferred:
            # Out of order: a result whose scheduling is not in history yet. Retry later.
            self.cache.drop(instance_id)
            await self._abandon([p for p in deferred if not p.local])
            await asyncio.gather(*(self.results.report_via_queue(p)
                                   for p in deferred if p.local))
        if episode.refused_starts:
            await self._refuse(episode, now)
        if episode.terminated_reason is not None:
            result = engine.terminate(episode, now)
        elif episode.needs_replay:
            held = engine.hold(episode, now)
            if held is not None:
                result = held
            else:
                episode, result = await self._run_generations(episode, now)
        else:
            await self.checkpoint.repair_instance_row(instance_id, snapshot)
            await self.checkpoint.delete(consumed)
            return
        details = self.failure_details.pop(instance_id, None)
        await self.checkpoint.commit(episode, snapshot, result, consumed, details=details)

    async def _run_generations(self, episode: engine.Episode, now: datetime
                               ) -> tuple[engine.Episode, engine.EpisodeResult]:
        """Replay the episode; while the code continues as new, run the next generation
        in the same work item (DTFx's dispatcher does), keeping every generation's
        messages. Returns the last generation's episode and result."""
        result = await self._replay(episode, now)
        outgoing = list(result.outgoing)
        while result.continued is not None:
            episode = engine.next_generation(episode, result.continued, uuid.uuid4().hex, now)
            result = await self._replay(episode, now)
            outgoing.extend(result.outgoing)
        return episode, dataclasses.replace(result, outgoing=outgoing)

    async def _refuse(self, episode: engine.Episode, now: datetime) -> None:
        """Tell parents that their child could not start: its id is taken by a running
        instance, which is left as it is."""
        status = "Suspended" if engine.suspension.is_suspended(episode.past_events) \
            else "Running"
        for start in episode.refused_starts:
            reply = engine.reject_start(start, status, now)
            if reply is None:
                continue
            log.warning("%s", reply.event.get("Reason"))
            await self.hub.send_to_instance(reply.target_instance_id, reply.target_execution_id,
                                            reply.event)
            self.notify_instance(reply.target_instance_id)

    async def _replay(self, episode: engine.Episode, now: datetime) -> engine.EpisodeResult:
        version = engine.instance_version(episode)
        if not engine.versioning.allows(version, self.config.default_version,
                                        self.config.version_match_strategy):
            if self.config.version_failure_strategy == "Fail":
                return engine.fail(episode, engine.versioning.MISMATCH, now)
            raise VersionRejected(episode.instance_id, version, self.config.default_version)
        spec = self.app.orchestrator(episode.orchestrator_name)
        invoker = self.app.invoker
        if spec is None or invoker is None:
            return engine.fail(episode, engine.wording.unknown_orchestrator_message(
                episode.orchestrator_name, self.app.names("orchestrationTrigger")), now)
        context = engine.build_context(episode)
        trigger_name = str(spec.trigger.get("name", "context"))
        returned: str | None = None
        raised: str | None = None
        try:
            value = await invoker.invoke(spec.name, {trigger_name: context},
                                         timeout=self.app.function_timeout,
                                         affinity=episode.instance_id, quiet_failure=True,
                                         exclusive=self.crashes.alone(episode.instance_id))
            returned = value.get("text")
        except FunctionInvocationError as exc:
            raised = exc.exc_message
            # Printed with the instance's one failure line, if this episode fails it.
            self.failure_details[episode.instance_id] = exc.traceback_text
        except InvocationTimeout as exc:
            return engine.fail(episode, str(exc), now)
        except WorkerError as exc:
            # It runs again alone, unless it is its own fault for the last time.
            charged = self.crashes.interrupted(episode.instance_id, exc)
            if charged is None:
                raise
            return engine.fail(episode, f"{exc} "
                               f"{WorkerExits.verdict(charged, 'The orchestrator')}", now)
        self.crashes.done(episode.instance_id)
        try:
            state = engine.parse_sdk_result(returned, raised)
        except ProtocolError as exc:
            return engine.fail(episode, str(exc), now)
        return engine.apply_state(episode, state, self.app.known(), now,
                                  self.config.max_orchestration_actions,
                                  self.config.default_version)


__all__ = ["CONTROL_LOCK", "LEASE_INTERVAL", "OrchestrationWorker", "control_lock"]
