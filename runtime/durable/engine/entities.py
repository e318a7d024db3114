"""Durable entities as the extension runs them for out-of-process languages (pure).

An entity is an instance of the task hub with the id `@{name lower-cased}@{key}`. Requests
reach it as EventRaised events named "op" whose input is a RequestMessage; each work item
runs the waiting requests as one batch through the entity function (the SDK's
`Entity.create(fn)`), sends each caller's response (an EventRaised named after the request
id, input a ResponseMessage), and stores the entity's SchedulerState as the input of a new
execution (the extension's TaskEntityShim ends every batch with ContinueAsNew), so the
entity's history is always three events long.

Exactly once: every request has an id. Requests sent by an orchestration carry the
orchestration's time (strictly increasing per destination) and are dropped when not newer
than the last one received from that orchestration's execution (the extension's
MessageSorter). The state also keeps the ids of the requests whose messages may still be
in the queue ("in doubt"): those of the last batch (deleted after the commit) and older
ones whose deletion was not confirmed (a crash between a commit and the deletions, or a
lock that expired so another receiver holds the copy). A message comes back at the
latest one control-queue lock after it was last received, so an id leaves the set once
its deletion is confirmed, or once a lock and a margin have passed both since its commit
and since this host started serving the entity.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runtime.durable import history
from runtime.durable.engine.model import OutgoingMessage
from runtime.durable.history import EventType

OPERATION_EVENT = "op"
NEVER = "0001-01-01T00:00:00"  # .NET's DateTime.MinValue, the Predecessor of a first message
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_TICK = timedelta(microseconds=1)
NO_LOCKS = ("Critical sections (entity locks) are not available: azure-functions-durable 1.x "
            "has no lock API, so funclocal runs no lock requests.")


class InvalidEntityId(ValueError):
    """An entity name or key the extension refuses; the message is the extension's."""


def scheduler_id(name: str, key: str) -> str:
    """`@name@key`, the name lower-cased (EntityId.GetSchedulerId)."""
    if not name:
        raise InvalidEntityId("Invalid entity id: entity name must not be a null or empty "
                              "string. (Parameter 'entityName')")
    return f"@{name.lower()}@{key}"


def parse_scheduler_id(instance_id: str) -> tuple[str, str]:
    """(name, key) of `@name@key`: the key is everything after the second `@`."""
    if not is_entity(instance_id):
        raise InvalidEntityId(f"'{instance_id}' is not an entity id.")
    name, _, key = instance_id[1:].partition("@")
    return name, key


def is_entity(instance_id: str) -> bool:
    """Entities are the instances whose id starts with `@` (DTFx Entities.IsEntityInstance)."""
    return instance_id.startswith("@")


def check_key(key: str) -> None:
    """The extension's rule for keys of signals (SignalEntityAsyncInternal)."""
    if any(c in "/\\#?" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key):
        # The extension's ArgumentException has its two arguments swapped, hence the text.
        raise InvalidEntityId("entityKey (Parameter 'Entity keys must not contain /, \\, #, "
                              "?, or control characters.')")


# --- messages -------------------------------------------------------------------------


def request_json(operation: str | None, input_text: str | None, request_id: str, *,
                 signal: bool, parent: str | None = None,
                 parent_execution: str | None = None, timestamp: datetime | None = None,
                 predecessor: datetime | None = None) -> str:
    """A RequestMessage as the extension writes it (`op`, `signal` only when true, `input`
    only when set, `id`, `parent`/`parentExecution` only for orchestrations, and the
    PascalCase `Timestamp` and `Predecessor`)."""
    message: dict[str, Any] = {"op": operation}
    if signal:
        message["signal"] = True
    if input_text is not None:
        message["input"] = input_text
    message["id"] = request_id
    if parent is not None:
        message["parent"] = parent
    if parent_execution is not None:
        message["parentExecution"] = parent_execution
    message["Timestamp"] = history.format_timestamp(timestamp) if timestamp else NEVER
    message["Predecessor"] = history.format_timestamp(predecessor) if predecessor else NEVER
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def operation_input(sdk_input: Any) -> str | None:
    """RequestMessage.input from what a caller gave: the SDK's JSON text is serialised
    once more (as the extension's SetInput does), which the entity SDK undoes with
    json.loads before df_loads."""
    if sdk_input is None:
        return None
    return json.dumps(sdk_input, separators=(",", ":"), ensure_ascii=False)


