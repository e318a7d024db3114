"""Replaying a recorded history against the app's current code: would the host still run
this instance, and if not, where does the code part from history?

The orchestrator runs in a worker process with the unmodified SDK (the worker's
"replay-check" mode, `worker/child/replay_check.py`), over the whole recorded history as
one replayed episode. Its actions then go through the engine exactly as on the host
(`parse_actions`, each action's checks, `engine/replay.py`), so a divergence is reported
with the very message the host would fail the instance with
(`Non-Deterministic workflow detected: ...`), plus where: the sequence number, what history
recorded there, what the code does instead, and the line of user code behind it.

For an execution that history shows as ended (completed, failed, continued as new), the
code must also end the same way at the same point: work scheduled past a recorded
completion is a divergence too, as Temporal's replayer reports it. Nothing is written:
this is a check, the instance is left as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from runtime.clock import Clock, SystemClock
from runtime.config import DurableTaskConfig
from runtime.durable import history
from runtime.durable.app import ORCHESTRATION_TRIGGER, AppFunctions
from runtime.durable.engine import build_context, parse_sdk_result, wording
from runtime.durable.engine.actions import parse_actions, walk
from runtime.durable.engine.model import Episode
from runtime.durable.engine.outcomes import final_event
from runtime.durable.engine.planning import find
from runtime.durable.engine.replay import ReplayOutcome, replay, target_of
from runtime.durable.engine.specs import (
    HTTP_ACTIVITY,
    ActivitySpec,
    CompoundSpec,
    ContinueAsNewSpec,
    Divergence,
    EntitySpec,
    ExternalEventSpec,
    HttpSpec,
    Rejected,
    RetrySpec,
    Spec,
    SubOrchestrationSpec,
    TimerSpec,
)
from runtime.durable.history import EventType
from runtime.errors import FunctionInvocationError, InvalidArgument, ProtocolError, WorkerError

MODE = "replay-check"  # runtime.worker.child.replay_check.MODE
EXPORT_FORMAT = 1  # the "funclocalHistory" version of exported files

Verdict = Literal["ok", "diverged", "fails", "not-checked"]
NOTHING = "nothing"  # the `actual` of a divergence where the code scheduled nothing


@dataclass(frozen=True)
class RecordedHistory:
    """One execution's history as recorded: from the task hub or an exported file."""

    instance_id: str
    name: str
    events: list[dict[str, Any]]
    runtime_status: str | None = None
    source: str = ""  # "task hub X" or the file it was read from

    @classmethod
    def from_events(cls, instance_id: str, events: list[dict[str, Any]], *,
                    runtime_status: str | None = None, source: str = "") -> RecordedHistory:
        start = find(events, EventType.ExecutionStarted) or {}
        return cls(instance_id, str(start.get("Name") or ""), list(events), runtime_status,
                   source)

    @property
    def execution_id(self) -> str | None:
        start = find(self.events, EventType.ExecutionStarted) or {}
        value = (start.get("OrchestrationInstance") or {}).get("ExecutionId")
        return None if value is None else str(value)

    def to_json(self, hub_name: str | None = None) -> dict[str, Any]:
        """The export file's object (`funclocal instances history --export`)."""
        return {"funclocalHistory": EXPORT_FORMAT, "taskHub": hub_name,
                "instanceId": self.instance_id, "executionId": self.execution_id,
                "name": self.name, "runtimeStatus": self.runtime_status,
                "events": self.events}

    @classmethod
    def from_json(cls, value: Any, source: str) -> list[RecordedHistory]:
        """The histories of an export file: one object, or a list of them. InvalidArgument
        (naming `source`) for anything else."""
        items = value if isinstance(value, list) else [value]
        found: list[RecordedHistory] = []
        for position, item in enumerate(items):
            where = source if len(items) == 1 else f"{source}, item {position + 1}"
            if not isinstance(item, dict) or not isinstance(item.get("events"), list):
                raise InvalidArgument(f"{where}: not a history exported by funclocal "
                                      "(an object with \"events\", a list of history events)")
            events = [e for e in item["events"] if isinstance(e, dict)]
            if any("EventType" not in e for e in events) or len(events) != len(item["events"]):
                raise InvalidArgument(f"{where}: every event needs an \"EventType\"")
            recorded = cls.from_events(str(item.get("instanceId") or ""), events,
                                       runtime_status=item.get("runtimeStatus"), source=where)
            found.append(recorded if recorded.name or not item.get("name") else
                         RecordedHistory(recorded.instance_id, str(item["name"]), events,
                                         recorded.runtime_status, where))
        return found


