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
from typing import Any, Protocol

from runtime import console
from runtime.clock import Clock
from runtime.config import DurableTaskConfig
from runtime.durable import engine
from runtime.durable.activities import abandon_delay
from runtime.durable.app import AppFunctions
from runtime.durable.checkpoint import Checkpoint
from runtime.durable.inflight import HistoryCache, Pending, Session
from runtime.durable.leases import Partitions
from runtime.durable.taskhub import HistorySnapshot, TaskHub
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

LEASE_INTERVAL = 10.0
MIN_POLL = 0.05
MAX_IDLE_POLL = 1.0  # locally, a second is the most a new message waits for a poll
# Control messages are locked for at most a minute: a crashed host's messages come back
# soon, and one delivered twice while still buffered is a duplicate the engine drops.
CONTROL_LOCK = 60.0
MAX_ORCHESTRATOR_CRASHES = 3


class EntityRunner(Protocol):
    async def run(self, instance_id: str, batch: list[Pending]) -> None:
        """Run and commit one batch of operations for an entity."""


class LocalResults(Protocol):
    """Activity results handed over in memory (the activity worker owns their items)."""

    async def report_via_queue(self, pending: Pending) -> bool:
        """Route a result through its instance's control queue instead."""


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
        self.crashes: dict[str, int] = {}
        self.rejected: set[str] = set()  # instances whose version this host refused (logged)
        # instance id -> the frames of user code behind its orchestrator's last error
        self.failure_details: dict[str, str] = {}
        self.entities: EntityRunner | None = None  # runs the sessions of `@name@key` ids
        self.wake = [asyncio.Event() for _ in range(hub.partition_count)]
        self.partition_tasks: dict[int, asyncio.Task[None]] = {}
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
        return self.active and self.hub.partition_of(instance_id) in self.partitions.owned

    def accept_local(self, pending: Pending) -> bool:
        """An activity result for an instance this host owns goes into its session."""
        if not self.owns(pending.message.instance_id):
            return False
        self._enqueue(pending.message.instance_id, pending)
        return True

    # -- partitions ------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while self.active:
            await self.clock.sleep(LEASE_INTERVAL)
            try:
                await self.balance()
            except HostError as exc:
                log.warning("Partition lease renewal failed: %s", exc)

    async def balance(self) -> None:
        """Renew owned partitions, stop reading lost ones, start reading new ones."""
        for partition in await self.partitions.renew():
            log.warning("Lost the lease on partition %d.", partition)
            task = self.partition_tasks.pop(partition, None)
            if task is not None:
                task.cancel()
            self.cache.drop_where(lambda i, p=partition: self.hub.partition_of(i) == p)
        for partition in await self.partitions.acquire_available():
            log.debug("Acquired the lease on partition %d.", partition)
            self.partition_tasks[partition] = self.spawn(self._partition_loop(partition))

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
            try:
                messages = await self.hub.receive(
                    queue, self.config.control_queue_batch_size,
                    min(CONTROL_LOCK, self.config.control_queue_visibility_timeout))
            except StorageError as exc:
                log.warning("Receiving from %s failed: %s", queue, exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
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
                batch = sorted(session.buffer.values(), key=lambda p: p.order)
                session.buffer.clear()
                session.active = batch
                async with self.slots:
                    try:
                        await self._episode(session.instance_id, batch)
                        self.crashes.pop(session.instance_id, None)
                    except CheckpointConflict as exc:
                        log.warning("%s The work item is abandoned and will be retried.", exc)
                        await self._give_back(session.instance_id, batch)
                    except (StorageError, WorkerError) as exc:
                        log.warning("Orchestration '%s' work item failed (%s); it will be "
                                    "retried.", session.instance_id, exc)
                        await self._give_back(session.instance_id, batch)
                    except VersionRejected as exc:
                        if session.instance_id not in self.rejected:
                            self.rejected.add(session.instance_id)
                            log.warning("%s", exc)
                        await self._give_back(session.instance_id, batch)
                session.active = []
        finally:
            session.task = None
            if session.buffer and self.active:
                session.task = self.spawn(self._run_session(session))
            else:
                self.sessions.pop(session.instance_id, None)

    async def _give_back(self, instance_id: str, batch: list[Pending]) -> None:
        """An episode did not commit: forget the cached history, return control messages
        to their queue, and route results handed over in memory through the queue."""
        self.cache.drop(instance_id)
        await self._abandon([p for p in batch if not p.local])
        await asyncio.gather(*(self.results.report_via_queue(p) for p in batch if p.local))

    async def _abandon(self, batch: list[Pending]) -> None:
        for pending in batch:
            try:
                await self.hub.abandon(pending.message,
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
            await self._repair_instance_row(instance_id, snapshot)
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

    async def _repair_instance_row(self, instance_id: str, snapshot: HistorySnapshot) -> None:
        """Messages for a finished instance: make sure its Instances row says so (a crash
        between a history commit and the row update leaves the row behind)."""
        final = engine.final_event(snapshot.events)
        if final is None:
            return
        row = await self.hub.read_instance(instance_id)
        status = engine.final_status(final)
        if row is None or row.get("RuntimeStatus") == status:
            return
        log.info("Repairing the status of '%s' from its history (%s).", instance_id, status)
        now = self.clock.now()
        await self.hub.merge_instance(instance_id, {
            "RuntimeStatus": status, "Output": engine.final_output(final),
            "LastUpdatedTime": now, "CompletedTime": now})

    def _version_allowed(self, episode: engine.Episode, now: datetime) -> bool:
        """Worker versioning (host.json defaultVersion, versionMatchStrategy): whether
        this host may run the instance's version. Checked only with a defaultVersion."""
        config = self.config
        if config.default_version is None or config.version_match_strategy == "None":
            return True
        version = engine.instance_version(episode)
        return engine.versioning.allows(version, config.default_version,
                                        config.version_match_strategy)

    async def _replay(self, episode: engine.Episode, now: datetime) -> engine.EpisodeResult:
        if not self._version_allowed(episode, now):
            version = engine.instance_version(episode)
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
                                         affinity=episode.instance_id, quiet_failure=True)
            returned = value.get("text")
        except FunctionInvocationError as exc:
            raised = exc.exc_message
            # Printed with the instance's one failure line, if this episode fails it.
            self.failure_details[episode.instance_id] = exc.traceback_text
        except InvocationTimeout as exc:
            return engine.fail(episode, str(exc), now)
        except WorkerError as exc:
            crashes = self.crashes.get(episode.instance_id, 0) + 1
            self.crashes[episode.instance_id] = crashes
            if crashes < MAX_ORCHESTRATOR_CRASHES:
                raise
            self.crashes.pop(episode.instance_id, None)
            return engine.fail(episode, f"{exc} (the orchestrator crashed its worker "
                                        f"{crashes} times in a row)", now)
        try:
            state = engine.parse_sdk_result(returned, raised)
        except ProtocolError as exc:
            return engine.fail(episode, str(exc), now)
        return engine.apply_state(episode, state, self.app.known(), now,
                                  self.config.max_orchestration_actions,
                                  self.config.default_version)


__all__ = ["CONTROL_LOCK", "LEASE_INTERVAL", "LocalResults", "OrchestrationWorker"]
