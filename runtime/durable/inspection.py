"""Reading what explains an instance's state, for `funclocal instances why` and `show`.

Everything here only looks: instance rows and history, queue messages peeked at (never
received, so no host loses a message or a lock), the partitions' lease blobs (never
acquired), and each running host's function list from its `/admin/functions`. The
replay of the code, to learn which events it waits for, runs in a worker process of
the app in the current folder (`replaycheck.py`). `diagnosis.explain` turns the facts
into reasons.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from runtime.clock import Clock, SystemClock
from runtime.durable import diagnosis
from runtime.durable.app import ACTIVITY_TRIGGER, ORCHESTRATION_TRIGGER
from runtime.durable.engine import entities
from runtime.durable.history import EventType
from runtime.durable.hub_owners import PartitionState, read_partitions
from runtime.durable.replaycheck import RecordedHistory, ReplayChecker
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.errors import InstanceNotFound
from runtime.functions import FunctionIndex
from runtime.storage.clients import StorageClients

PEEK = 32  # the most a queue peek returns
ASK_TIMEOUT = 2.0  # seconds to wait for a running host's function list


class Inspector:
    """Looks at instances of one task hub. `checker` replays code of the app in
    `this_app` (None: the code is not replayed); `storage` is needed for the partition
    leases (None for an in-memory hub: no hosts are seen)."""

    def __init__(self, hub: TaskHub, storage: StorageClients | None, *,
                 checker: ReplayChecker | None = None, this_app: Path | None = None,
                 clock: Clock | None = None) -> None:
        self.hub = hub
        self.storage = storage
        self.checker = checker
        self.this_app = this_app
        self.clock = clock or SystemClock()
        self._hosts: list[diagnosis.HostInfo] | None = None
        self._partitions: list[PartitionState] | None = None

    async def partitions(self) -> list[PartitionState]:
        """Each partition's lease state (cached for this inspector)."""
        if self._partitions is None:
            if self.storage is None:
                self._partitions = []
            else:
                self._partitions = await read_partitions(
                    self.storage, self.hub.hub_name, self.hub.partition_count, clock=self.clock)
        return self._partitions

    async def hosts(self) -> list[diagnosis.HostInfo]:
        """The hosts holding partitions now, with the functions each reports."""
        if self._hosts is None:
            owners: dict[str, list[int]] = {}
            for state in await self.partitions():
                if state.leased and state.owner:
                    owners.setdefault(state.owner, []).append(state.partition)
            self._hosts = list(await asyncio.gather(
                *(_ask(owner, tuple(parts)) for owner, parts in owners.items())))
        return self._hosts

    async def facts(self, instance_id: str) -> diagnosis.Facts:
        """Everything `diagnosis.explain` reads about one instance. InstanceNotFound for
        an id the hub does not have; StorageError when storage does not answer."""
        row = await self.hub.read_instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        snapshot = await self.hub.load_history(instance_id)
        partition = self.hub.partition_of(instance_id)
        control = self.hub.control_queue(partition)
        hosts = await self.hosts()
        holder = next((h for h in hosts if partition in h.partitions), None)
        queued, control_complete = await self._messages(control, instance_id)
        work, work_complete = await self._messages(self.hub.workitems_queue, instance_id)
        waiting: tuple[str, ...] | None = None
        unclaimed: tuple[str, ...] = ()
        problem: str | None = None
        breaks: str | None = None
        this_orchestrators: frozenset[str] | None = None
        if self.checker is not None:
            this_orchestrators = frozenset(
                n.lower() for n in self.checker.app.names(ORCHESTRATION_TRIGGER))
            if entities.is_entity(instance_id):
                pass  # an entity's code runs per batch: there is nothing it waits on
            elif str(row.get("RuntimeStatus")) in diagnosis.WAITING_STATES and \
                    snapshot.events:
                result = await self.checker.check(RecordedHistory.from_events(
                    instance_id, snapshot.events, runtime_status=str(row.get("RuntimeStatus"))))
                if result.waiting is not None:
                    waiting = result.waiting.events
                    unclaimed = result.waiting.unclaimed_events
                else:
                    problem = result.message
                known_here = str(row.get("Name") or "").lower() in this_orchestrators
                if result.verdict == "diverged" or (result.verdict == "fails" and known_here):
                    where = (f" ({result.location.describe(self.this_app)})"
                             if result.location is not None else "")
                    breaks = f"{result.message}{where}"
        children = await self._children(snapshot.events)
        return diagnosis.Facts(
            instance_id=instance_id, row=row, events=snapshot.events, partition=partition,
            control_queue=control, workitems_queue=self.hub.workitems_queue,
            hub_name=self.hub.hub_name, now=self.clock.now(), holder=holder, hosts=hosts,
            queued=queued, work_items=work, queues_complete=control_complete and work_complete,
            this_app=str(self.this_app) if self.this_app is not None else None,
            this_orchestrators=this_orchestrators, waiting_events=waiting,
            unclaimed_events=unclaimed, replay_problem=problem, code_breaks=breaks,
            children=children)

    async def explain(self, instance_id: str
                      ) -> tuple[diagnosis.Facts, list[diagnosis.Reason]]:
        """The facts about an instance and the reasons they give."""
        facts = await self.facts(instance_id)
        return facts, diagnosis.explain(facts)

    async def _messages(self, queue: str, instance_id: str
                        ) -> tuple[list[diagnosis.QueuedMessage], bool]:
        peeked = await self.hub.peek(queue, PEEK)
        complete = len(peeked) < PEEK
        return [_queued(m) for m in peeked if m.instance_id == instance_id], complete

    async def _children(self, events: Sequence[dict[str, Any]]) -> dict[str, str]:
        ids = [str(e.get("InstanceId")) for e in events
               if e.get("EventType") == EventType.SubOrchestrationInstanceCreated]
        rows = await asyncio.gather(*(self.hub.read_instance(i) for i in ids))
        return {i: str(r.get("RuntimeStatus")) if r else "not found"
                for i, r in zip(ids, rows, strict=True)}


def _queued(message: QueueMessage) -> diagnosis.QueuedMessage:
    return diagnosis.QueuedMessage(message.event, message.inserted_on, message.dequeue_count,
                                   message.queue)


async def _ask(owner: str, partitions: tuple[int, ...]) -> diagnosis.HostInfo:
    """A lease owner's durable functions, asked of its `/admin/functions` when it runs on
    this machine; unknown (None) when it cannot be asked (another machine, auth on)."""
    info = diagnosis.HostInfo(owner, partitions)
    parts = owner.split(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return info
    url = f"http://127.0.0.1:{parts[1]}/admin/functions"
    try:
        timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url) as response:
            if response.status != 200:
                return info
            described = json.loads(await response.text())
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
        return info
    if not isinstance(described, list):
        return info
    index = FunctionIndex.build(d for d in described if isinstance(d, dict) and "name" in d)
    return diagnosis.HostInfo(
        owner, partitions,
        frozenset(n.lower() for n in index.durable_names(ORCHESTRATION_TRIGGER)),
        frozenset(n.lower() for n in index.durable_names(ACTIVITY_TRIGGER)))


__all__ = ["Inspector"]