@dataclass(frozen=True)
class CodeLocation:
    """A line of user code: where the orchestrator yielded (or called) an action."""

    file: str
    line: int
    function: str

    def describe(self, root: Path | None = None) -> str:
        path = Path(self.file)
        if root is not None:
            try:
                path = path.resolve().relative_to(root.resolve())
            except ValueError:
                pass
        return f"{path}, line {self.line}, in {self.function}"


@dataclass(frozen=True)
class Waiting:
    """What the replayed code waits on at the end of history: events by name, and the
    sequence numbers of scheduled work still open; raised events nothing waited for."""

    events: tuple[str, ...] = ()
    open_ids: tuple[int, ...] = ()
    unclaimed_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplayResult:
    """The verdict on one history. `ok`: the code replays it; `diverged`: it no longer
    matches (`message` is the host's nondeterminism message); `fails`: the host would
    fail the instance for another reason (the code raises, calls a function the app does
    not have, the orchestrator is gone); `not-checked`: nothing to replay or the check
    could not run (`message` says why)."""

    instance_id: str
    name: str
    verdict: Verdict
    message: str | None = None
    sequence_number: int | None = None
    expected: str | None = None
    actual: str | None = None
    location: CodeLocation | None = None
    waiting: Waiting | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.verdict in ("ok", "not-checked")

    def to_json(self, root: Path | None = None) -> dict[str, Any]:
        location = None
        if self.location is not None:
            location = {"file": _shown_path(self.location.file, root),
                        "line": self.location.line, "function": self.location.function}
        return {"instanceId": self.instance_id, "name": self.name, "verdict": self.verdict,
                "message": self.message, "sequenceNumber": self.sequence_number,
                "expected": self.expected, "actual": self.actual, "location": location,
                "source": self.source}


class ReplayChecker:
    """Replays histories on the app version `app` (its index and its workers).

    `config` gives maxOrchestrationActions and defaultVersion as the host applies them.
    """

    def __init__(self, app: AppFunctions, config: DurableTaskConfig | None = None, *,
                 clock: Clock | None = None, concurrency: int = 4) -> None:
        self.app = app
        self.config = config or DurableTaskConfig()
        self.clock = clock or SystemClock()
        self.slots = asyncio.Semaphore(max(1, concurrency))

    async def check_all(self, recorded: Sequence[RecordedHistory]) -> list[ReplayResult]:
        """Every history, a few at a time; results in the same order."""
        return list(await asyncio.gather(*(self._bounded(r) for r in recorded)))

    async def _bounded(self, recorded: RecordedHistory) -> ReplayResult:
        async with self.slots:
            return await self.check(recorded)

    async def check(self, recorded: RecordedHistory) -> ReplayResult:
        """The verdict on one history (never raises for what the code does)."""
        base = ReplayResult(recorded.instance_id, recorded.name, "ok", source=recorded.source)
        if find(recorded.events, EventType.ExecutionStarted) is None:
            return _with(base, verdict="not-checked",
                         message="Nothing to replay: the instance has not started yet.")
        spec = self.app.orchestrator(recorded.name)
        invoker = self.app.invoker
        if spec is None or invoker is None:
            return _with(base, verdict="fails", message=wording.unknown_orchestrator_message(
                recorded.name, self.app.names(ORCHESTRATION_TRIGGER)))
        episode = _episode(recorded)
        trigger_name = str(spec.trigger.get("name", "context"))
        try:
            value = await invoker.invoke(spec.name, {trigger_name: build_context(episode)},
                                         timeout=self.app.function_timeout,
                                         reason="ReplayCheck", mode=MODE)
        except FunctionInvocationError as exc:
            return _with(base, verdict="not-checked",
                         message=f"The worker could not replay it: {exc.exc_message}")
        except WorkerError as exc:
            return _with(base, verdict="not-checked", message=str(exc))
        locations = [_location(item) for item in value.get("locations") or []]
        return self._judge(base, episode, value.get("text"), value.get("raised"), locations)

    def _judge(self, base: ReplayResult, episode: Episode, returned: Any, raised: Any,
               locations: list[CodeLocation | None]) -> ReplayResult:
        last = next((loc for loc in reversed(locations) if loc is not None), None)
        now = self.clock.now()
        specs: list[Spec] = []
        try:
            state = parse_sdk_result(returned if isinstance(returned, str) else None,
                                     raised if isinstance(raised, str) else None)
            specs = parse_actions(state, self.config.max_orchestration_actions)
            target = target_of(episode, self.config.default_version)
            for index, spec in enumerate(specs):
                for inner in walk([spec]):
                    try:
                        inner.check(self.app.known(), target)
                    except Rejected as exc:
                        return _with(base, verdict="fails", message=str(exc),
                                     actual=describe_spec(inner),
                                     location=_at(locations, index))
            found = replay(episode, specs, now, self.config.default_version)
        except Rejected as exc:
            return self._diverged(base, exc, specs, locations, last)
        except ProtocolError as exc:
            return _with(base, verdict="fails", message=str(exc), location=last)
        waiting = Waiting(tuple(found.waiting_events), tuple(found.open_ids),
                          tuple(found.unclaimed_events))
        base = _with(base, waiting=waiting)
        return _ending(base, episode, state, found, last)

    def _diverged(self, base: ReplayResult, exc: Rejected, specs: list[Spec],
                  locations: list[CodeLocation | None],
                  last: CodeLocation | None) -> ReplayResult:
        divergence: Divergence | None = exc.divergence
        if divergence is None:
            return _with(base, verdict="fails", message=str(exc), location=last)
        location = last
        if divergence.produced is not None:
            index = _top_level_index(specs, divergence.produced)
            location = _at(locations, index) if index is not None else last
        return _with(base, verdict="diverged", message=str(exc),
                     sequence_number=divergence.sequence_number,
                     expected=describe_event(divergence.recorded),
                     actual=(describe_spec(divergence.produced)
                             if divergence.produced is not None else NOTHING),
                     location=location)


