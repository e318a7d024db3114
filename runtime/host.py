"""Composition root and lifecycle: the HTTP listener, the app's versions (workers,
storage, the durable runtime) and hot reload, started in the right order and stopped
cleanly."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime import __version__, console
from runtime.config import LocalSettings
from runtime.errors import IndexingError
from runtime.functions import FunctionIndex
from runtime.http.server import HttpServer
from runtime.options import DEFAULT_PORT, HostOptions
from runtime.reload import Reloader
from runtime.versions import Versions
from runtime.watch import WatchPlan
from runtime.worker.pool import WorkerPool

log = console.get()


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.script_root = options.script_root.resolve()
        self.host_id = uuid.uuid4().hex
        self.started_at = time.monotonic()
        self.state = "Initialized"
        self.server = HttpServer(route_prefix="api", keys=None, status=self.status)
        self.versions = Versions(options, self.script_root, self.server, self.owner_id)
        self.reloader: Reloader | None = None
        self.address = "127.0.0.1"
        self.port = 0

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
        the reloader. Raises HostError (IndexingError, ConfigError, AzuriteError...) or
        OSError (the port is taken); nothing is left running then."""
        self.state = "Starting"
        try:
            version = await self.versions.prepare()
            settings = version.settings
            self.address = self.options.address or settings.local_http_address or "127.0.0.1"
            self.port = await self.server.start(self.address, self._port(settings))
            await self.versions.commit(version)
            if self.options.reload:
                self.reloader = Reloader(self.versions, self.watch_plan, self.public_base_url)
                await self.reloader.start()
        except BaseException:
            await self.stop()
            raise
        self.state = "Running"
        self._print_banner()

    def _port(self, settings: LocalSettings) -> int:
        if self.options.port is not None:
            return self.options.port
        return settings.local_http_port if settings.local_http_port is not None \
            else DEFAULT_PORT

    def owner_id(self) -> str:
        """The label of this host in the partition leases (machine, port, app), for
        people and tools; balancing tells processes apart by a random id of their own."""
        port = self.port or (self.options.port if self.options.port is not None
                             else DEFAULT_PORT)
        return f"{socket.gethostname()}:{port}:{self.script_root}"

    def watch_plan(self) -> WatchPlan:
        current = self.versions.current
        assert current is not None
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
        return WatchPlan.build(self.script_root, candidates, current.config.watch_directories,
                               current.config.watch_files)

    # -- output ------------------------------------------------------------------------

    def public_base_url(self) -> str:
        return f"http://{console.shown_address(self.address)}:{self.port}"

    def _print_banner(self) -> None:
        current = self.versions.current
        assert current is not None
        keys = current.keys
        print(console.banner(current.index.functions, self.public_base_url(),
                             current.config.route_prefix,
                             master_key=keys.master_key if keys else None,
                             host_key=keys.host_key if keys else None,
                             durable_key=keys.durable_key if keys and self.versions.durable
                             else None), flush=True)
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
        self.state = "Stopped"


async def index_only(options: HostOptions) -> FunctionIndex:
    """Index the app in a worker without serving anything (`funclocal functions`)."""
    host = Host(options)
    _, _, env = host.versions.load_config()
    pool = WorkerPool(host.script_root, env, 1)
    try:
        return await pool.start()
    finally:
        await pool.stop()


__all__ = ["Host", "HostOptions", "IndexingError", "index_only"]
