"""The durable runtime of one task hub in the test's own process: the real dispatcher,
client and engine over a task hub (in memory or on Azurite), with the app's functions
run by the worker's own invocation code in a thread pool instead of a worker process.

Only the process boundary is left out: imports, bindings, the SDK's replay (with the
unmodified-SDK verification on) and activity conversions are the worker's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.clock import Clock, SystemClock, VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable.client import DurableClient
from runtime.durable.dispatcher import Dispatcher
from runtime.durable.history import EventType
from runtime.durable.leases import AllPartitions, Partitions
from runtime.durable.taskhub import TaskHub
from runtime.errors import FunctionInvocationError
from runtime.functions import FunctionIndex
from runtime.worker.child import invocation
from runtime.worker.child.loader import load_app
from runtime.worker.child.orchestrations import MISMATCH, OrchestratorRunner
from runtime.worker.child.sessions import SessionCache
from runtime.worker.child.tracebacks import user_traceback
from support.host import APPS

TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")


class InProcessInvoker:
    """Runs an app's functions as a worker does, in this process."""

    def __init__(self, script_root: Path) -> None:
        for name in ("function_app", "models"):
            sys.modules.pop(name, None)
        self.script_root = script_root
        self.functions = load_app(script_root)
        self.index = FunctionIndex.build([f.describe() for f in self.functions.values()])
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.mismatches: list[str] = []
        self.runner = OrchestratorRunner(SessionCache(), verify=True,
                                         report=self.mismatches.append)
        self.calls: list[str] = []
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = "", affinity: str | None = None,
                     exclusive: bool = False, quiet_failure: bool = False,
                     mode: str | None = None) -> dict[str, Any]:
        self.calls.append(function)
        self.active[function] += 1
        self.peak[function] = max(self.peak[function], self.active[function])
        message = {"inputs": inputs, "invocation_id": invocation_id or str(uuid.uuid4()),
                   "script_root": str(self.script_root), **({"mode": mode} if mode else {})}
        try:
            return await invocation.run(self.functions[function], message, self.executor,
                                        self.runner)
        except Exception as exc:  # noqa: BLE001 - reported as the worker reports it
            raise FunctionInvocationError(function, type(exc).__name__, str(exc),
                                          user_traceback(exc)) from None
        finally:
            self.active[function] -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        assert not [m for m in self.mismatches if MISMATCH in m], self.mismatches


@dataclass
class Rig:
    hub: TaskHub
    dispatcher: Dispatcher
    client: DurableClient
    clock: Clock
    invoker: InProcessInvoker
    extra: list[Dispatcher] = field(default_factory=list)

    async def start(self, name: str, value: Any = None, instance_id: str | None = None) -> str:
        """Start `name` as the Python SDK's client does: it JSON-encodes the input and
        posts that text as JSON, so the stored input is encoded twice."""
        text = None if value is None else json.dumps(json.dumps(value))
        return await self.client.start_new(name, instance_id, text)

    async def wait(self, instance_id: str, *, statuses: tuple[str, ...] = TERMINAL,
                   timeout: float = 20.0) -> dict[str, Any]:
        """The instance's status once it reaches one of `statuses`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = await self.client.get_status(instance_id, show_history=True,
                                                  show_history_output=True)
            if status is not None and status["runtimeStatus"] in statuses:
                return status
            if loop.time() > deadline:
                raise AssertionError(f"{instance_id} is still {status and status['runtimeStatus']}"
                                     f" after {timeout} s: {status}")
            await asyncio.sleep(0.01)

    async def history_kinds(self, instance_id: str) -> list[str]:
        snapshot = await self.hub.load_history(instance_id)
        return [EventType(e["EventType"]).name for e in snapshot.events]


@asynccontextmanager
async def durable_rig(hub: TaskHub, *, clock: Clock | None = None,
                      partitions: Partitions | None = None, app: Path = APPS / "dispatcher",
                      config: DurableTaskConfig | None = None,
                      dispatchers: int = 1) -> AsyncIterator[Rig]:
    """Start the dispatcher(s) on `hub`; stopped on exit (every work item handed back)."""
    clock = clock or SystemClock()
    config = config or DurableTaskConfig(hub_name=hub.hub_name,
                                         partition_count=hub.partition_count)
    invoker = InProcessInvoker(app)
    started: list[Dispatcher] = []
    for _ in range(dispatchers):
        dispatcher = Dispatcher(hub, partitions or AllPartitions(hub.partition_count), config,
                                clock=clock)
        dispatcher.set_functions(invoker.index, invoker)
        started.append(dispatcher)
    first = started[0]
    client = DurableClient(hub, config, app=first.app, notify=first.notify_instance,
                           clock=clock)
    if isinstance(clock, VirtualClock):
        clock.on_advance(lambda now: [d.notify_all() for d in started])
    for dispatcher in started:
        await dispatcher.start()
    try:
        yield Rig(hub, first, client, clock, invoker, started[1:])
    finally:
        for dispatcher in started:
            await dispatcher.stop()
        invoker.close()
