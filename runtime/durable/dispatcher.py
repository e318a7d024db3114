"""The durable execution loops: control-queue partitions (orchestrations) and the
work-item queue (activities).

One session per instance runs at a time; messages that arrive while it runs wait in the
session's buffer and form the next episode, so completions batch up naturally (fan-in).
A checkpoint follows the Azure Storage backend's order: send outgoing messages, append
history conditional on the sentinel ETag, update the Instances row, then delete the
consumed messages. A crash anywhere in between leaves the messages in the queue, and the
episode is replayed; duplicates are dropped by the engine.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from runtime import logs
from runtime.config import DurableTaskConfig
from runtime.durable import engine, history
from runtime.durable.leases import PartitionLeases
from runtime.durable.taskhub import QueueMessage, TaskHub
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
ORCHESTRATION_REASON = "(Orchestrator)"


class Invoker(Protocol):
    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = ...) -> dict[str, Any]: ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def abandon_delay(dequeue_count: int) -> float:
    """The backend's backoff for abandoned messages: 2^DequeueCount s, capped at 600 s.
    Locally a shorter cap keeps out-of-order retries snappy."""
    return float(min(2 ** max(0, dequeue_count - 1), 60))


def _for_other_execution(message: QueueMessage, current: str | None) -> bool:
    if current is None or not message.execution_id or message.execution_id == current:
        return False
    return message.event.get("EventType") != history.EventType.ExecutionStarted


@dataclass
class Session:
    instance_id: str
    buffer: dict[str, QueueMessage] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


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
        self.orchestration_slots = asyncio.Semaphore(config.max_concurrent_orchestrator_functions)
        self.activity_slots = asyncio.Semaphore(config.max_concurrent_activity_functions)
        self.partition_wake = [asyncio.Event() for _ in range(hub.partition_count)]
        self.workitem_wake = asyncio.Event()
        self.partition_tasks: dict[int, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.running = False
        self.on_status_change: Callable[[str, str], None] | None = None

    # -- wiring --------------------------------------------------------------------

    def set_functions(self, index: FunctionIndex, invoker: Invoker) -> None:
        self.index = index
        self.invoker = invoker

    def notify_instance(self, instance_id: str) -> None:
        """Work was enqueued for an instance: skip the poll delay on its partition."""
        self.partition_wake[self.hub.partition_of(instance_id)].set()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        await self._balance_leases()
        self._spawn(self._lease_loop())
        self._spawn(self._workitem_loop())

    async def stop(self) -> None:
        self.running = False
        for event in self.partition_wake:
            event.set()
        self.workitem_wake.set()
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.leases.release_all()
        except HostError as exc:
            log.warning("Could not release partition leases: %s", exc)

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
            except (StorageError, HostError) as exc:
                log.warning("Partition lease renewal failed: %s", exc)

    async def _balance_leases(self) -> None:
        lost = await self.leases.renew()
        for partition in lost:
            log.warning("Lost the lease on partition %d.", partition)
            task = self.partition_tasks.pop(partition, None)
            if task is not None:
                task.cancel()
        for partition in await self.leases.acquire_available():
            log.debug("Acquired the lease on partition %d.", partition)
            self.partition_tasks[partition] = self._spawn(self._partition_loop(partition))

    # -- control queues ------------------------------------------------------------

    async def _partition_loop(self, partition: int) -> None:
        queue = self.hub.control_queue(partition)
        wake = self.partition_wake[partition]
        delay = MIN_POLL
        while self.running and partition in self.leases.owned:
            wake.clear()
            try:
                messages = await self.hub.receive(queue, self.config.control_queue_batch_size,
                                                  self.config.control_queue_visibility_timeout)
            except StorageError as exc:
                log.warning("Receiving from %s failed: %s", queue, exc)
                messages = []
            if messages:
                delay = MIN_POLL
                self._accept(messages)
                continue
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2 * random.uniform(0.8, 1.2),
                        self.config.max_queue_polling_interval, 1.0)

    def _accept(self, messages: list[QueueMessage]) -> None:
        ordered = sorted(messages, key=lambda m: (m.inserted_on, m.body.get("SequenceNumber", 0)))
        for message in ordered:
            session = self.sessions.get(message.instance_id)
            if session is None:
                session = self.sessions[message.instance_id] = Session(message.instance_id)
            session.buffer[message.message_id] = message  # a redelivered copy replaces the old
            if session.task is None:
                session.task = self._spawn(self._run_session(session))

    async def _run_session(self, session: Session) -> None:
        try:
            while session.buffer and self.running:
                batch = sorted(session.buffer.values(),
                               key=lambda m: (m.inserted_on, m.body.get("SequenceNumber", 0)))
                session.buffer.clear()
                async with self.orchestration_slots:
                    try:
                        await self._episode(session.instance_id, batch)
                    except CheckpointConflict as exc:
                        log.warning("%s Abandoning the work item; it will be retried.", exc)
                        await self._abandon(batch)
                    except (StorageError, WorkerError) as exc:
                        log.warning("Orchestration '%s' work item failed (%s); it will be "
                                    "retried.", session.instance_id, exc)
                        await self._abandon(batch)
        finally:
            session.task = None
            if session.buffer and self.running:
                session.task = self._spawn(self._run_session(session))
            else:
                self.sessions.pop(session.instance_id, None)

    async def _abandon(self, messages: list[QueueMessage]) -> None:
        for message in messages:
            try:
                await self.hub.abandon(message, abandon_delay(message.dequeue_count))
            except StorageError:
                pass  # it reappears when its visibility timeout ends anyway

    async def _episode(self, instance_id: str, messages: list[QueueMessage]) -> None:
        snapshot = await self.hub.load_history(instance_id)
        stale = [m for m in messages if _for_other_execution(m, snapshot.execution_id)]
        if stale:
            # Replies to an execution that has since been replaced (id reuse): drop them.
            await self._delete(stale)
            messages = [m for m in messages if m not in stale]
            if not messages:
                return
        now = _utcnow()
        episode = engine.plan_episode(instance_id, snapshot.events,
                                      [m.event for m in messages], now)
        deferred = [messages[i] for i in episode.deferred]
        if deferred:
            await self._abandon(deferred)
        consumed = [m for i, m in enumerate(messages) if i not in set(episode.deferred)]
        if episode.terminated_reason is not None:
            result = engine.terminate(episode, now)
        elif episode.needs_replay:
            result = await self._replay(episode, now)
        else:
            await self._delete(consumed)
            return
        await self._checkpoint(episode, snapshot, result, consumed, now)

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
                                              timeout=self.function_timeout)
            returned = value.get("text")
        except FunctionInvocationError as exc:
            raised = exc.exc_message
        except InvocationTimeout as exc:
            return engine.fail(episode, str(exc), now)
        try:
            state = engine.parse_sdk_result(returned, raised)
        except ProtocolError as exc:
            return engine.fail(episode, str(exc), now)
        activities = self.index.durable_names("activityTrigger")
        return engine.apply_state(episode, state, activities, now,
                                  self.config.max_orchestration_actions)

    async def _checkpoint(self, episode: engine.Episode, snapshot: Any,
                          result: engine.EpisodeResult, consumed: list[QueueMessage],
                          now: datetime) -> None:
        instance_id = episode.instance_id
        execution_id = episode.execution_id or ""
        episode_number = sum(1 for e in snapshot.events
                             if e.get("EventType") == history.EventType.OrchestratorStarted)
        # 1. outgoing messages (the queued copies are the source of truth after a crash)
        await asyncio.gather(*(self._send(instance_id, execution_id, message, episode_number)
                               for message in result.outgoing))
        # 2. history, conditional on the sentinel ETag
        await self.hub.append_history(instance_id, execution_id, len(episode.past_events),
                                      result.new_events, snapshot.etag)
        # 3. the Instances row
        await self.hub.merge_instance(instance_id, self._instance_fields(episode, result, now))
        # 4. the consumed messages
        await self._delete(consumed)
        for message in result.outgoing:
            if message.kind == "activity":
                self.workitem_wake.set()
            elif message.visible_at is None:
                self.notify_instance(message.target_instance_id)
        if result.runtime_status != "Running":
            log.info("Orchestration '%s' (%s) %s.", episode.orchestrator_name, instance_id,
                     result.runtime_status.lower())

    async def _send(self, instance_id: str, execution_id: str,
                    message: engine.OutgoingMessage, episode: int) -> None:
        if message.kind == "activity":
            await self.hub.send_activity(instance_id, execution_id, message.event,
                                         episode=episode)
            return
        delay = 0.0
        if message.visible_at is not None:
            delay = max(0.0, (message.visible_at - _utcnow()).total_seconds())
        await self.hub.send_to_instance(message.target_instance_id, message.target_execution_id,
                                        message.event, visibility_delay=delay,
                                        sender=(instance_id, execution_id), episode=episode)

    @staticmethod
    def _instance_fields(episode: engine.Episode, result: engine.EpisodeResult,
                         now: datetime) -> dict[str, Any]:
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

    async def _delete(self, messages: list[QueueMessage]) -> None:
        await asyncio.gather(*(self.hub.delete_message(m) for m in messages))

    # -- activities ----------------------------------------------------------------

    async def _workitem_loop(self) -> None:
        queue = self.hub.names.workitems
        delay = MIN_POLL
        while self.running:
            self.workitem_wake.clear()
            free = self.config.max_concurrent_activity_functions - self._active_activities()
            if free <= 0:
                await asyncio.sleep(MIN_POLL)
                continue
            try:
                messages = await self.hub.receive(
                    queue, min(32, free), self.config.work_item_queue_visibility_timeout)
            except StorageError as exc:
                log.warning("Receiving activities failed: %s", exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
                    self._spawn(self._run_activity(message))
                continue
            try:
                await asyncio.wait_for(self.workitem_wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2 * random.uniform(0.8, 1.2),
                        self.config.max_queue_polling_interval, 1.0)

    def _active_activities(self) -> int:
        return self.config.max_concurrent_activity_functions - self.activity_slots._value

    async def _run_activity(self, message: QueueMessage) -> None:
        async with self.activity_slots:
            event = message.event
            scheduled_id = int(event.get("EventId", -1))
            name = str(event.get("Name"))
            try:
                completion = await self._execute_activity(name, scheduled_id, event, message)
            except WorkerError as exc:
                log.warning("Activity '%s' of '%s' was interrupted (%s); it will be retried.",
                            name, message.instance_id, exc)
                await self._abandon([message])
                return
            try:
                await self.hub.send_to_instance(message.instance_id, message.execution_id,
                                                completion)
                await self.hub.delete_message(message)
            except StorageError as exc:
                log.warning("Could not report activity '%s' of '%s' (%s); it will be "
                            "retried.", name, message.instance_id, exc)
                return
            self.notify_instance(message.instance_id)

    async def _execute_activity(self, name: str, scheduled_id: int, event: dict[str, Any],
                                message: QueueMessage) -> dict[str, Any]:
        now = _utcnow
        spec = self.index.durable("activityTrigger", name)
        if spec is None or self.invoker is None:
            known = ", ".join(f"'{n}'" for n in self.index.durable_names("activityTrigger"))
            reason = (f"The function '{name}' doesn't exist, is disabled, or is not an activity "
                      f"function. Additional info: The following are the known activity "
                      f"functions: {known}.")
            return history.task_failed(scheduled_id, reason, None, now())
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
            return history.task_failed(scheduled_id, reason, details, now())
        except InvocationTimeout as exc:
            reason = f"Activity function '{name}' failed: {exc}"
            return history.task_failed(scheduled_id, reason, None, now())
        return history.task_completed(scheduled_id, str(value.get("text", "null")), now())