def request_id_for(instance_id: str, execution_id: str | None, task_id: int) -> str:
    """A request id that is the same on every replay of the call that sends it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL,
                          f"funclocal:entity-request:{instance_id}:{execution_id}:{task_id}"))


@dataclass(frozen=True)
class Request:
    """One "op" message: an operation for the entity."""

    index: int  # position in the incoming batch
    operation: str
    input_text: str | None
    request_id: str
    signal: bool
    parent: str | None
    parent_execution: str | None
    timestamp: datetime | None


def parse_request(index: int, event: Mapping[str, Any]) -> Request | None:
    """The request an EventRaised "op" carries, or None for any other event."""
    if history.event_type(event) != EventType.EventRaised or \
            not str(event.get("Name") or "").startswith(OPERATION_EVENT):
        return None
    try:
        body = json.loads(str(event.get("Input") or ""))
    except ValueError:
        return None
    if not isinstance(body, dict) or not body.get("id"):
        return None
    stamp = body.get("Timestamp")
    timestamp = None
    if isinstance(stamp, str) and stamp != NEVER:
        try:
            timestamp = history.parse_timestamp(stamp)
        except ValueError:
            timestamp = None
    return Request(index, str(body.get("op") or ""), body.get("input"), str(body["id"]),
                   bool(body.get("signal")), body.get("parent"), body.get("parentExecution"),
                   timestamp)


def is_response(event: Mapping[str, Any]) -> bool:
    """Whether an EventRaised is an entity's answer to a call (named after the request
    id, a ResponseMessage as input)."""
    name = str(event.get("Name") or "")
    return bool(_GUID.match(name)) and _is_response_body(str(event.get("Input") or ""))


@functools.lru_cache(maxsize=65536)
def _is_response_body(text: str) -> bool:
    # Cached: every episode of an orchestration walks its whole history again.
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and "result" in body


def sent_request(input_text: Any) -> Request | None:
    """The request an EventSent recorded (its input is a RequestMessage), or None."""
    return _sent_request(input_text) if isinstance(input_text, str) else None


def sent_request_id(input_text: Any) -> str | None:
    """The request id in an EventSent's input, or None."""
    request = sent_request(input_text)
    return request.request_id if request is not None else None


@functools.lru_cache(maxsize=65536)
def _sent_request(text: str) -> Request | None:
    # Cached for the same reason as _is_response_body.
    return parse_request(0, {"EventType": EventType.EventRaised, "Name": OPERATION_EVENT,
                             "Input": text})


def response_event(request_id: str, result_text: str | None, is_error: bool,
                   now: datetime) -> dict[str, Any]:
    """The EventRaised that answers a call: a ResponseMessage, `exceptionType` "Error"
    when the operation failed (as the extension answers out-of-process entities)."""
    body: dict[str, Any] = {"result": result_text}
    if is_error:
        body["exceptionType"] = "Error"
    return history.event_raised(request_id, json.dumps(body, separators=(",", ":"),
                                                       ensure_ascii=False), now)


# --- the entity's state ---------------------------------------------------------------


@dataclass
class SchedulerState:
    """The extension's SchedulerState (`exists`, `state`, `sorter`), plus `inDoubt`: the
    ids of applied requests whose messages may still be delivered, with the time of the
    batch that applied them (ISO text)."""

    exists: bool = False
    state: str | None = None
    sorter: dict[str, Any] = field(default_factory=dict)
    in_doubt: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> SchedulerState:
        """The state stored as an entity execution's input (empty when there is none)."""
        if not text:
            return cls()
        value = json.loads(text)
        if isinstance(value, str):  # stored as JSON text of JSON
            value = json.loads(value)
        if not isinstance(value, dict):
            return cls()
        return cls(bool(value.get("exists")), value.get("state"),
                   dict(value.get("sorter") or {}), dict(value.get("inDoubt") or {}))

    def to_json(self) -> str:
        data: dict[str, Any] = {}
        if self.exists:
            data["exists"] = True
        if self.state is not None:
            data["state"] = self.state
        data["sorter"] = self.sorter
        if self.in_doubt:
            data["inDoubt"] = self.in_doubt
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @property
    def custom_status(self) -> str:
        """The Instances row's CustomStatus (EntityStatus): entityExists when it exists."""
        return '{"entityExists":true}' if self.exists else "{}"


def state_of(events: list[dict[str, Any]]) -> SchedulerState:
    """The scheduler state in an entity's history (its ExecutionStarted's input)."""
    for event in events:
        if history.event_type(event) == EventType.ExecutionStarted:
            return SchedulerState.parse(event.get("Input"))
    return SchedulerState()


def select(state: SchedulerState, events: list[dict[str, Any]],
           ) -> tuple[list[Request], list[int]]:
    """The requests to run, in order, and the indexes of the incoming events that are
    duplicates or not requests (consumed without effect). Updates `state.sorter`."""
    received = state.sorter.setdefault("ReceivedFromInstance", {})
    seen = set(state.in_doubt)
    run: list[Request] = []
    dropped: list[int] = []
    for index, event in enumerate(events):
        request = parse_request(index, event)
        if request is None or request.request_id in seen:
            dropped.append(index)
            continue
        if request.parent and request.timestamp is not None:
            last = received.get(request.parent) or {}
            if last.get("ExecutionId") == request.parent_execution and last.get("Last") and \
                    request.timestamp <= history.parse_timestamp(str(last["Last"])):
                dropped.append(index)  # the same message again: applied already
                continue
            received[request.parent] = {"Last": history.format_timestamp(request.timestamp),
                                        "ExecutionId": request.parent_execution}
        seen.add(request.request_id)
        run.append(request)
    return run, dropped


