"""One test environment's host, composed from the host's own parts: the app's config,
warm worker processes (`shared.py`), the durable services of a fresh task hub (in
memory, or in Azurite) on a virtual clock, the management API with its loopback RPC
listener, and the HTTP server of the app's triggers on a free port. It runs in the hosts'
event loop (`loop.py`); the environment (`environment.py`) drives it from the test.

It also knows when nothing is happening (`busy`), which the time controls need: no
episode, activity or entity batch running, no function invocation or storage operation
in flight, no background write pending, and no message waiting in the hub's queues
other than timers whose time has not come.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from runtime import __version__, console
from runtime.bindings import DurableBinding
from runtime.clock import Clock, SystemClock, VirtualClock
from runtime.config import (
    HostConfig,
    LocalSettings,
    load_host_config,
    load_local_settings,
    worker_environment,
)
from runtime.durable import engine
from runtime.durable.client import DurableClient
from runtime.durable.services import DurableServices, open_durable
from runtime.durable.taskhub import TaskHub
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.errors import HostError
from runtime.functions import FunctionIndex
from runtime.http.auth import KeyStore
from runtime.http.durable_api import DurableApi
from runtime.http.routes import RouteTable
from runtime.http.server import AppView, HttpServer
from runtime.options import find_config_file
from runtime.testing import shared
from runtime.testing.observed import ObservedTaskHub
from runtime.testing.stubs import StubbingInvoker
from runtime.worker.interpreter import find_app_python
from runtime.worker.pool import WorkerPool, default_worker_count
from runtime.worker.process import WorkerSettings

log = console.get()

Storage = Literal["memory", "azurite"]
_HUB_MAX = 45
VOLATILE = frozenset({"PYTEST_CURRENT_TEST"})


def unique_hub_name(label: str = "") -> str:
    """A task hub name no other test uses: a letter, 12 random hex digits, then the
    letters and digits of `label`, at most 45 characters (the hub name rules)."""
    letters = re.sub(r"[^a-z0-9]", "", label.lower())
    return ("t" + uuid.uuid4().hex[:12] + letters)[:_HUB_MAX]


@dataclass(frozen=True)
class HostSpec:
    """What an environment asks of its host (see `DurableEnvironment`)."""

    app: Path
    storage: Storage = "memory"
    connection_string: str | None = None  # azurite: None means the shared managed one
    host_json: Path | None = None
    settings: Path | None = None
    hub_name: str | None = None
    enable_auth: bool = False
    virtual_time: bool = True
    start_time: datetime | None = None
    workers: int | None = None


class TestHost:
    """The host of one environment, opened by `start` and closed by `stop`."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.script_root = spec.app.resolve()
        self.clock: Clock = VirtualClock(spec.start_time) if spec.virtual_time \
            else SystemClock()
        self.config: HostConfig | None = None
        self.settings: LocalSettings | None = None
        self.keys: KeyStore | None = None
        self.pool: WorkerPool | None = None
        self.pool_key: shared.PoolKey | None = None
        self.index = FunctionIndex(())
        self.services: DurableServices | None = None
        self.api: DurableApi | None = None
        self.server: HttpServer | None = None
        self.invoker: StubbingInvoker | None = None
        self.binding: DurableBinding | None = None
        self.reader: DurableClient | None = None  # reads that the idle check ignores
        self.connection_string: str | None = None
        self.awaiting: dict[str, tuple[str, ...]] = {}  # instance -> events it waits for
        self.started_at = time.monotonic()
        self.hub_name = ""

    # -- parts ------------------------------------------------------------------------

    @property
    def hub(self) -> ObservedTaskHub:
        assert self.services is not None, "the environment is not open"
        hub = self.services.hub
        assert isinstance(hub, ObservedTaskHub)
        return hub

    @property
    def inner_hub(self) -> TaskHub:
        return self.hub.inner

    @property
    def base_url(self) -> str:
        assert self.server is not None, "the environment is not open"
        return f"http://127.0.0.1:{self.server.port}"

    # -- start ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open everything; on failure close what was opened and raise (HostError with
        the reason: ConfigError, IndexingError, AzuriteError, StorageError...)."""
        try:
            await self._start()
        except BaseException:
            await asyncio.shield(self.stop(failed=True))
            raise

    async def _start(self) -> None:
        spec = self.spec
        if not self.script_root.is_dir():
            raise HostError(f"The app folder {self.script_root} does not exist.")
        settings_path = find_config_file(spec.settings, self.script_root,
                                         "local.settings.json")
        host_path = find_config_file(spec.host_json, self.script_root, "host.json")
        self.settings = settings = load_local_settings(settings_path)
        env, _ = worker_environment(settings, os.environ)
        config = load_host_config(host_path, env)
        self.hub_name = spec.hub_name or unique_hub_name()
        config = dataclasses.replace(
            config, durable=dataclasses.replace(config.durable, hub_name=self.hub_name))
        self.config = config
        overrides: dict[str, str] = {}
        if spec.storage == "azurite":
            self.connection_string = spec.connection_string or (
                await shared.azurite.endpoints(self.script_root)).connection_string
            overrides[config.durable.connection_name] = self.connection_string
        env.update(overrides)
        # Workers are shared only by environments that would start them alike (the
        # current test's name aside, which pytest keeps in the environment).
        alike = {k: v for k, v in env.items() if k not in VOLATILE}
        # The app's Python, as `funclocal start` chooses it.
        python = find_app_python(self.script_root, None, os.environ)
        self.pool_key = shared.PoolKey(self.script_root, tuple(sorted(alike.items())),
                                       spec.workers or default_worker_count(env),
                                       python.executable)
        self.pool = await shared.pools.lease(self.pool_key, env, WorkerSettings(
            python=python, log_levels=console.LogLevels(config.log_levels)))
        self.index = self.pool.index
        for name, reason in self.index.skipped:
            log.warning("Function '%s': %s", name, reason)
        self.keys = KeyStore.create(settings.master_key, settings.host_key,
                                    settings.function_keys) if spec.enable_auth else None
        self.services = await open_durable(
            config.durable, connection_string=self.connection_string,
            owner_id=f"funclocal-test:{self.hub_name}", clock=self.clock,
            function_timeout=config.function_timeout, in_memory=spec.storage == "memory",
            wrap_hub=ObservedTaskHub)
        hub = self.hub
        self.reader = DurableClient(hub.inner, config.durable, clock=self.clock)
        # As the host does: management URLs carry the extension's system key.
        key = self.keys.durable_key if self.keys else None
        self.api = api = DurableApi(self.services.client, hub_name=self.hub_name, key=key)
        self.binding = DurableBinding(self.hub_name, lambda: api.rpc_base_url, key)
        self.invoker = StubbingInvoker(self.pool, self.clock)
        self.invoker.on_change = hub.touch
        self.server = HttpServer(route_prefix=config.route_prefix, keys=self.keys,
                                 cors_origins=settings.cors,
                                 cors_credentials=settings.cors_credentials,
                                 function_timeout=config.function_timeout,
                                 status=self.status)
        self.server.bindings.durable = self.binding
        self.server.set_durable(api.public)
        self.server.set_app(AppView(self.index, _routes(self.index), self.invoker))
        dispatcher = self.services.dispatcher
        dispatcher.set_functions(self.index, self.invoker)
        dispatcher.on_commit(self._committed)
        if isinstance(self.clock, VirtualClock):
            self.clock.on_advance(lambda _: dispatcher.notify_all())
        await self.server.start("127.0.0.1", 0)
        await api.start_rpc()
        await self.services.start()

    def _committed(self, episode: engine.Episode, result: engine.EpisodeResult) -> None:
        if result.runtime_status in ("Running", "Suspended"):
            if result.replayed:
                self.awaiting[episode.instance_id] = result.awaiting_events
        else:
            self.awaiting.pop(episode.instance_id, None)

    def status(self) -> Mapping[str, Any]:
        """`GET /admin/host/status`, as the host answers it."""
        return {
            "id": self.hub_name, "state": "Running", "version": __version__,
            "processUptime": int((time.monotonic() - self.started_at) * 1000),
            "workerPids": self.pool.pids if self.pool else [],
            "functions": [f.name for f in self.index.functions],
            "taskHub": self.hub_name, "storage": None,
        }

    # -- stop -------------------------------------------------------------------------

    async def stop(self, *, failed: bool = False) -> None:
        """Stop serving, delete the task hub (Azurite), give the workers back for the
        next environment. Safe to call on a host that did not fully start."""
        services, self.services = self.services, None
        if services is not None and services.dispatcher.running:
            # The task hub is discarded below: nothing is worth waiting for.
            await services.dispatcher.stop(finish=False)
        if self.api is not None:
            await self.api.stop_rpc()
        if self.server is not None:
            await self.server.stop()
        if services is not None:
            try:
                if self.spec.storage == "azurite":
                    await services.hub.delete_task_hub()
            finally:
                await services.close()
        if self.pool is not None and self.pool_key is not None:
            pool, self.pool = self.pool, None
            # Invocations this test left running are not the next test's business.
            busy = any(w.pending for w in pool.workers)
            await shared.pools.release(self.pool_key, pool, keep=not failed and not busy)

    # -- what is going on -------------------------------------------------------------

    def services_busy(self) -> bool:
        """Whether the dispatcher is at work (an episode, an activity, a background
        write). Its work can end just after its last storage write, without a further
        change anyone is told of, so waiters look again soon while it is."""
        return self.services is not None and bool(self.services.dispatcher.busy())

    def busy_inside(self) -> list[str]:
        """What this process is doing for the host now (no storage request needed to
        tell): the dispatcher's work, and storage operations and function invocations
        in flight."""
        services = self.services
        if services is None:
            return []
        hub = self.hub
        reasons = services.dispatcher.busy()
        if hub.in_flight:
            reasons.append(f"{hub.in_flight} storage operation(s) in flight")
        if self.invoker is not None and self.invoker.in_flight:
            reasons.append(f"{self.invoker.in_flight} function invocation(s) running")
        return reasons

    async def busy(self) -> list[str]:
        """What keeps the host from being idle, in words (empty when idle): what
        `busy_inside` says, else messages waiting in the hub's queues."""
        services = self.services
        if services is None:
            return []
        reasons = self.busy_inside()
        if reasons:
            return reasons
        hub = self.hub
        generation = hub.generation
        queued = await self._queued()
        if queued:
            reasons.append(f"{queued} message(s) waiting in the task hub's queues")
        if hub.generation != generation or hub.in_flight or services.dispatcher.busy():
            reasons.append("work started while the queues were looked at")
        return reasons

    async def _queued(self) -> int:
        """Messages in the hub's queues that are not timers waiting for their time."""
        inner = self.inner_hub
        if isinstance(inner, MemoryTaskHub):
            return inner.runnable_count()
        # Elsewhere (Azurite) only visible messages can be seen: locks and abandon delays
        # hide the others, which this process holds or will see again anyway.
        found = await asyncio.gather(*(inner.peek(q, 1) for q in inner.names.all_queues))
        return sum(len(messages) for messages in found)

    def next_timer(self) -> datetime | None:
        """When the earliest durable timer waiting for its time is due (None: none)."""
        found: list[datetime] = []
        inner = self.inner_hub
        if isinstance(inner, MemoryTaskHub):
            due = inner.next_visible_at()
            if due is not None:
                found.append(due)
        if isinstance(self.clock, VirtualClock):
            due = self.clock.next_due()
            if due is not None:
                found.append(due)
        return min(found) if found else None

    def waiting_for_events(self) -> dict[str, tuple[str, ...]]:
        """Running instances that wait for external events, and the events' names."""
        return {i: names for i, names in self.awaiting.items() if names}


def _routes(index: FunctionIndex) -> RouteTable:
    """The route table of the app's HTTP functions, as the host builds it."""
    http = [f for f in index.functions if f.is_http]
    table, errors = RouteTable.build((f.name, f.route, f.methods) for f in http)
    for error in errors:
        log.error("The function '%s' is skipped: %s", getattr(error, "function_name", "?"),
                  error)
    return table


__all__ = ["HostSpec", "Storage", "TestHost", "unique_hub_name"]
