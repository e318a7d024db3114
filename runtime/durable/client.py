"""Management operations on orchestration instances, and the durableClient binding JSON.

This is what the SDK's DurableOrchestrationClient reaches through the HTTP API: start,
status, list, raise an event, terminate, purge. Every operation goes to storage; the
dispatcher is only told (through `notify`) that a control queue has new work.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runtime.clock import Clock, SystemClock
from runtime.config import DurableTaskConfig
from runtime.durable import history
from runtime.durable.app import ENTITY_TRIGGER, ORCHESTRATION_TRIGGER, AppFunctions
from runtime.durable.engine import entities as entity_rules
from runtime.durable.engine import wording
from runtime.durable.engine.rewind import rewind_history
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.errors import (
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidArgument,
    InvalidInstanceId,
    InvalidOperation,
    RestartUnknown,
    StartTimeout,
    StorageError,
    UnknownFunction,
)

START_DEADLINE = 30.0
RUNNING_STATES = frozenset({"Running", "Pending", "Suspended", "ContinuedAsNew"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
MAX_INSTANCE_ID = 256


def validate_instance_id(instance_id: str) -> None:
    """DurableClient.StartNewAsync's checks, in its order and words. Its ArgumentException
    constructor arguments are swapped in the source, so on .NET the message reads
    `instanceId (Parameter '<rule>')`."""
    if instance_id.startswith("@"):
        raise InvalidInstanceId(
            "instanceId (Parameter 'Orchestration instance ids must not start with @.')")
    if any(char in "/\\?#" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F
           for char in instance_id):
        raise InvalidInstanceId("instanceId (Parameter 'Orchestration instance ids must not "
                                "contain /, \\, #, ?, or control characters.')")
    if len(instance_id) > MAX_INSTANCE_ID:
        raise InvalidInstanceId(
            f"Instance ID lengths must not exceed {MAX_INSTANCE_ID} characters.")


def new_instance_id() -> str:
    return uuid.uuid4().hex


def format_api_time(value: Any) -> str | None:
    """Status JSON times: yyyy-MM-ddTHH:mm:ssZ."""
    if value is None:
        return None
    if isinstance(value, str):
        value = history.parse_timestamp(value)
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return str(value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def parse_json_text(text: Any) -> Any:
    """Stored JSON text re-parsed for the status JSON; the raw string if it is not JSON."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class InstanceQuery:
    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: Collection[str] | None = None
    prefix: str | None = None
    top: int | None = None
    continuation: str | None = None
    show_input: bool = True
    # The extension's HTTP listing (the one Python apps reach) does not leave entities
    # out: DTFx's ExcludeEntities is only set on the gRPC path (extension issue #1991).
    exclude_entities: bool = False


