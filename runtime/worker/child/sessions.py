"""Extended sessions: keep an orchestration's live SDK state between its episodes.

The SDK replays an orchestration from its first event on every episode, so the work of
an episode grows with the history, and a long orchestration's total work is quadratic.
While one worker holds an instance (the host routes an instance's episodes to the same
worker), this module keeps the SDK's executor, context and suspended generator after an
episode and, on the next one, feeds them only the events beyond what they have seen.

That is the same sequence of `process_event` calls a full replay would make, on the
same objects a full replay would have built from the shared prefix, so the state JSON
is the same. A session is used only when that holds: same instance, same execution,
same function, the new history starting with exactly the events already processed and
its new episode starting after them. Anything else is a full replay (which starts a
new session). Only the replay flags differ between the two paths, and the only way user
code can see them is `context.is_replaying` (or the raw `context.histories`): a function
that reads either is run with full replays from then on, and an episode in which it read
them on a continued session is run again with a full replay.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SDK_ORCHESTRATOR_MODULE = "azure.durable_functions.orchestrator"
MINIMUM_SDK = (1, 7)  # the executor this module mirrors, checked against these versions
ORCHESTRATOR_STARTED = 12

DEFAULT_MAX_SESSIONS = 256
DEFAULT_MAX_EVENTS = 100_000  # about 100 MB of history objects at ~1 KB an event
DEFAULT_IDLE_SECONDS = 60.0

_sdk_lock = threading.Lock()
_sdk: _Sdk | None = None
_sdk_checked = False


@dataclass(frozen=True)
class _Sdk:
    """The SDK pieces a session drives, resolved once."""

    handle_code: Any
    executor_type: Any
    event_type: Any
    context_type: Any


def _load_sdk() -> _Sdk | None:
    """The SDK, if it is loaded and is a version this module was checked against."""
    global _sdk, _sdk_checked
    if _sdk_checked:
        return _sdk
    if SDK_ORCHESTRATOR_MODULE not in sys.modules:
        return None  # not loaded (yet): no SDK orchestrator can exist
    with _sdk_lock:
        if not _sdk_checked:
            _sdk = _resolve_sdk()
            _sdk_checked = True
    return _sdk


def _resolve_sdk() -> _Sdk | None:
    import importlib.metadata

    try:
        version = importlib.metadata.version("azure-functions-durable")
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    if not MINIMUM_SDK <= numbers < (2, 0):
        return None
    from azure.durable_functions.models.DurableOrchestrationContext import (
        DurableOrchestrationContext,
    )
    from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
    from azure.durable_functions.models.TaskOrchestrationExecutor import (
        TaskOrchestrationExecutor,
    )
    from azure.durable_functions.orchestrator import Orchestrator

    needed = ("execute", "process_event", "get_orchestrator_state_str",
              "has_execution_completed", "_find_new_events_start_index")
    if not all(hasattr(TaskOrchestrationExecutor, name) for name in needed):
        return None

    class SessionContext(DurableOrchestrationContext):  # type: ignore[misc]
        """The SDK's context, noting when user code reads what differs between a
        continued session and a full replay."""

        _funclocal_observed = False

        @property
        def is_replaying(self) -> Any:
            self._funclocal_observed = True
            return super().is_replaying

        @property
        def histories(self) -> Any:
            self._funclocal_observed = True
            return super().histories

    SessionContext.__name__ = SessionContext.__qualname__ = "DurableOrchestrationContext"
    handle_code = Orchestrator.create(_placeholder).__code__
    return _Sdk(handle_code, TaskOrchestrationExecutor, HistoryEvent, SessionContext)


def _placeholder(context: Any) -> Any:
    return None


def is_sdk_orchestrator(function: Any) -> bool:
    """Whether a user function is the handler `Orchestrator.create` made (as DFApp's
    orchestration_trigger does), wrapping a generator function."""
    sdk = _load_sdk()
    return (sdk is not None and getattr(function, "__code__", None) is sdk.handle_code
            and callable(getattr(function, "orchestrator_function", None)))


@dataclass
class _Session:
    handle: Any
    execution_id: str | None
    settings: dict[str, Any]
    events: list[dict[str, Any]]  # as processed, IsPlayed set to what later episodes send
    unplayed_from: int  # HistoryEvents from here on were built with IsPlayed false
    context: Any
    executor: Any
    last_used: float


@dataclass
class SessionStats:
    continued: int = 0
    replayed: int = 0
    redone: int = 0
    plain: int = 0
    evicted: int = 0
    events_fed: int = 0


_REDO = object()


@dataclass
class SessionCache:
    """Live SDK state per instance id, for the SDK orchestrators of one worker."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_events: int = DEFAULT_MAX_EVENTS
    idle_seconds: float = DEFAULT_IDLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    stats: SessionStats = field(default_factory=SessionStats)
    _sessions: OrderedDict[str, _Session] = field(default_factory=OrderedDict)
    _events: int = 0
    _plain: set[Any] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self._sessions)

    def run(self, handle: Callable[[Any], str], body: str) -> str:
        """What `handle(body)` returns (or raises), from a session where one applies."""
        sdk = _load_sdk()
        fn = getattr(handle, "orchestrator_function", None)
        if sdk is None or fn is None or getattr(handle, "__code__", None) is not \
                sdk.handle_code or fn in self._plain:
            self.stats.plain += 1
            return handle(body)
        try:
            payload = json.loads(body)
        except (TypeError, ValueError):
            payload = None  # the handler reports it in its own words
        history = payload.get("history") if isinstance(payload, dict) else None
        instance_id = payload.get("instanceId") if isinstance(payload, dict) else None
        if not isinstance(history, list) or not isinstance(instance_id, str):
            self.stats.plain += 1
            return handle(body)
        session = self._take(instance_id)
        if session is not None and session.handle is handle:
            state = self._continue(sdk, instance_id, session, payload)
            if state is _REDO:
                self.stats.redone += 1
                redone: str = handle(body)
                return redone
            if isinstance(state, str):
                return state
        return self._replay(sdk, handle, fn, instance_id, payload)

    def discard(self, instance_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(instance_id, None)
            if session is not None:
                self._events -= len(session.events)

    def evict_idle(self) -> int:
        """Drop sessions unused for `idle_seconds`; returns how many."""
        with self._lock:
            evicted = self._evict(self.clock())
        return len(evicted)  # released here, outside the lock: see _evict

    def clear(self) -> None:
        with self._lock:
            dropped = list(self._sessions.values())
            self._sessions.clear()
            self._events = 0
        del dropped

    # -- internals --------------------------------------------------------------------

    def _take(self, instance_id: str) -> _Session | None:
        # Taken out while in use: a concurrent episode of the same instance (which the
        # host does not send) would find nothing and replay in full.
        with self._lock:
            evicted = self._evict(self.clock())
            session = self._sessions.pop(instance_id, None)
            if session is not None:
                self._events -= len(session.events)
        del evicted
        return session

    def _keep(self, instance_id: str, session: _Session) -> None:
        if len(session.events) > self.max_events:
            return
        with self._lock:
            now = self.clock()
            session.last_used = now
            evicted = []
            old = self._sessions.pop(instance_id, None)
            if old is not None:
                self._events -= len(old.events)
                evicted.append(old)
            self._sessions[instance_id] = session
            self._events += len(session.events)
            evicted += self._evict(now)
        del evicted

    def _evict(self, now: float) -> list[_Session]:
        """Take out sessions over the bounds or idle, oldest first. The caller drops
        them after releasing the lock: closing a suspended generator runs user code
        (its `finally` blocks), as it would when a full replay's generator is dropped."""
        evicted: list[_Session] = []
        while self._sessions:
            instance_id, oldest = next(iter(self._sessions.items()))
            if (len(self._sessions) <= self.max_sessions and self._events <= self.max_events
                    and now - oldest.last_used < self.idle_seconds):
                break
            del self._sessions[instance_id]
            self._events -= len(oldest.events)
            evicted.append(oldest)
        self.stats.evicted += len(evicted)
        return evicted

    def _replay(self, sdk: _Sdk, handle: Any, fn: Any, instance_id: str,
                payload: dict[str, Any]) -> str:
        """A full replay, as `Orchestrator.create`'s handler does it, keeping the state."""
        self.stats.replayed += 1
        history: list[dict[str, Any]] = payload["history"]
        context = sdk.context_type(**payload)
        context._input_expected_type = getattr(handle, "_df_input_type", None)
        context._funclocal_observed = False
        executor = sdk.executor_type()
        try:
            # The handler passes context.histories: the same list, read without noting.
            state: str = executor.execute(context, context._histories, fn)
        finally:
            if context._funclocal_observed:
                self._plain.add(fn)
        if not context._funclocal_observed and not executor.has_execution_completed:
            self._keep(instance_id, self._new_session(handle, payload, history, 0,
                                                      context, executor))
        return state

    def _continue(self, sdk: _Sdk, instance_id: str, session: _Session,
                  payload: dict[str, Any]) -> object:
        """The state after feeding the session the new events; None when the session
        does not fit this history, _REDO when the episode must be replayed in full."""
        history: list[dict[str, Any]] = payload["history"]
        done = len(session.events)
        if len(history) <= done or history[:done] != session.events \
                or not all(isinstance(raw, dict) for raw in history[done:]) \
                or _execution_id(history) != session.execution_id \
                or _settings(payload) != session.settings:
            return None
        start = _last_orchestrator_started(history)
        if start < done:
            return None  # the new episode would begin inside what was processed
        self.stats.continued += 1
        self.stats.events_fed += len(history) - done
        context, executor = session.context, session.executor
        # What a full replay would build: every earlier event now marked played.
        for event in context._histories[session.unplayed_from:]:
            event._is_played = True
        context._histories.extend(sdk.event_type(**raw) for raw in history[done:])
        context._funclocal_observed = False
        # The tail of TaskOrchestrationExecutor.execute, from where the session stopped.
        executor._new_events_start_index = start
        executor._is_processing_new_events = False
        try:
            for index in range(done, len(history)):
                if index >= start:
                    executor._is_processing_new_events = True
                executor.process_event(context._histories[index])
                if executor.has_execution_completed:
                    break
            state: str = executor.get_orchestrator_state_str()
        except Exception:
            if context._funclocal_observed:
                self._plain.add(session.handle.orchestrator_function)
                return _REDO
            raise
        if context._funclocal_observed:
            self._plain.add(session.handle.orchestrator_function)
            return _REDO
        if not executor.has_execution_completed:
            self._keep(instance_id, self._new_session(session.handle, payload, history, done,
                                                      context, executor))
        return state

    def _new_session(self, handle: Any, payload: dict[str, Any],
                     history: list[dict[str, Any]], unplayed_from: int, context: Any,
                     executor: Any) -> _Session:
        # Later episodes send every one of these events as played.
        while unplayed_from < len(history) and history[unplayed_from].get("IsPlayed") is True:
            unplayed_from += 1
        for raw in history[unplayed_from:]:
            raw["IsPlayed"] = True
        return _Session(handle=handle, execution_id=_execution_id(history),
                        settings=_settings(payload), events=history,
                        unplayed_from=unplayed_from, context=context, executor=executor,
                        last_used=self.clock())


def _settings(payload: dict[str, Any]) -> dict[str, Any]:
    """The context fields besides the history, which a session must not see change."""
    return {k: v for k, v in payload.items() if k not in ("history", "isReplaying")}


def _last_orchestrator_started(history: list[dict[str, Any]]) -> int:
    for index in range(len(history) - 1, -1, -1):
        if history[index].get("EventType") == ORCHESTRATOR_STARTED:
            return index
    return -1


def _execution_id(history: list[dict[str, Any]]) -> str | None:
    for event in history:
        if event.get("EventType") == 0:  # ExecutionStarted
            instance = event.get("OrchestrationInstance") or {}
            value = instance.get("ExecutionId") if isinstance(instance, dict) else None
            return str(value) if value is not None else None
    return None