# -- how an execution ended, and how the code ends it -------------------------------------

def _ending(base: ReplayResult, episode: Episode, state: Mapping[str, Any],
            found: ReplayOutcome, last: CodeLocation | None) -> ReplayResult:
    """For an execution history shows as ended: the code must end it the same way."""
    events = episode.all_events
    error = state.get("error")
    ended = final_event(events) or find(events, EventType.ContinueAsNew)
    if ended is None:
        if error:
            # History shows no failure, so the code fails where it did not before.
            return _with(base, verdict="fails", location=last, message=wording.
                         orchestrator_failed(episode.orchestrator_name, str(error)))
        return base
    kind = history.event_type(ended)
    if kind == EventType.ExecutionTerminated:
        return base  # stopped from outside: the code had no say in how it ended
    recorded = _recorded_ending(ended)
    if found.scheduled:
        first = found.scheduled[0]
        produced = describe_event(first)
        return _with(base, verdict="diverged", sequence_number=int(first.get("EventId", -1)),
                     expected=recorded, actual=produced, location=last,
                     message=(f"History recorded the end of the execution ({recorded}), but "
                              f"the current code schedules {produced} instead."))
    if found.continue_as_new is not None:
        actual = "continues as new"
    elif error:
        actual = "fails"
    elif state.get("isDone"):
        actual = "completes"
    else:
        actual = "waits" + (f" for event '{found.waiting_events[0]}'"
                            if found.waiting_events else "")
    expected = {"ContinuedAsNew": "continues as new", "Failed": "fails"}.get(
        _status_name(ended), "completes")
    # A recorded failure may have come from outside the code (a timeout, a worker that
    # crashed): only code that now ends otherwise by itself contradicts it.
    if actual == expected or (expected == "fails" and actual.startswith("waits")):
        return base
    return _with(base, verdict="diverged", expected=recorded, actual=actual, location=last,
                 message=(f"History recorded the end of the execution ({recorded}), but the "
                          f"current code {actual} at that point."))


def _status_name(event: Mapping[str, Any]) -> str:
    if history.event_type(event) == EventType.ContinueAsNew:
        return "ContinuedAsNew"
    try:
        return history.OrchestrationStatus(int(event.get("OrchestrationStatus", 1))).name
    except ValueError:
        return "Completed"


