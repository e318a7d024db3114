"""Work items that can never be applied, moved aside: their messages go to the task hub's
poison queue (`<hub>-poison`, with the reason) and the instance is marked Failed, so an
instance that cannot progress is visible instead of redelivered forever. The same idea as
the framework's poison-message handling; the caller decides when (after
`orchestrations.POISON_ATTEMPTS` deliveries).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from runtime import console
from runtime.durable.inflight import Pending, WorkItems
from runtime.durable.taskhub import TaskHub
from runtime.errors import StorageError

log = console.get("durable")


class LocalResults(Protocol):
    """Activity results handed over in memory (the activity worker owns their items)."""

    async def report_via_queue(self, pending: Pending) -> bool:
        """Route a result through its instance's control queue instead."""


async def quarantine_work_item(hub: TaskHub, locks: WorkItems, results: LocalResults,
                               now: datetime, instance_id: str, batch: list[Pending],
                               attempts: int, reason: str) -> None:
    """Move `batch` aside after `attempts` deliveries that failed with `reason`: queued
    messages to the poison queue, results handed over in memory back through the queue
    (they belong to a healthy activity), and the instance's row to Failed with the reason.
    Storage errors are logged, not raised: the messages reappear and are tried again."""
    for pending in batch:
        try:
            if pending.local:
                await results.report_via_queue(pending)
            else:
                # The latest receipt first: forgetting the lock drops it with the entry.
                current = locks.current(pending.message)
                locks.forget_where(lambda m, key=pending.key: m.message_id == key)
                await hub.quarantine(current, reason)
        except StorageError as exc:
            log.warning("Could not move a message of '%s' aside: %s", instance_id, exc)
    try:
        await hub.merge_instance(instance_id, {
            "RuntimeStatus": "Failed", "LastUpdatedTime": now,
            "Output": json.dumps(f"The work item could not be applied after {attempts} "
                                 f"attempts and was moved to "
                                 f"{hub.names.poison_queue}: {reason}")})
    except StorageError as exc:
        log.warning("Could not mark '%s' Failed: %s", instance_id, exc)
    log.error("Instance '%s' failed: its work item could not be applied after %d "
              "attempts (%s); its messages are in %s.", instance_id, attempts, reason,
              hub.names.poison_queue)
