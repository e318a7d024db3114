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
from runtime.durable.app import ORCHESTRATION_TRIGGER, AppFunctions
from runtime.durable.engine import wording
from runtime.durable.taskhub import QueueMessage, TaskHub
from runtime.errors import (
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidInstanceId,
    StartTimeout,
    StorageError,
    UnknownFunction,
)

START_DEADLINE = 30.0
RUNNING_STATES = frozenset({"Running", "Pending", "Suspended", "ContinuedAsNew"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
MAX_INSTANCE_ID = 256


def validate_instance_id(instance_id: str) -> None:
    if not instance_id or not instance_id.strip():
        raise InvalidInstanceId("Instance ID must not be empty or whitespace.")
    if len(instance_id) > MAX_INSTANCE_ID:
        raise InvalidInstanceId(
            f"Instance ID lengths must not exceed {MAX_INSTANCE_ID} characters.")
    if instance_id.startswith("@"):
        raise InvalidInstanceId(
            f"Orchestration instance ids must not start with @. Instance ID: '{instance_id}'.")
    for char in instance_id:
        if char in "/\\?#" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            raise InvalidInstanceId(
                f"Instance ID '{instance_id}' contains invalid characters: an instance ID "
                "must not contain '/', '\\', '?', '#' or control characters.")


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
                        input_text: str | None = None) -> str:
        """Record a Pending instance and its ExecutionStarted message; return its id once
        both are durable. Fails within START_DEADLINE if storage cannot be reached."""
        orchestrator = self.resolve_orchestrator(name)
        instance_id = instance_id if instance_id is not None else new_instance_id()
        validate_instance_id(instance_id)
        try:
            await asyncio.wait_for(self._start(orchestrator, instance_id, input_text),
                                   START_DEADLINE)
        except (asyncio.TimeoutError, StorageError):
            raise StartTimeout(START_DEADLINE) from None
        self.notify(instance_id)
        return instance_id

    async def _start(self, name: str, instance_id: str, input_text: str | None) -> None:
        existing = await self.hub.read_instance(instance_id)
        if existing is not None:
            status = str(existing.get("RuntimeStatus"))
            if status in RUNNING_STATES and \
                    self.config.overridable_existing_instance_states != "AnyState":
                raise InstanceExists(instance_id, status)
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        input_value = "null" if input_text is None else input_text
        event = history.execution_started(instance_id, execution_id, name, input_value, now)
        fields: dict[str, Any] = {
            "Name": name, "Version": "", "Input": input_value, "RuntimeStatus": "Pending",
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
        return {
            "name": row.get("Name"),
            "instanceId": row.get("InstanceId"),
            "runtimeStatus": row.get("RuntimeStatus"),
            "input": parse_json_text(row.get("Input")) if show_input else None,
            "customStatus": parse_json_text(row.get("CustomStatus")),
            "output": parse_json_text(row.get("Output")),
            "createdTime": format_api_time(row.get("CreatedTime")),
            "lastUpdatedTime": format_api_time(row.get("LastUpdatedTime")),
        }

    async def list_instances(self, query: InstanceQuery) -> tuple[list[dict[str, Any]],
                                                                  str | None]:
        rows, token = await self.hub.query_instances(
            created_from=query.created_from, created_to=query.created_to,
            statuses=query.statuses, prefix=query.prefix, top=query.top,
            continuation=query.continuation)
        return [self.status_json(r, show_input=query.show_input) for r in rows], token

    # -- events and control ------------------------------------------------------------

    async def _require(self, instance_id: str) -> dict[str, Any]:
        row = await self.hub.read_instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        return row

    async def raise_event(self, instance_id: str, event_name: str, data_text: str) -> None:
        row = await self._require(instance_id)
        status = str(row.get("RuntimeStatus"))
        if status in TERMINAL_STATES:
            raise InstanceNotRunning(instance_id, status)
        event = history.event_raised(event_name, data_text, self.clock.now())
        await self.hub.send_to_instance(instance_id, row.get("ExecutionId"), event)
        self.notify(instance_id)

    async def terminate(self, instance_id: str, reason: str) -> None:
        row = await self._require(instance_id)
        status = str(row.get("RuntimeStatus"))
        if status in TERMINAL_STATES:
            raise InstanceNotRunning(instance_id, status)
        event = history.execution_terminated(json.dumps(reason), self.clock.now())
        await self.hub.send_to_instance(instance_id, row.get("ExecutionId"), event)
        self.notify(instance_id)

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