def _recorded_ending(event: Mapping[str, Any]) -> str:
    status = _status_name(event)
    return {"ContinuedAsNew": "continue_as_new", "Failed": "the orchestration failed",
            "Completed": "the orchestration completed"}.get(status, status)


# -- readable actions ---------------------------------------------------------------------

def describe_event(event: Mapping[str, Any]) -> str:
    """A scheduling event as the SDK call that made it: `call_activity('A')`."""
    kind = history.event_type(event)
    name = event.get("Name")
    if kind == EventType.TaskScheduled:
        return "call_http(...)" if name == HTTP_ACTIVITY else f"call_activity('{name}')"
    if kind == EventType.TimerCreated:
        return f"create_timer({event.get('FireAt')})"
    if kind == EventType.SubOrchestrationInstanceCreated:
        return f"call_sub_orchestrator('{name}')"
    if kind == EventType.EventSent:
        return f"an entity operation on '{event.get('InstanceId')}'"
    if kind == EventType.ContinueAsNew:
        return "continue_as_new(...)"
    return kind.name


def code_phrase(actual: str) -> str:
    """What the code does, as a sentence ends: `schedules call_activity('B')`,
    `schedules nothing there`, `completes`."""
    if actual == NOTHING:
        return "schedules nothing there"
    return f"schedules {actual}" if "(" in actual else actual


def describe_spec(spec: Spec) -> str:
    """An action the code produced, as the SDK call that made it."""
    if isinstance(spec, HttpSpec):
        return "call_http(...)"
    if isinstance(spec, ActivitySpec):
        return f"call_activity('{spec.function_name}')"
    if isinstance(spec, TimerSpec):
        when = history.format_timestamp(spec.fire_at) if spec.fire_at else "?"
        return f"create_timer({when})"
    if isinstance(spec, SubOrchestrationSpec):
        return f"call_sub_orchestrator('{spec.function_name}')"
    if isinstance(spec, EntitySpec):
        call = "signal_entity" if spec.signal else "call_entity"
        return f"{call}('{spec.entity_id}', '{spec.operation}')"
    if isinstance(spec, ContinueAsNewSpec):
        return "continue_as_new(...)"
    if isinstance(spec, ExternalEventSpec):
        return f"wait_for_external_event('{spec.event_name}')"
    if isinstance(spec, RetrySpec):
        return describe_spec(spec.inner).replace("(", "_with_retry(", 1)
    if isinstance(spec, CompoundSpec):
        return ("task_all" if spec.wait_all else "task_any") + \
            f"([{', '.join(describe_spec(c) for c in spec.children)}])"
    return type(spec).__name__


# -- helpers ------------------------------------------------------------------------------

def _episode(recorded: RecordedHistory) -> Episode:
    start = find(recorded.events, EventType.ExecutionStarted) or {}
    input_text = start.get("Input")
    return Episode(instance_id=recorded.instance_id, execution_id=recorded.execution_id,
                   past_events=list(recorded.events), new_events=[], discarded=[],
                   deferred=[], needs_replay=True, terminated_reason=None,
                   orchestrator_name=recorded.name,
                   input_text=None if input_text is None else str(input_text))


def _top_level_index(specs: list[Spec], target: Spec) -> int | None:
    for index, spec in enumerate(specs):
        if any(inner is target for inner in walk([spec])):
            return index
    return None


def _at(locations: list[CodeLocation | None], index: int | None) -> CodeLocation | None:
    if index is None or not 0 <= index < len(locations):
        return None
    return locations[index]


def _location(item: Any) -> CodeLocation | None:
    if isinstance(item, list) and len(item) == 3:
        try:
            return CodeLocation(str(item[0]), int(item[1]), str(item[2]))
        except (TypeError, ValueError):
            return None
    return None


def _shown_path(file: str, root: Path | None) -> str:
    if root is None:
        return file
    try:
        return str(Path(file).resolve().relative_to(root.resolve()))
    except ValueError:
        return file


def _with(result: ReplayResult, **changes: Any) -> ReplayResult:
    return replace(result, **changes)


__all__ = ["EXPORT_FORMAT", "MODE", "NOTHING", "CodeLocation", "RecordedHistory", "ReplayChecker",
           "ReplayResult", "Waiting", "code_phrase", "describe_event", "describe_spec"]