class DurableClient:
    """The management operations of one task hub (DurableClient in the extension).

    `app` gives the orchestrator names a start is checked against (None: any name, as
    when no host is running); `notify` tells the dispatcher an instance has new work.
    Errors: InstanceNotFound, InstanceNotRunning, InstanceExists, InvalidArgument
    (UnknownFunction, InvalidInstanceId), StartTimeout, StorageError.
    """

    def __init__(self, hub: TaskHub, config: DurableTaskConfig, *,
                 app: AppFunctions | None = None,
                 notify: Callable[[str], None] | None = None,
                 clock: Clock | None = None) -> None:
        self.hub = hub
        self.config = config
        self.app = app
        self.clock = clock or SystemClock()
        self.notify = notify or (lambda instance_id: None)

    # -- start -------------------------------------------------------------------------

    def resolve_orchestrator(self, name: str) -> str:
        """The registered orchestrator `name` refers to (case-insensitive)."""
        if self.app is None:
            return name
        known = self.app.names(ORCHESTRATION_TRIGGER)
        for candidate in known:
            if candidate.lower() == name.lower():
                return candidate
        raise UnknownFunction(wording.unknown_orchestrator_message(name, known))

    async def start_new(self, name: str, instance_id: str | None = None,
                        input_text: str | None = None, version: str | None = None) -> str:
        """Record a Pending instance and its ExecutionStarted message; return its id once
        both are durable. `version` defaults to host.json's defaultVersion. Fails within
        START_DEADLINE if storage cannot be reached."""
        orchestrator = self.resolve_orchestrator(name)
        instance_id = instance_id if instance_id else new_instance_id()
        validate_instance_id(instance_id)
        if version is None:
            version = self.config.default_version or ""
        try:
            await asyncio.wait_for(self._start(orchestrator, instance_id, input_text, version),
                                   START_DEADLINE)
        except (asyncio.TimeoutError, StorageError):
            raise StartTimeout(START_DEADLINE) from None
        self.notify(instance_id)
        return instance_id

    async def _start(self, name: str, instance_id: str, input_text: str | None,
                     version: str) -> None:
        existing = await self.hub.read_instance(instance_id)
        if existing is not None:
            status = str(existing.get("RuntimeStatus"))
            if status in RUNNING_STATES and \
                    self.config.overridable_existing_instance_states != "AnyState":
                raise InstanceExists(instance_id, status)
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        input_value = "null" if input_text is None else input_text
        event = history.execution_started(instance_id, execution_id, name, input_value, now,
                                          version=version)
        fields: dict[str, Any] = {
            "Name": name, "Version": version, "Input": input_value, "RuntimeStatus": "Pending",
            "CreatedTime": now, "LastUpdatedTime": now, "ExecutionId": execution_id,
            "TaskHubName": self.hub.hub_name, "CustomStatus": "null", "Output": None,
            "CompletedTime": None,
            "Generation": int(existing.get("Generation") or 0) + 1 if existing else 0,
        }
        # The message first, then the row, as the Azure Storage backend does: a crash in
        # between leaves a start message that runs the instance (whose first checkpoint
        # writes the row), never a Pending row with nothing to run it.
        sent = await self.hub.send_to_instance(instance_id, execution_id, event)
        try:
            if existing is None:
                await self.hub.insert_instance(instance_id, fields)
            else:
                await self.hub.replace_instance(instance_id, fields,
                                                str(existing.get("etag", "*")))
        except BaseException:
            await asyncio.shield(self._withdraw(sent))
            raise

    async def _withdraw(self, sent: QueueMessage) -> None:
        """Best effort: take back the start message of a start that failed."""
        try:
            await self.hub.delete_message(sent)
        except StorageError:
            pass

    # -- status ------------------------------------------------------------------------

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = True) -> dict[str, Any] | None:
        row = await self.hub.read_instance(instance_id)
        if row is None:
            return None
        status = self.status_json(row, show_input=show_input)
        if show_history:
            snapshot = await self.hub.load_history(instance_id)
            status["historyEvents"] = history.to_status_history(snapshot.events,
                                                                show_history_output)
        return status

    @staticmethod
    def status_json(row: dict[str, Any], *, show_input: bool = True) -> dict[str, Any]:
        """The extension's status payload; `version` and `parentInstanceId` are added
        when the instance has them (newer extensions report the version too)."""
        status: dict[str, Any] = {
            "name": row.get("Name"),
            "instanceId": row.get("InstanceId"),
            "runtimeStatus": row.get("RuntimeStatus"),
            "input": parse_json_text(row.get("Input")) if show_input else None,
            "customStatus": parse_json_text(row.get("CustomStatus")),
            "output": parse_json_text(row.get("Output")),
            "createdTime": format_api_time(row.get("CreatedTime")),
            "lastUpdatedTime": format_api_time(row.get("LastUpdatedTime")),
        }
        if row.get("Version"):
            status["version"] = row.get("Version")
        if row.get("ParentInstanceId"):
            status["parentInstanceId"] = row.get("ParentInstanceId")
        return status

    async def list_instances(self, query: InstanceQuery) -> tuple[list[dict[str, Any]],
                                                                  str | None]:
        """A page of instances as status objects; entities (`@name@key`, always Running)
        are among them unless `query.exclude_entities`."""
        rows, token = await self.hub.query_instances(
            created_from=query.created_from, created_to=query.created_to,
            statuses=query.statuses, prefix=query.prefix, top=query.top,
            continuation=query.continuation, exclude_entities=query.exclude_entities)
        return [self.status_json(r, show_input=query.show_input) for r in rows], token

    # -- entities ----------------------------------------------------------------------

    def resolve_entity(self, name: str) -> None:
        """UnknownFunction (the extension's message) when the app has no such entity."""
        if self.app is None:
            return
        known = self.app.names(ENTITY_TRIGGER)
        if name.lower() not in {n.lower() for n in known}:
            raise UnknownFunction(wording.unknown_entity_message(
                name.lower(), known, self.app.names(ORCHESTRATION_TRIGGER)))

    async def signal_entity(self, name: str, key: str, operation: str,
                            input_text: str | None) -> None:
        """Send one operation to the entity, fire and forget (SignalEntityAsync): an "op"
        message without a parent. InvalidArgument for a bad name or key or an entity
        the app does not have."""
        try:
            instance_id = entity_rules.scheduler_id(name, key)
            entity_rules.check_key(key)
        except entity_rules.InvalidEntityId as exc:
            raise InvalidArgument(str(exc)) from None
        self.resolve_entity(name)
        text = entity_rules.request_json(operation, input_text, str(uuid.uuid4()), signal=True)
        await self._send(instance_id, history.event_raised(entity_rules.OPERATION_EVENT, text,
                                                           self.clock.now()))

    async def read_entity_state(self, name: str, key: str) -> str | None:
        """The entity's state as JSON text, or None when it does not exist."""
        row = await self.hub.read_instance(entity_rules.scheduler_id(name, key))
        if row is None:
            return None
        state = entity_rules.SchedulerState.parse(row.get("Input"))
        return state.state if state.exists else None

    async def list_entities(self, name: str | None, *, fetch_state: bool, top: int | None,
                            continuation: str | None, from_time: datetime | None = None,
                            to_time: datetime | None = None,
                            ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of existing entities (of `name`, or all), DurableEntityStatus items."""
        prefix = f"@{name.lower()}@" if name else "@"
        rows, token = await self.hub.query_instances(
            created_from=from_time, created_to=to_time, prefix=prefix, top=top or 100,
            continuation=continuation)
        found = [entity_rules.entity_status(str(r["InstanceId"]), r, fetch_state=fetch_state)
                 for r in rows]
        return [item for item in found if item is not None], token

    # -- events and control ------------------------------------------------------------

    async def runtime_status(self, instance_id: str) -> str | None:
        """The instance's runtime status, or None when there is no such instance."""
        row = await self.hub.read_instance(instance_id)
        return None if row is None else str(row.get("RuntimeStatus"))

    async def _require(self, instance_id: str) -> dict[str, Any]:
        row = await self.hub.read_instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        return row

    async def _running(self, instance_id: str) -> str:
        """The status of an instance that is not finished; InstanceNotFound (404) or
        InstanceNotRunning (410) otherwise."""
        row = await self._require(instance_id)
        status = str(row.get("RuntimeStatus"))
        if status in TERMINAL_STATES:
            raise InstanceNotRunning(instance_id, status)
        return status

    async def _send(self, instance_id: str, event: dict[str, Any]) -> None:
        # No execution id: the event is for whichever execution runs when it arrives
        # (after a continue-as-new too), as DTFx's client sends it.
        await self.hub.send_to_instance(instance_id, None, event)
        self.notify(instance_id)

    async def raise_event(self, instance_id: str, event_name: str, data_text: str) -> None:
        await self._running(instance_id)
        await self._send(instance_id, history.event_raised(event_name, data_text,
                                                           self.clock.now()))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        """ExecutionTerminated with the reason as given (TaskHubClient.TerminateInstance-
        Async passes it raw: it becomes the output, shown as JSON when it parses)."""
        await self._running(instance_id)
        await self._send(instance_id, history.execution_terminated(reason, self.clock.now()))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        """ExecutionSuspended; InvalidOperation for an instance already suspended."""
        status = await self._running(instance_id)
        if status == "Suspended":
            raise InvalidOperation(f"Cannot suspend the orchestration instance {instance_id} "
                                   f"because instance is in the {status} state.")
        await self._send(instance_id, history.execution_suspended(reason, self.clock.now()))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        """ExecutionResumed; InvalidOperation for an instance that is not suspended."""
        status = await self._running(instance_id)
        if status != "Suspended":
            raise InvalidOperation(f"Cannot resume the orchestration instance {instance_id} "
                                   f"because instance is in the {status} state.")
        await self._send(instance_id, history.execution_resumed(reason, self.clock.now()))

    async def restart(self, instance_id: str, *, new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with its original input, under a new
        id or the same one (DurableClient.RestartAsync); the id started. RestartUnknown
        for an unknown id; InstanceExists when the same id is still running."""
        row = await self.hub.read_instance(instance_id)
        if row is None:
            raise RestartUnknown(instance_id)
        return await self.start_new(str(row.get("Name")),
                                    None if new_instance_id else instance_id,
                                    row.get("Input"))

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        """Re-run a failed instance's failed activities and sub-orchestrations, replaying
        the rest (AzureStorageOrchestrationService.RewindTaskOrchestrationAsync).
        InstanceNotRunning (410) for completed or terminated instances, InvalidOperation
        for instances that have not failed."""
        row = await self._require(instance_id)
        status = str(row.get("RuntimeStatus"))
        if status in ("Completed", "Terminated", "Canceled"):
            raise InstanceNotRunning(instance_id, status)
        if status != "Failed":
            raise InvalidOperation(
                "The rewind operation is only supported on failed orchestration instances.")
        for leaf in await self._rewind_history(instance_id):
            await self._send(leaf, history.generic_event(-1, reason, self.clock.now()))

    async def _rewind_history(self, instance_id: str) -> list[str]:
        """Rewrite one failed instance's history (and its failed children's); the
        instances to wake, deepest first."""
        snapshot = await self.hub.load_history(instance_id)
        if snapshot.execution_id is None:
            return []
        rewound = rewind_history(snapshot.events)
        await self.hub.append_history(instance_id, snapshot.execution_id, 0, rewound.events,
                                      snapshot.etag)
        await self.hub.merge_instance(instance_id, {"RuntimeStatus": "Pending",
                                                    "LastUpdatedTime": self.clock.now()})
        leaves: list[str] = []
        for child in rewound.failed_children:
            leaves.extend(await self._rewind_history(child))
        return leaves + ([instance_id] if rewound.is_leaf else [])

    # -- purge -------------------------------------------------------------------------

    async def purge(self, instance_id: str) -> int:
        return 1 if await self.hub.purge_instance(instance_id) else 0

    async def purge_by(self, created_from: datetime, created_to: datetime | None,
                       statuses: Collection[str] | None) -> int:
        deleted = 0
        continuation: str | None = None
        while True:
            rows, continuation = await self.hub.query_instances(
                created_from=created_from, created_to=created_to or self.clock.now(),
                statuses=statuses, prefix=None, top=100, continuation=continuation)
            for row in rows:
                if await self.hub.purge_instance(str(row["InstanceId"])):
                    deleted += 1
            if not continuation:
                return deleted