def next_in_doubt(in_doubt: Mapping[str, str], applied: list[str], now: datetime, *,
                  confirmed: set[str], serving_since: datetime,
                  horizon: timedelta) -> dict[str, str]:
    """The in-doubt ids after a batch: the ones it applied, and the earlier ones whose
    deletion was not `confirmed` and that could still come back (within `horizon` of
    their commit, or of `serving_since`: a crashed host's messages reappear at most one
    lock after it received them, before this host started serving the entity)."""
    stamp = history.format_timestamp(now)
    kept = {request_id: when for request_id, when in in_doubt.items()
            if request_id not in confirmed and (
                now - serving_since < horizon or
                now - history.parse_timestamp(when) < horizon)}
    kept.update((request_id, stamp) for request_id in applied)
    return kept


def next_timestamp(now: datetime, last: datetime | None) -> datetime:
    """A sender's message time: its current time, and always after the last one it sent to
    the same entity (MessageSorter.LabelOutgoingMessage)."""
    return now if last is None or now > last else last + _TICK


# --- a batch --------------------------------------------------------------------------


def batch_context(name: str, key: str, state: SchedulerState, requests: list[Request]) -> str:
    """What the entity function receives (EntityTriggerAttributeBindingProvider)."""
    return json.dumps({
        "self": {"name": name, "key": key},
        "exists": state.exists,
        "state": state.state,
        "batch": [{"name": r.operation, "input": r.input_text, "isSignal": r.signal}
                  for r in requests],
    }, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class OperationResult:
    result: str | None
    is_error: bool


def read_result(text: str, count: int) -> tuple[bool, str | None, list[OperationResult]]:
    """(exists, state, one result per operation) from the SDK's EntityState JSON; raises
    ValueError when it is not that shape."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the entity returned no state object")
    results = value.get("results") or []
    if not isinstance(results, list) or len(results) != count:
        raise ValueError(f"the entity returned {len(results)} results for {count} operations")
    state = value.get("entityState")
    exists = bool(value.get("entityExists"))
    return (exists, None if not exists else (None if state is None else str(state)),
            [OperationResult(None if r.get("result") is None else str(r.get("result")),
                             bool(r.get("isError"))) for r in results])


def responses(requests: list[Request], results: list[OperationResult],
              now: datetime) -> list[OutgoingMessage]:
    """The answers to the calls among `requests` (signals get none)."""
    found: list[OutgoingMessage] = []
    for request, result in zip(requests, results, strict=True):
        if request.signal or not request.parent:
            continue
        found.append(OutgoingMessage(
            "orchestration", request.parent, request.parent_execution,
            response_event(request.request_id, result.result, result.is_error, now)))
    return found


def commit_events(instance_id: str, execution_id: str, state: SchedulerState,
                  now: datetime) -> list[dict[str, Any]]:
    """The entity's history after a batch: a new execution holding the state as input."""
    return [history.orchestrator_started(now),
            history.execution_started(instance_id, execution_id, instance_id, state.to_json(),
                                      now),
            history.orchestrator_completed(now)]


def instance_fields(instance_id: str, execution_id: str, state: SchedulerState,
                    now: datetime) -> dict[str, Any]:
    """The entity's Instances row after a batch, as the extension's ContinueAsNew leaves
    it: always Running, the state as input, the batch time as CreatedTime."""
    return {"Name": instance_id, "Version": "", "ExecutionId": execution_id,
            "RuntimeStatus": "Running", "Input": state.to_json(),
            "CustomStatus": state.custom_status, "CreatedTime": now, "LastUpdatedTime": now}


def entity_status(instance_id: str, row: Mapping[str, Any], *,
                  fetch_state: bool) -> dict[str, Any] | None:
    """A listing item (DurableEntityStatus), or None when the entity does not exist."""
    state = SchedulerState.parse(row.get("Input"))
    if not state.exists:
        return None
    name, key = parse_scheduler_id(instance_id)
    created = row.get("CreatedTime")
    shown = history.json_or_raw(state.state) if fetch_state else None
    return {"entityId": {"name": name, "key": key},
            "lastOperationTime": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            if isinstance(created, datetime) else created,
            "state": shown}


__all__ = ["NO_LOCKS", "OPERATION_EVENT", "InvalidEntityId", "OperationResult", "Request",
           "SchedulerState", "batch_context", "check_key", "commit_events", "entity_status",
           "instance_fields", "is_entity", "is_response", "next_in_doubt", "next_timestamp",
           "operation_input",
           "parse_request", "parse_scheduler_id", "read_result", "request_id_for",
           "request_json", "response_event", "responses", "scheduler_id", "select",
           "sent_request", "sent_request_id",
           "state_of"]
