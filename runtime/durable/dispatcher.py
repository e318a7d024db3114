"""The durable execution loops: control-queue partitions (orchestrations) and the
work-item queue (activities).

One session per instance runs at a time; events that arrive while it runs wait in the
session's buffer and form the next episode, so completions batch up naturally (fan-in).
A checkpoint follows the Azure Storage backend's order: send outgoing messages, append
history conditional on the sentinel ETag, update the Instances row, then delete the
consumed messages. A crash anywhere in between leaves the messages in their queues and
the episode is replayed; duplicates are dropped by the engine.

What keeps polling and storage round trips off the critical path of a step, without
weakening that guarantee:
- an activity this host schedules is sent hidden (as if received) and run at once when
  an activity slot is free; the queued copy is the source of truth after a crash;
- an activity's result for an instance this host owns goes straight into that instance's
  session instead of through its control queue; the work item is deleted only after the
  checkpoint that records the result, so a crash re-runs the activity (at least once);
- the history of an instance is cached after each checkpoint while this host owns its
  partition; the sentinel ETag on the next write proves the cache is still current;
- the poll loops sleep only when their queues are idle, and wake at once when this
  process enqueues work for them.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timezone
from typing import Any, Protocol

from runtime import logs
from runtime.config import DurableTaskConfig
from runtime.durable import engine, history
from runtime.durable.inflight import (
    HistoryCache,
    OrderedWrites,
    Pending,
    Session,
    WorkItems,
)
from runtime.durable.leases import PartitionLeases
from runtime.durable.taskhub import HistorySnapshot, QueueMessage, TaskHub
from runtime.errors import (
    CheckpointConflict,
    FunctionInvocationError,
    HostError,
    InvocationTimeout,
    ProtocolError,
    StorageError,
    WorkerError,
)
from runtime.functions import FunctionIndex

log = logs.get("durable")

LEASE_INTERVAL = 10.0
MIN_POLL = 0.05
MAX_IDLE_POLL = 1.0  # locally, a second is the most a new message waits for a poll
LOCAL_LOCK = 30.0  # the longest an activity this host runs stays hidden between renewals
# Control messages are locked for at most a minute: a crashed host's messages come back
# soon, and one delivered twice while still buffered is a duplicate the engine drops.
CONTROL_LOCK = 60.0
MAX_ACTIVITY_ATTEMPTS = 5  # attempts interrupted by a dying worker before giving up
MAX_ORCHESTRATOR_CRASHES = 3


class Invoker(Protocol):
    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = ..., affinity: str | None = ...) -> dict[str, Any]: ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def abandon_delay(dequeue_count: int) -> float:
    """The backend's backoff for abandoned messages is 2^DequeueCount s, capped at
    600 s; locally a one-minute cap keeps retries visible to a developer."""
    return float(min(2 ** max(0, dequeue_count - 1), 60))


class Dispatcher:
    def __init__(self, hub: TaskHub, leases: PartitionLeases, config: DurableTaskConfig,
                 *, function_timeout: float | None = None) -> None:
        self.hub = hub
        self.leases = leases
        self.config = config
        self.function_timeout = function_timeout
        self.index = FunctionIndex(())
        self.invoker: Invoker | None = None
        self.sessions: dict[str, Session] = {}
        self.cache = HistoryCache()
        self.work_items = WorkItems(
            hub, min(LOCAL_LOCK, config.work_item_queue_visibility_timeout))
        self.writes = OrderedWrites(self._spawn)
        self.orchestration_slots = asyncio.Semaphore(config.max_concurrent_orchestrator_functions)
        self.activities_running = 0
        self.workitems_starved = False  # the work-item poller waits for a free slot
        self.crashes: dict[str, int] = {}
        self.partition_wake = [asyncio.Event() for _ in range(hub.partition_count)]
        self.workitem_wake = asyncio.Event()
        self.partition_tasks: dict[int, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.running = False

    # -- wiring --------------------------------------------------------------------

    def set_functions(self, index: FunctionIndex, invoker: Invoker) -> None:
        self.index = index
        self.invoker = invoker

    def notify_instance(self, instance_id: str) -> None:
        """Work was enqueued for an instance: skip the poll delay on its partition."""
        self.partition_wake[self.hub.partition_of(instance_id)].set()

    def owns(self, instance_id: str) -> bool:
        return self.running and self.hub.partition_of(instance_id) in self.leases.owned

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        await self._balance_leases()
        self._spawn(self._lease_loop())
        self._spawn(self._workitem_loop())
        self._spawn(self._renewal_loop())

    async def stop(self) -> None:
        self.running = False
        try:
            await asyncio.wait_for(self.writes.drain(), 10)
        except asyncio.TimeoutError:
            pass
        for event in self.partition_wake:
            event.set()
        self.workitem_wake.set()
        held = [p for s in self.sessions.values() for p in (*s.active, *s.buffer.values())]
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await asyncio.wait_for(self._hand_back(held), 5)
        except asyncio.TimeoutError:
            log.warning("Some messages could not be handed back; they are delivered again "
                        "when their locks run out.")
        try:
            await self.leases.release_all()
        except HostError as exc:
            log.warning("Could not release partition leases: %s", exc)

    async def _hand_back(self, held: list[Pending]) -> None:
        """At shutdown, make the messages this host held visible again at once, so that
        the next host (or this one, restarted) need not wait for their locks to run out.
        Ones whose episode committed meanwhile are already gone, which is fine."""
        async def visible(message: QueueMessage) -> None:
            try:
                await self.hub.abandon(message, 0)
            except StorageError:
                pass
        control = [p.message for p in held if not p.local]
        items = list(self.work_items.held)
        await asyncio.gather(*(visible(m) for m in control),
                             *(self.work_items.release_id(i, 0) for i in items))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- leases --------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while self.running:
            await asyncio.sleep(LEASE_INTERVAL)
            try:
                await self._balance_leases()
            except HostError as exc:
                log.warning("Partition lease renewal failed: %s", exc)

    async def _balance_leases(self) -> None:
        lost = await self.leases.renew()
        for partition in lost:
            log.warning("Lost the lease on partition %d.", partition)
            task = self.partition_tasks.pop(partition, None)
            if task is not None:
                task.cancel()
            self.cache.drop_where(lambda i, p=partition: self.hub.partition_of(i) == p)
        for partition in await self.leases.acquire_available():
            log.debug("Acquired the lease on partition %d.", partition)
            self.partition_tasks[partition] = self._spawn(self._partition_loop(partition))

    async def _renewal_loop(self) -> None:
        while self.running:
            await asyncio.sleep(self.work_items.lock / 6)
            await self.work_items.renew_expiring()

    # -- control queues ------------------------------------------------------------

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
        wake = self.partition_wake[partition]
        delay = MIN_POLL
        while self.running and partition in self.leases.owned:
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

    def _enqueue(self, instance_id: str, pending: Pending) -> None:
        session = self.sessions.get(instance_id)
        if session is None:
            session = self.sessions[instance_id] = Session(instance_id)
        session.buffer[pending.key] = pending  # a redelivered copy replaces the old one
        if session.task is None:
            session.task = self._spawn(self._run_session(session))

    async def _run_session(self, session: Session) -> None:
        try:
            while session.buffer and self.running:
                batch = sorted(session.buffer.values(), key=lambda p: p.order)
                session.buffer.clear()
                session.active = batch
                async with self.orchestration_slots:
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
                session.active = []
        finally:
            session.task = None
            if session.buffer and self.running:
                session.task = self._spawn(self._run_session(session))
            else:
                self.sessions.pop(session.instance_id, None)

    async def _give_back(self, instance_id: str, batch: list[Pending]) -> None:
        """An episode did not commit: forget the cached history, return control messages
        to their queue, and route results handed over in memory through the queue."""
        self.cache.drop(instance_id)
        await self._abandon([p for p in batch if not p.local])
        await asyncio.gather(*(self._report_via_queue(p) for p in batch if p.local))

    async def _abandon(self, batch: list[Pending]) -> None:
        for pending in batch:
            try:
                await self.hub.abandon(pending.message,
                                       abandon_delay(pending.message.dequeue_count))
            except StorageError:
                pass  # it reappears when its visibility timeout ends anyway

    async def _delete(self, batch: list[Pending]) -> None:
        async def one(pending: Pending) -> None:
            if pending.local:
                await self.work_items.delete(pending.message)
            else:
                await self.hub.delete_message(pending.message)
        await asyncio.gather(*(one(p) for p in batch))

    async def _load(self, instance_id: str) -> HistorySnapshot:
        cached = self.cache.get(instance_id)
        return cached if cached is not None else await self.hub.load_history(instance_id)

    async def _episode(self, instance_id: str, batch: list[Pending]) -> None:
        snapshot = await self._load(instance_id)
        stale = [p for p in batch if _for_other_execution(p, snapshot.execution_id)]
        if stale:
            # Replies to an execution that has since been replaced (id reuse): drop them.
            await self._delete(stale)
            batch = [p for p in batch if p not in stale]
            if not batch:
                return
        now = _utcnow()
        episode = engine.plan_episode(instance_id, snapshot.events,
                                      [p.event for p in batch], now)
        deferred_indexes = set(episode.deferred)
        deferred = [p for i, p in enumerate(batch) if i in deferred_indexes]
        consumed = [p for i, p in enumerate(batch) if i not in deferred_indexes]
        if deferred:
            # Out of order: a result whose scheduling is not in history yet. Retry later.
            self.cache.drop(instance_id)
            await self._abandon([p for p in deferred if not p.local])
            await asyncio.gather(*(self._report_via_queue(p) for p in deferred if p.local))
        if episode.terminated_reason is not None:
            result = engine.terminate(episode, now)
        elif episode.needs_replay:
            result = await self._replay(episode, now)
        else:
            await self._repair_instance_row(instance_id, snapshot)
            await self._delete(consumed)
            return
        await self._checkpoint(episode, snapshot, result, consumed)

    async def _repair_instance_row(self, instance_id: str, snapshot: HistorySnapshot) -> None:
        """Messages for a finished instance: make sure its Instances row says so (a crash
        between a history commit and the row update leaves the row behind)."""
        final = next((e for e in reversed(snapshot.events) if e.get("EventType") in (
            history.EventType.ExecutionCompleted, history.EventType.ExecutionTerminated)), None)
        if final is None:
            return
        row = await self.hub.read_instance(instance_id)
        status = engine.final_status(final)
        if row is None or row.get("RuntimeStatus") == status:
            return
        log.info("Repairing the status of '%s' from its history (%s).", instance_id, status)
        await self.hub.merge_instance(instance_id, {
            "RuntimeStatus": status, "Output": engine.final_output(final),
            "LastUpdatedTime": _utcnow(), "CompletedTime": _utcnow()})

    async def _replay(self, episode: engine.Episode, now: datetime) -> engine.EpisodeResult:
        spec = self.index.durable("orchestrationTrigger", episode.orchestrator_name)
        if spec is None or self.invoker is None:
            known = ", ".join(f"'{n}'" for n in self.index.durable_names("orchestrationTrigger"))
            return engine.fail(episode, (
                f"The function '{episode.orchestrator_name}' doesn't exist, is disabled, or is "
                f"not an orchestrator function. Additional info: The following are the known "
                f"orchestrator functions: {known}."), now)
        context = engine.build_context(episode)
        trigger_name = str(spec.trigger.get("name", "context"))
        returned: str | None = None
        raised: str | None = None
        try:
            value = await self.invoker.invoke(spec.name, {trigger_name: context},
                                              timeout=self.function_timeout,
                                              affinity=episode.instance_id)
            returned = value.get("text")
        except FunctionInvocationError as exc:
            raised = exc.exc_message
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
        activities = self.index.durable_names("activityTrigger")
        return engine.apply_state(episode, state, activities, now,
                                  self.config.max_orchestration_actions)

    async def _checkpoint(self, episode: engine.Episode, snapshot: HistorySnapshot,
                          result: engine.EpisodeResult, consumed: list[Pending]) -> None:
        instance_id = episode.instance_id
        execution_id = episode.execution_id or ""
        episode_number = sum(1 for e in episode.past_events
                             if e.get("EventType") == history.EventType.OrchestratorStarted)
        # 1. outgoing messages (the queued copies are the source of truth after a crash)
        await asyncio.gather(*(self._send(instance_id, execution_id, message, episode_number)
                               for message in result.outgoing))
        # 2. history, conditional on the sentinel ETag
        etag = await self.hub.append_history(instance_id, execution_id,
                                             len(episode.past_events), result.new_events,
                                             snapshot.etag)
        if result.runtime_status == "Running":
            self.cache.put(instance_id, HistorySnapshot(
                [*episode.past_events, *result.new_events], etag, execution_id))
        else:
            self.cache.drop(instance_id)
        # 3. the Instances row, then 4. the consumed messages, in the background: the
        # history commit above is the checkpoint, and the next episode need not wait.
        fields = _instance_fields(episode, result)

        async def finish() -> None:
            await self.hub.merge_instance(instance_id, fields)
            await self._delete(consumed)
        self.writes.submit(instance_id, finish)
        for message in result.outgoing:
            if message.kind == "orchestration" and message.visible_at is None:
                self.notify_instance(message.target_instance_id)
        if result.runtime_status != "Running":
            log.info("Orchestration '%s' (%s) %s.", episode.orchestrator_name, instance_id,
                     result.runtime_status.lower())

    async def _send(self, instance_id: str, execution_id: str,
                    message: engine.OutgoingMessage, episode: int) -> None:
        if message.kind == "activity":
            if not self._reserve_activity_slot():
                await self.hub.send_activity(instance_id, execution_id, message.event,
                                             episode=episode)
                self.workitem_wake.set()
                return
            # Run it now, while its hidden work item is being written: the result waits in
            # the session until this checkpoint (which needs the work item) has committed.
            outcome = self._spawn(self._attempt_activity(message.event))
            try:
                sent = await self.hub.send_activity(
                    instance_id, execution_id, message.event, episode=episode,
                    visibility_delay=self.work_items.lock)
            except BaseException:
                self._spawn(self._discard_outcome(outcome))
                raise
            self.work_items.hold(sent, self.work_items.lock)
            self._spawn(self._hand_over(sent, outcome))
            return
        delay = 0.0
        if message.visible_at is not None:
            delay = max(0.0, (message.visible_at - _utcnow()).total_seconds())
        await self.hub.send_to_instance(message.target_instance_id, message.target_execution_id,
                                        message.event, visibility_delay=delay,
                                        sender=(instance_id, execution_id), episode=episode)

    # -- activities ----------------------------------------------------------------

    def _reserve_activity_slot(self) -> bool:
        if self.activities_running >= self.config.max_concurrent_activity_functions:
            return False
        self.activities_running += 1
        return True

    async def _workitem_loop(self) -> None:
        queue = self.hub.names.workitems
        visibility = self.work_items.lock
        delay = MIN_POLL
        while self.running:
            self.workitem_wake.clear()
            free = self.config.max_concurrent_activity_functions - self.activities_running
            self.workitems_starved = free <= 0
            if self.workitems_starved:
                await self._poll(self.workitem_wake, MAX_IDLE_POLL)
                continue
            try:
                messages = await self.hub.receive(queue, min(32, free), visibility)
            except StorageError as exc:
                log.warning("Receiving activities failed: %s", exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
                    self.activities_running += 1
                    self.work_items.hold(message, visibility)
                    self._spawn(self._run_activity(message))
                continue
            delay = await self._poll(self.workitem_wake, delay)

    async def _run_activity(self, message: QueueMessage) -> None:
        """Run a received activity (its slot is already reserved) and hand its result over."""
        await self._hand_over(message, self._spawn(self._attempt_activity(message.event)))

    async def _attempt_activity(self, event: dict[str, Any]) -> dict[str, Any] | WorkerError:
        """The activity's TaskCompleted/TaskFailed, or the WorkerError that interrupted it.
        Frees the activity slot when done."""
        try:
            return await self._execute_activity(str(event.get("Name")), event)
        except WorkerError as exc:
            return exc
        finally:
            self.activities_running -= 1
            if self.workitems_starved:
                self.workitem_wake.set()  # the poller waits for a free slot

    async def _discard_outcome(self, outcome: asyncio.Task[Any]) -> None:
        await asyncio.gather(outcome, return_exceptions=True)

    async def _hand_over(self, message: QueueMessage,
                         outcome: asyncio.Task[dict[str, Any] | WorkerError]) -> None:
        completion = await outcome
        event = message.event
        if isinstance(completion, WorkerError):
            name = str(event.get("Name"))
            if message.dequeue_count + 1 < MAX_ACTIVITY_ATTEMPTS:
                log.warning("Activity '%s' of '%s' was interrupted (%s); it will be retried.",
                            name, message.instance_id, completion)
                await self._release_work_item(message)
                return
            completion = history.task_failed(
                int(event.get("EventId", -1)),
                f"Activity function '{name}' failed: {completion}", None, _utcnow())
        pending = Pending(completion, message, local=True)
        if self.owns(message.instance_id):
            self._enqueue(message.instance_id, pending)
        else:
            await self._report_via_queue(pending)

    async def _release_work_item(self, message: QueueMessage) -> None:
        try:
            await self.work_items.release(message, abandon_delay(message.dequeue_count + 1))
        except StorageError:
            pass  # its lock runs out and it is received again anyway

    async def _report_via_queue(self, pending: Pending) -> None:
        """Send an activity result to its instance's control queue, then delete the work
        item: the at-least-once path, used when the result cannot go in memory."""
        message = pending.message
        try:
            await self.hub.send_to_instance(message.instance_id, message.execution_id,
                                            pending.event)
            await self.work_items.delete(message)
        except StorageError as exc:
            log.warning("Could not report an activity result of '%s' (%s); the activity "
                        "will run again.", message.instance_id, exc)
            return
        self.notify_instance(message.instance_id)

    async def _execute_activity(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        scheduled_id = int(event.get("EventId", -1))
        spec = self.index.durable("activityTrigger", name)
        if spec is None or self.invoker is None:
            return history.task_failed(
                scheduled_id, engine.unknown_activity_message(
                    name, self.index.durable_names("activityTrigger")), None, _utcnow())
        trigger_name = str(spec.trigger.get("name", "input"))
        input_text = event.get("Input")
        try:
            value = await self.invoker.invoke(
                spec.name, {trigger_name: "null" if input_text is None else input_text},
                timeout=self.function_timeout)
        except FunctionInvocationError as exc:
            reason = f"Activity function '{name}' failed: {exc.exc_type}: {exc.exc_message}"
            details = json.dumps({"ClassName": exc.exc_type, "Message": exc.exc_message,
                                  "StackTrace": exc.traceback_text})
            return history.task_failed(scheduled_id, reason, details, _utcnow())
        except InvocationTimeout as exc:
            return history.task_failed(scheduled_id, f"Activity function '{name}' failed: "
                                                     f"{exc}", None, _utcnow())
        return history.task_completed(scheduled_id, str(value.get("text", "null")), _utcnow())


def _for_other_execution(pending: Pending, current: str | None) -> bool:
    if current is None or not pending.execution_id or pending.execution_id == current:
        return False
    return pending.event.get("EventType") != history.EventType.ExecutionStarted


def _instance_fields(episode: engine.Episode, result: engine.EpisodeResult) -> dict[str, Any]:
    now = _utcnow()
    fields: dict[str, Any] = {
        "ExecutionId": episode.execution_id,
        "LastUpdatedTime": now,
        "RuntimeStatus": result.runtime_status,
        "CustomStatus": result.custom_status_text or "null",
        "Name": episode.orchestrator_name,
    }
    if result.runtime_status != "Running":
        fields["Output"] = result.output_text
        fields["CompletedTime"] = now
    return fields


__all__ = ["Dispatcher", "Pending", "abandon_delay"]
