"""Composition root and lifecycle: the HTTP listener, the app's versions (workers,
storage, the durable runtime) and hot reload, started in the right order and stopped
cleanly."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime import __version__, console
from runtime.config import HostConfig, LocalSettings
from runtime.errors import IndexingError, PortTaken
from runtime.functions import FunctionIndex
from runtime.http.server import HttpServer
from runtime.options import DEFAULT_PORT, HostOptions
from runtime.reload import Reloader
from runtime.versions import AppVersion, LoadedConfig, Versions
from runtime.watch import WatchPlan
from runtime.worker.debug_proxy import DebugProxy
from runtime.worker.interpreter import AppPython, find_app_python, shadowed_by_funclocal
from runtime.worker.pool import WorkerPool
from runtime.worker.process import WorkerSettings

log = console.get()


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.script_root = options.script_root.resolve()
        self.host_id = uuid.uuid4().hex
        self.started_at = time.monotonic()
        self.state = "Initialized"
        self.server = HttpServer(route_prefix="api", keys=None, status=self.status)
        self.python: AppPython = find_app_python(self.script_root, options.python, os.environ)
        self.debugger: DebugProxy | None = None
        self.versions = Versions(options, self.script_root, self.server, self.owner_id,
                                 self.python, self._debug_port)
        self.reloader: Reloader | None = None
        self.address = "127.0.0.1"
        self.port = 0
        self.config: HostConfig | None = None  # when no version serves yet
        self._pending_debug_ports: list[tuple[int, int]] = []

    # -- what is serving ---------------------------------------------------------------

    @property
    def index(self) -> FunctionIndex:
        current = self.versions.current
        return current.index if current else FunctionIndex(())

    @property
    def pool(self) -> WorkerPool | None:
        current = self.versions.current
        return current.pool if current else None

    # -- start -------------------------------------------------------------------------

    async def start(self) -> None:
        """Index the app, open what it needs, listen, and start the durable runtime and
        the reloader. With reload on, an app that cannot be indexed is reported and
        picked up on the next save, as a reload would. Raises HostError (IndexingError
        without reload, ConfigError, AzuriteError...) or OSError (a port is taken);
        nothing is left running then."""
        self.state = "Starting"
        log.info("Workers run on %s.", self.python.describe())
        shadowed = shadowed_by_funclocal(self.script_root)
        if shadowed is not None:
            log.warning("The app has a module of its own named 'runtime' (%s), and "
                        "funclocal's worker code is the package 'runtime': the app's "
                        "`import runtime` gets funclocal's. Rename the app's module.",
                        shadowed)
        try:
            # Config first, then the port: a taken port fails before any worker starts,
            # and partition leases are labelled with the port actually served.
            loaded = self.versions.load_config()
            self.config, settings, _ = loaded
            self.address = self.options.address or settings.local_http_address or "127.0.0.1"
            port = self._port(settings)
            try:
                self.port = await self.server.start(self.address, port)
            except OSError as exc:
                raise PortTaken(port, "HTTP", exc, "--port N (-p N), Host.LocalHttpPort in "
                                "local.settings.json, or `make run PORT=N` in funclocal's "
                                "checkout") from None
            if self.options.debug_port is not None:
                await self._start_debugger()
            version = await self._first_version(loaded)
            if version is not None:
                await self.versions.commit(version)
            if self.options.reload:
                self.reloader = Reloader(self.versions, self.watch_plan, self.public_base_url,
                                         verbose=self.options.verbose)
                await self.reloader.start()
        except BaseException:
            await self.stop()
            raise
        self.state = "Running"
        self._print_banner()

    async def _first_version(self, loaded: LoadedConfig) -> AppVersion | None:
        """The first version, or None when it cannot be indexed and a save can fix it."""
        try:
            return await self.versions.prepare(loaded=loaded)
        except IndexingError as exc:
            if not self.options.reload:
                raise
            text = f"{exc}"
            if exc.traceback_text:
                text += "\n" + exc.traceback_text.rstrip()
            log.error("%s", text)
            return None

    async def _start_debugger(self) -> None:
        assert self.options.debug_port is not None
        proxy = DebugProxy(self.address, self.options.debug_port)
        try:
            await proxy.start()
        except OSError as exc:
            raise PortTaken(self.options.debug_port, "debugger", exc,
                            "--debug PORT") from None
        self.debugger = proxy
        for pid, port in self._pending_debug_ports:
            proxy.set_target(pid, port)
        self._pending_debug_ports.clear()

    def _debug_port(self, pid: int, port: int) -> None:
        """A new worker's debugpy listens on `port`: new debugger connections go there."""
        if self.debugger is None:
            self._pending_debug_ports = [(pid, port)]  # the first worker starts earlier
            return
        self.debugger.set_target(pid, port)

    def _port(self, settings: LocalSettings) -> int:
        if self.options.port is not None:
            return self.options.port
        return settings.local_http_port if settings.local_http_port is not None \
            else DEFAULT_PORT

    def owner_id(self) -> str:
        """`<machine>:<port served>:<app folder>`: the label of this host in the partition
        leases, for people and tools (the app folder tells other apps on the task hub
        apart). Balancing tells processes apart by an id of their own; a host restarted
        after a crash with the same label takes its dead predecessor's id over."""
        port = self.port or (self.options.port if self.options.port is not None
                             else DEFAULT_PORT)
        return f"{socket.gethostname()}:{port}:{self.script_root}"

    def watch_plan(self) -> WatchPlan:
        current = self.versions.current
        config = current.config if current is not None else self.config
        assert config is not None
        candidates: list[Path] = []
        for explicit, name in ((self.options.settings, "local.settings.json"),
                               (self.options.host_json, "host.json")):
            if explicit is not None:
                candidates.append(explicit)
                continue
            # The script root's file wins over the working directory's, and creating it
            # there counts as a change too.
            candidates.append(self.script_root / name)
            if not (self.script_root / name).is_file():
                candidates.append(Path.cwd() / name)
        return WatchPlan.build(self.script_root, candidates, config.watch_directories,
                               config.watch_files)

    # -- output ------------------------------------------------------------------------

    def public_base_url(self) -> str:
        return f"http://{console.shown_address(self.address)}:{self.port}"

    def _print_banner(self) -> None:
        current = self.versions.current
        if current is None:
            log.warning("Host started on %s, serving no functions until the app indexes: "
                        "fix the error above and save a file of the app.",
                        self.public_base_url())
            return
        keys = current.keys
        print(console.banner(current.index.functions, self.public_base_url(),
                             current.config.route_prefix,
                             master_key=keys.master_key if keys else None,
                             host_key=keys.host_key if keys else None,
                             durable_key=keys.durable_key if keys and self.versions.durable
                             else None,
                             verbose=self.options.verbose,
                             disabled=current.index.disabled), flush=True)
        count = len(current.pool.pids)
        log.info("Host started on %s (%d worker process%s).", self.public_base_url(), count,
                 "" if count == 1 else "es")
        if self.reloader is not None:
            log.info("Watching %s for changes (--no-reload turns this off).", self.script_root)

    def status(self) -> Mapping[str, Any]:
        durable = self.versions.durable
        storage = durable.services.storage if durable else None
        return {
            "id": self.host_id,
            "state": self.state,
            "version": __version__,
            "processUptime": int((time.monotonic() - self.started_at) * 1000),
            "workerPids": self.pool.pids if self.pool else [],
            "functions": [f.name for f in self.index.functions],
            "taskHub": durable.hub_name if durable else None,
            "storage": storage.request_counts() if storage else None,
        }

    # -- stop --------------------------------------------------------------------------

    async def stop(self) -> None:
        self.state = "Stopping"
        if self.reloader is not None:
            await self.reloader.stop()  # a reload half-way through leaves no workers behind
        await self.server.stop()  # in-flight requests finish first (bounded)
        await self.versions.stop()
        if self.debugger is not None:
            await self.debugger.stop()
        self.state = "Stopped"


async def index_only(options: HostOptions) -> FunctionIndex:
    """Index the app in a worker without serving anything (`funclocal functions`)."""
    host = Host(options)
    _, _, env = host.versions.load_config()
    pool = WorkerPool(host.script_root, env, 1, WorkerSettings(python=host.python))
    try:
        return (await pool.start()).with_disabled(env)
    finally:
        await pool.stop()


__all__ = ["Host", "HostOptions", "IndexingError", "PortTaken", "index_only"]
