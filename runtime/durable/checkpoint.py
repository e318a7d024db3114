"""The checkpoint of an orchestration episode, in DurableTask.AzureStorage's order
(AzureStorageOrchestrationService.CompleteTaskOrchestrationWorkItemAsync):

1. send the outgoing messages (activities, timers, events to other instances): after a
   crash their queued copies are the source of truth, and duplicates are dropped later;
2. append history, conditional on the sentinel ETag read with it: this is the
   checkpoint; CheckpointConflict means another writer got there first;
3. merge the Instances row, then 4. delete the consumed messages. Steps 3 and 4 run in
   the background, in order per instance, off the critical path of the next episode; if
   the process dies first, the messages come back and the row is repaired from history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol

from runtime import console
from runtime.clock import Clock
from runtime.durable import engine
from runtime.durable.history import EventType
from runtime.durable.inflight import HistoryCache, OrderedWrites, Pending, WorkItems
from runtime.durable.taskhub import HistorySnapshot, QueueMessage, TaskHub

log = console.get("durable")


class ActivityPort(Protocol):
    """What the checkpoint needs of the activity worker."""

    async def schedule(self, instance_id: str, execution_id: str, event: dict[str, Any],
                       episode: int) -> None:
        """Send (and maybe run at once) an activity the episode scheduled."""

    async def delete(self, message: QueueMessage) -> None:
        """Delete the work item of a result handed over in memory."""


CommitObserver = Callable[[engine.Episode, engine.EpisodeResult], None]


class Checkpoint:
    """Commits episodes. Collaborators are handed in: the hub, the activity worker
    (which may run an activity at once), the history cache, the ordered background
    writes, and `notify` for instances that were sent work. `observers` are called
    with each episode and its result once its history is written (the test harness
    learns which instances wait for events)."""

    def __init__(self, hub: TaskHub, clock: Clock, activities: ActivityPort,
                 cache: HistoryCache, writes: OrderedWrites,
                 notify: Callable[[str], None]) -> None:
        self.hub = hub
        self.clock = clock
        self.activities = activities
        self.cache = cache
        self.writes = writes
        self.notify = notify
        # The control messages' locks (their latest receipts), set by the orchestration
        # worker that holds them.
        self.locks: WorkItems | None = None
        # Where a durable timer this host sent goes when it is due (the orchestration
        # worker); None: the queue delivers it.
        self.timer_due: Callable[[QueueMessage], None] | None = None
        self.observers: list[CommitObserver] = []

    async def repair_instance_row(self, instance_id: str, snapshot: HistorySnapshot) -> None:
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

    async def delete(self, consumed: list[Pending]) -> list[Pending]:
        """Delete consumed messages: control messages, and the work items of activity
        results handed over in memory. Returns the ones that are gone (the others are
        held by another receiver now and will be delivered again)."""
        async def one(pending: Pending) -> bool:
            if pending.local:
                await self.activities.delete(pending.message)
                return True
            if self.locks is not None:
                return await self.locks.delete(pending.message)
            return await self.hub.delete_message(pending.message)
        gone = await asyncio.gather(*(one(p) for p in consumed))
        return [p for p, ok in zip(consumed, gone, strict=True) if ok]

    async def commit(self, episode: engine.Episode, snapshot: HistorySnapshot,
                     result: engine.EpisodeResult, consumed: list[Pending], *,
                     details: str | None = None) -> None:
        """Record an episode (module docstring: the order of the writes). An instance
        that ends is reported in one console line; a failure with its reason and
        `details` (the frames of user code behind it)."""
        instance_id = episode.instance_id
        execution_id = episode.execution_id or ""
        number = episode.number
        # 1. outgoing messages (the queued copies are the source of truth after a crash)
        await asyncio.gather(*(self._send(instance_id, execution_id, message, number)
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
        for observer in self.observers:
            observer(episode, result)
        # 3. the Instances row, then 4. the consumed messages, in the background.
        fields = engine.instance_fields(episode, result, self.clock.now())

        async def finish() -> None:
            await self.hub.merge_instance(instance_id, fields)
            await self.delete(consumed)
        self.writes.submit(instance_id, finish)
        for message in result.outgoing:
            if message.kind == "orchestration" and message.visible_at is None:
                self.notify(message.target_instance_id)
        if result.runtime_status == "Failed":
            log.error("%s", failure_line(episode.orchestrator_name, instance_id,
                                         result.output_text, details))
        else:
            change = _status_change(episode, result.runtime_status)
            if change is not None:
                log.info("Orchestration '%s' (%s) %s.", episode.orchestrator_name,
                         instance_id, change)

    async def _send(self, instance_id: str, execution_id: str,
                    message: engine.OutgoingMessage, episode: int) -> None:
        if message.kind == "activity":
            await self.activities.schedule(instance_id, execution_id, message.event, episode)
            return
        sent = await self.hub.send_to_instance(
            message.target_instance_id, message.target_execution_id, message.event,
            visible_at=message.visible_at, sender=(instance_id, execution_id),
            episode=episode)
        if message.visible_at is not None and self.timer_due is not None:
            # A durable timer. The queue shows it only after whole seconds and the idle
            # poller may look a second later; at its exact time it goes straight into the
            # instance's session when this host owns it (the queued copy, deleted with
            # the receipt the send returned, stays the source of truth after a crash).
            due = self.timer_due
            self.clock.call_at(message.visible_at, lambda: due(sent))


def failure_line(name: str, instance_id: str, output_text: str | None,
                 details: str | None) -> str:
    """`Orchestration 'X' (id) failed: <reason>`: the reason as the status API's output
    says it, without the details the SDK appends to an activity's error (its class and
    stack as JSON, already printed when the activity failed), then `details`."""
    reason = output_text or ""
    try:
        decoded = json.loads(reason)
        reason = decoded if isinstance(decoded, str) else reason
    except ValueError:
        pass
    prefix = f"Orchestrator function '{name}' failed: "
    reason = reason.removeprefix(prefix).split("\n", 1)[0].rstrip()
    line = f"Orchestration '{name}' ({instance_id}) failed: {reason}"
    return f"{line}\n{details.rstrip()}" if details and details.strip() else line




def _status_change(episode: engine.Episode, status: str) -> str | None:
    """What the console says of an episode that did not fail: the end of the execution
    (completed, terminated, continued as new), and a suspension or a resumption when the
    episode holds its event, once: an event that arrives while suspended, or the episode
    of an instance that runs on, says nothing."""
    def received(kind: EventType) -> bool:
        return any(e.get("EventType") == kind for e in episode.new_events)
    if status == "Suspended":
        return "suspended" if received(EventType.ExecutionSuspended) else None
    if status == "Running":
        return "resumed" if received(EventType.ExecutionResumed) else None
    return status.lower()

__all__ = ["ActivityPort", "Checkpoint", "CommitObserver", "failure_line"]
