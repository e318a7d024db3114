"""`DurableEnvironment`: the user-facing test environment (see `runtime.testing`).

Its host runs in the hosts' event loop (`loop.py`), in this process; user code runs in
worker processes. Its methods are coroutines of the test's loop that hand their work to
that loop, so they work from any loop pytest-asyncio gives a test; `open` and `close`
block, for synchronous fixtures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from runtime.clock import VirtualClock
from runtime.durable.history import OrchestrationStatus
from runtime.errors import HarnessError
from runtime.http.durable_api import status_payload
from runtime.testing import control, loop, sdk
from runtime.testing.capture import Console
from runtime.testing.history import HistoryEvent, format_history, typed
from runtime.testing.hosting import HostSpec, Storage, TestHost
from runtime.testing.http import HttpClient
from runtime.testing.stubs import _UNSET, ActivityStub

DEFAULT_TIMEOUT = 30.0  # seconds of real time a wait gives an instance
START_TIMEOUT = 120.0  # a cold start: Azurite and a worker process


def _status_names(status: Any) -> frozenset[str]:
    """The runtime status names asked for; HarnessError for a name no instance can have
    (a typo would otherwise wait out its whole timeout)."""
    items = [status] if isinstance(status, str) or not isinstance(status, Iterable) \
        else list(status)
    names = frozenset(str(getattr(s, "value", s)) for s in items)
    known = {s.name for s in OrchestrationStatus}
    unknown = sorted(names - known)
    if unknown or not names:
        raise HarnessError(f"Not a runtime status: {', '.join(unknown) or 'none given'}; "
                           f"one of {', '.join(sorted(known))}.")
    return names


class DurableEnvironment:
    """The app in a real funclocal host, with a fresh task hub, for one test.

    Make one with `in_memory(app)` or `on_azurite(app)` and open it with `async with`
    (or `open()`/`close()`). While it is open:

    - `client` is the SDK's own `DurableOrchestrationClient`, bound to this host as a
      durableClient input would be: `start_new`, `get_status`, `raise_event`,
      `signal_entity`, `read_entity_state`... work as in the app's starters;
    - `wait_for_completion`, `wait_for_status`, `wait_for_custom_status` and
      `wait_until_idle` wait, with a deadline in real seconds; on timeout they raise
      `WaitTimeout` (an AssertionError) telling what the instance waits for, with its
      history;
    - durable time is virtual: `now()`, `fast_forward(timedelta)`, and `auto_skip`
      (on by default): while a wait waits and the host is idle with every running
      instance waiting only on timers, time skips to the next timer;
    - `stub_activity(name, ...)` replaces an activity for this environment;
    - `history(instance_id)` gives the instance's events; `console` the host's output;
    - `http` calls the app's HTTP functions (`base_url`, keys when auth is on).

    Errors: HostError subclasses (ConfigError, IndexingError, AzuriteError,
    HarnessError...) when the environment cannot open, WaitTimeout from waits.
    """

    def __init__(self, app: str | Path = ".", *, storage: Storage = "memory",
                 connection_string: str | None = None, host_json: str | Path | None = None,
                 settings: str | Path | None = None, hub_name: str | None = None,
                 enable_auth: bool = False, virtual_time: bool = True,
                 auto_skip: bool = True, start_time: datetime | None = None,
                 timeout: float = DEFAULT_TIMEOUT, workers: int | None = None) -> None:
        if storage not in ("memory", "azurite"):
            raise HarnessError(f"storage must be 'memory' or 'azurite', not {storage!r}")
        self.spec = HostSpec(
            app=Path(app), storage=storage, connection_string=connection_string,
            host_json=Path(host_json) if host_json is not None else None,
            settings=Path(settings) if settings is not None else None, hub_name=hub_name,
            enable_auth=enable_auth, virtual_time=virtual_time, start_time=start_time,
            workers=workers)
        self.auto_skip = auto_skip
        self.timeout = timeout
        self.console = Console()
        self._host: TestHost | None = None
        self._client: Any = None
        self._http: HttpClient | None = None

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def in_memory(cls, app: str | Path = ".", **options: Any) -> DurableEnvironment:
        """An environment whose task hub lives in this process: no Azure Storage, the
        fastest start. `options` as for the constructor."""
        return cls(app, storage="memory", **options)

    @classmethod
    def on_azurite(cls, app: str | Path = ".", *, connection_string: str | None = None,
                   **options: Any) -> DurableEnvironment:
        """An environment whose task hub is in Azurite (tables, queues and blobs in the
        Durable Task Framework's layout): the Azurite at `connection_string`, else one
        started for this process on free ports (kept for the next environments)."""
        return cls(app, storage="azurite", connection_string=connection_string, **options)

    # -- opening and closing ----------------------------------------------------------

    @property
    def storage(self) -> Storage:
        return self.spec.storage

    @property
    def is_open(self) -> bool:
        return self._host is not None

    async def __aenter__(self) -> DurableEnvironment:
        await loop.call(self._open())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await loop.call(self._close())

    def open(self) -> DurableEnvironment:
        """Open the environment from synchronous code (a fixture); blocks."""
        loop.run(self._open(), timeout=START_TIMEOUT)
        return self

    def close(self) -> None:
        """Close it from synchronous code; blocks. Closing twice is harmless."""
        loop.run(self._close(), timeout=START_TIMEOUT)

    async def _open(self) -> None:
        if self._host is not None:
            raise HarnessError("This environment is open already.")
        # Before the test makes SDK clients of its own (from `client_binding`).
        sdk.install()
        self.console.attach()
        host = TestHost(self.spec)
        try:
            await host.start()
        except BaseException:
            self.console.detach()
            raise
        self._host = host

    async def _close(self) -> None:
        host, self._host = self._host, None
        try:
            if host is not None:
                await host.stop()
        finally:
            self.console.detach()

    @property
    def host(self) -> TestHost:
        if self._host is None:
            raise HarnessError("The environment is not open: use `async with env:` or "
                               "env.open().")
        return self._host

    # -- what it serves ---------------------------------------------------------------

    @property
    def app(self) -> Path:
        """The app's folder (script root)."""
        return self.host.script_root

    @property
    def hub_name(self) -> str:
        """This environment's task hub (fresh for each environment)."""
        return self.host.hub_name

    @property
    def functions(self) -> list[str]:
        """The app's function names, as indexed."""
        return [f.name for f in self.host.index.functions]

    @property
    def base_url(self) -> str:
        """Where the host serves: `http://127.0.0.1:<port>`."""
        return self.host.base_url

    @property
    def client_binding(self) -> str:
        """The JSON a durableClient input of an HTTP function gets from this host."""
        binding = self.host.binding
        assert binding is not None
        return binding.json_for(self.base_url)

    @property
    def client(self) -> Any:
        """The SDK's `DurableOrchestrationClient` bound to this host."""
        if self._client is None:
            self._client = sdk.new_client(self.client_binding)
        return self._client

    @property
    def http(self) -> HttpClient:
        """A client for the app's HTTP functions on this host."""
        if self._http is None:
            self._http = HttpClient(self.base_url, self.host.keys)
        return self._http

    @property
    def master_key(self) -> str | None:
        keys = self.host.keys
        return keys.master_key if keys else None

    # -- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """Durable time (UTC): what history timestamps and `current_utc_datetime` read."""
        return self.host.clock.now()

    async def fast_forward(self, delta: timedelta, *, timeout: float | None = None) -> datetime:
        """Move durable time forward by `delta`: first let the host finish what it is
        doing, then fire every timer due within `delta` in order, letting the host run
        what each one wakes. Returns the new durable time. HarnessError on a real clock;
        WaitTimeout when the host does not settle within `timeout` seconds."""
        return await loop.call(control.fast_forward(self.host, delta, self._timeout(timeout)))

    @property
    def virtual_time(self) -> bool:
        return isinstance(self.host.clock, VirtualClock)

    # -- waiting ------------------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    async def _wait(self, instance_id: str, accept: Callable[[dict[str, Any] | None], bool],
                    wanted: str, timeout: float | None) -> Any:
        status = await loop.call(control.wait_for(
            self.host, instance_id, accept, wanted, timeout=self._timeout(timeout),
            auto_skip=self.auto_skip))
        return _sdk_status(status)

    async def wait_for_completion(self, instance_id: str, *,
                                  timeout: float | None = None) -> Any:
        """The instance's status (the SDK's `DurableOrchestrationStatus`) once it has
        completed, failed or been terminated."""
        return await self._wait(
            instance_id, lambda s: s is not None and s["runtimeStatus"] in control.TERMINAL,
            "complete", timeout)

    async def wait_for_status(self, instance_id: str, status: Any, *,
                              timeout: float | None = None) -> Any:
        """The instance's status once its runtime status is `status` (a name such as
        "Running", an `OrchestrationRuntimeStatus`, or several of them)."""
        names = _status_names(status)
        return await self._wait(
            instance_id, lambda s: s is not None and s["runtimeStatus"] in names,
            f"be {' or '.join(sorted(names))}", timeout)

    async def wait_for_custom_status(self, instance_id: str, expected: Any, *,
                                     timeout: float | None = None) -> Any:
        """The instance's status once its custom status equals `expected`, or, when
        `expected` is callable, once `expected(custom_status)` is true."""
        def accept(status: dict[str, Any] | None) -> bool:
            if status is None:
                return False
            value = status.get("customStatus")
            try:
                return bool(expected(value)) if callable(expected) else value == expected
            except (KeyError, TypeError, IndexError):
                return False
        wanted = "have the custom status " + (
            getattr(expected, "__name__", "asked for") if callable(expected)
            else json.dumps(expected, default=str))
        return await self._wait(instance_id, accept, wanted, timeout)

    async def wait_until_idle(self, *, timeout: float | None = None) -> None:
        """Wait until the host has nothing left to do now: every message processed,
        nothing running (entity signals applied, for instance). Time does not move."""
        await loop.call(control.settle(self.host, self._timeout(timeout)))

    # -- history ------------------------------------------------------------------------

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history (its current execution), oldest first."""
        host = self.host

        async def read() -> list[HistoryEvent]:
            snapshot = await host.inner_hub.load_history(instance_id)
            return typed(snapshot.events)
        return await loop.call(read())

    async def describe(self) -> str:
        """Every instance of the task hub with its status and history, as text (what
        the pytest plugin adds to a failed test's report)."""
        return await loop.call(self._describe())

    def describe_now(self) -> str:
        """`describe` from synchronous code (a pytest hook); blocks."""
        return loop.run(self._describe(), timeout=30.0)

    async def _describe(self, limit: int = 20) -> str:
        host = self.host
        rows, _ = await host.inner_hub.query_instances(top=limit)
        if not rows:
            return f"Task hub {host.hub_name} has no instances."
        blocks: list[str] = []
        for row in rows:
            instance_id = str(row.get("InstanceId"))
            snapshot = await host.inner_hub.load_history(instance_id)
            header = f"Instance '{instance_id}' ({row.get('Name')}): {row.get('RuntimeStatus')}"
            output = row.get("Output")
            if output:
                header += f", output {output if len(output) < 300 else output[:297] + '...'}"
            blocks.append(header + "\n" + format_history(typed(snapshot.events)))
        when = ""
        if isinstance(host.clock, VirtualClock):
            when = f" (durable time {host.clock.now().isoformat()})"
        return f"Task hub {host.hub_name}{when}:\n" + "\n\n".join(blocks)

    # -- stubs --------------------------------------------------------------------------

    def stub_activity(self, name: str, *, result: Any = _UNSET,
                      raises: BaseException | type[BaseException] | None = None,
                      call: Callable[[Any], Any] | None = None) -> ActivityStub:
        """Replace the activity `name` (its durable name, as orchestrations call it) for
        the rest of this environment: every call returns `result`, raises `raises`, or
        returns what `call(input)` returns (a function or a coroutine function; a
        coroutine runs in the test's event loop). Without any of them it returns None.
        The returned stub records each call (`calls`, `inputs`); `stub.remove()` puts
        the app's activity back. HarnessError when the app has no such activity."""
        host = self.host
        spec = host.index.durable("activityTrigger", name)
        if spec is None:
            known = ", ".join(host.index.durable_names("activityTrigger")) or "none"
            raise HarnessError(f"The app has no activity named '{name}' to stub "
                               f"(its activities: {known}).")
        try:
            caller = asyncio.get_running_loop()
        except RuntimeError:
            caller = None
        stub = ActivityStub(spec.durable_name, spec.name, result=result, raises=raises,
                            call=call, caller_loop=caller)
        assert host.invoker is not None
        host.invoker.add(stub)
        return stub

    def __repr__(self) -> str:
        state = f"hub {self._host.hub_name}" if self._host else "closed"
        return f"<DurableEnvironment {self.spec.storage} {self.spec.app} ({state})>"


def _sdk_status(status: dict[str, Any]) -> Any:
    """The status as the SDK's client returns it (`DurableOrchestrationStatus`)."""
    from azure.durable_functions.models.DurableOrchestrationStatus import (
        DurableOrchestrationStatus,
    )

    return DurableOrchestrationStatus.from_json(status_payload(status))


__all__ = ["DEFAULT_TIMEOUT", "DurableEnvironment"]
