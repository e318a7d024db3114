"""Activity stubs: an activity of the app replaced, for one test environment, by a
fixed result, an exception, or a function of the test's, with every call recorded.

Everything else an activity goes through stays real: the orchestration schedules it,
its work item is queued and checkpointed, and its input and result are converted by
`azure.functions`' activity converter exactly as the worker converts them, so the
orchestrator sees what the real activity would give it (a raised exception becomes the
activity's TaskFailed, with the extension's message).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from runtime import console
from runtime.clock import Clock
from runtime.durable.app import Invoker
from runtime.errors import FunctionInvocationError

log = console.get("worker")

_UNSET: Any = object()


@dataclass(frozen=True)
class ActivityCall:
    """One call of a stubbed activity: the input it got (as the activity function would
    get it), what it returned or raised, and the durable (virtual) time of the call."""

    input: Any
    result: Any = None
    error: BaseException | None = None
    at: datetime | None = None


class ActivityStub:
    """A stubbed activity (`DurableEnvironment.stub_activity` makes them).

    `name` is the durable name the orchestrations call, `function` the app's function
    name; `calls` lists every call in order (`inputs` just their inputs).
    """

    def __init__(self, name: str, function: str, *, result: Any = _UNSET,
                 raises: BaseException | type[BaseException] | None = None,
                 call: Callable[[Any], Any] | None = None,
                 caller_loop: asyncio.AbstractEventLoop | None = None) -> None:
        given = (result is not _UNSET) + (raises is not None) + (call is not None)
        if given > 1:
            raise ValueError("stub_activity takes one of result=, raises= or call=, not "
                             f"{given} of them")
        self.name = name
        self.function = function
        self._result = result
        self._raises = raises
        self._call = call
        self._caller_loop = caller_loop
        self.calls: list[ActivityCall] = []
        self.removed = False
        self._remove: Callable[[ActivityStub], None] | None = None

    @property
    def inputs(self) -> list[Any]:
        return [c.input for c in self.calls]

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def remove(self) -> None:
        """Give the activity back to the app's own function for the rest of the test."""
        if self._remove is not None and not self.removed:
            self._remove(self)
        self.removed = True

    def __repr__(self) -> str:
        return f"<ActivityStub {self.name!r}: {self.call_count} call(s)>"

    async def answer(self, value: Any) -> Any:
        """What the stub gives for `value` (raises what it raises)."""
        if self._raises is not None:
            raise self._raises
        if self._call is None:
            return None if self._result is _UNSET else self._result
        if inspect.iscoroutinefunction(self._call):
            loop = self._caller_loop
            if loop is not None and loop.is_running() and not loop.is_closed() \
                    and loop is not asyncio.get_running_loop():
                # A coroutine of the test runs in the test's loop (its events and locks
                # belong there).
                future = asyncio.run_coroutine_threadsafe(self._call(value), loop)
                return await asyncio.wrap_future(future)
            return await self._call(value)
        result = await asyncio.to_thread(self._call, value)
        if inspect.isawaitable(result):
            result = await result
        return result


class StubbingInvoker:
    """The invoker the test host hands the dispatcher and the HTTP server: stubbed
    activities are answered here, everything else runs in the worker processes. Counts
    invocations in flight, and calls `on_change` when one ends."""

    def __init__(self, workers: Invoker, clock: Clock) -> None:
        self.workers = workers
        self.clock = clock
        self.stubs: dict[str, ActivityStub] = {}  # by function name
        self.in_flight = 0
        self.on_change: Callable[[], None] = lambda: None

    def add(self, stub: ActivityStub) -> None:
        previous = self.stubs.get(stub.function)
        if previous is not None:
            previous.removed = True
        self.stubs[stub.function] = stub
        stub._remove = self._drop

    def _drop(self, stub: ActivityStub) -> None:
        if self.stubs.get(stub.function) is stub:
            del self.stubs[stub.function]

    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = "(null)", affinity: str | None = None,
                     exclusive: bool = False, quiet_failure: bool = False,
                     mode: str | None = None) -> dict[str, Any]:
        self.in_flight += 1
        try:
            stub = self.stubs.get(function)
            if stub is None:
                return await self.workers.invoke(
                    function, inputs, invocation_id=invocation_id, timeout=timeout,
                    reason=reason, affinity=affinity, exclusive=exclusive,
                    quiet_failure=quiet_failure, mode=mode)
            return await self._stubbed(stub, inputs, invocation_id or str(uuid.uuid4()))
        finally:
            self.in_flight -= 1
            self.on_change()

    async def _stubbed(self, stub: ActivityStub, inputs: dict[str, Any],
                       invocation_id: str) -> dict[str, Any]:
        function = stub.function
        log.info("Executing 'Functions.%s' (Reason='stubbed by the test', Id=%s)", function,
                 invocation_id)
        started = time.perf_counter()
        text = next(iter(inputs.values()), "null")
        with warnings.catch_warnings():
            # azure-functions' notice that decode ran without an expected type: the worker
            # decodes activity inputs so too, and the test can do nothing about it.
            warnings.simplefilter("ignore", DeprecationWarning)
            value = ActivityTriggerConverter.decode(meta.Datum(type="json", value=text),
                                                    trigger_metadata=None)
        at = self.clock.now()
        outcome = "Failed"
        try:
            try:
                result = await stub.answer(value)
                encoded = ActivityTriggerConverter.encode(result, expected_type=None).value
            except Exception as exc:  # noqa: BLE001 - reported as the worker reports it
                stub.calls.append(ActivityCall(value, error=exc, at=at))
                detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                log.error("Executed 'Functions.%s' failed: %s: %s", function,
                          type(exc).__name__, exc)
                raise FunctionInvocationError(function, type(exc).__name__, str(exc),
                                              detail) from None
            stub.calls.append(ActivityCall(value, result=result, at=at))
            outcome = "Succeeded"
            return {"kind": "json", "text": encoded}
        finally:
            log.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", function, outcome,
                     invocation_id, int((time.perf_counter() - started) * 1000))


__all__ = ["ActivityCall", "ActivityStub", "StubbingInvoker"]
