"""Composition root: config, storage, workers, the durable runtime and the HTTP server,
started in the right order and stopped cleanly."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runtime import __version__, logs
from runtime.azurite import ManagedAzurite, StorageEndpoints, ensure_storage
from runtime.config import (
    HostConfig,
    LocalSettings,
    load_host_config,
    load_local_settings,
    resolve_setting,
    worker_environment,
)
from runtime.errors import HostError, IndexingError
from runtime.functions import FunctionIndex, FunctionSpec
from runtime.http.auth import KeyStore
from runtime.http.routes import RouteTable
from runtime.http.server import AppView, HttpServer
from runtime.worker.pool import WorkerPool, default_worker_count

if TYPE_CHECKING:
    from runtime.durable.client import DurableClient
    from runtime.durable.dispatcher import Dispatcher
    from runtime.durable.storage import StorageClients
    from runtime.durable.taskhub import TaskHub
    from runtime.http.durable_api import DurableApi

log = logs.get()

DEFAULT_PORT = 7071


@dataclass(frozen=True)
class HostOptions:
    script_root: Path
    host_json: Path | None = None
    settings: Path | None = None
    port: int | None = None
    address: str | None = None
    cors: tuple[str, ...] | None = None
    enable_auth: bool = False
    reload: bool = True
    manage_azurite: bool = True
    verbose: bool = False
    workers: int | None = None


def find_config_file(explicit: Path | None, script_root: Path, name: str) -> Path | None:
    """An explicit path wins; otherwise the script root's file, then the working directory's."""
    if explicit is not None:
        return explicit
    for candidate in (script_root / name, Path.cwd() / name):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class DurableServices:
    storage: StorageClients
    hub: TaskHub
    client: DurableClient
    dispatcher: Dispatcher
    api: DurableApi

    @property
    def hub_name(self) -> str:
        return self.hub.hub_name

    async def close(self) -> None:
        await self.dispatcher.stop()
        await self.api.stop_rpc()
        await self.storage.close()


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.script_root = options.script_root.resolve()
        self.host_id = uuid.uuid4().hex
        self.started_at = time.monotonic()
        self.state = "Initialized"
        self.config: HostConfig | None = None
        self.settings: LocalSettings | None = None
        self.pool: WorkerPool | None = None
        self.server: HttpServer | None = None
        self.azurite: ManagedAzurite | None = None
        self.storage: StorageEndpoints | None = None
        self.durable: DurableServices | None = None
        self.keys: KeyStore | None = None
        self.index = FunctionIndex(())
        self.port = 0

    # -- start -------------------------------------------------------------------------

    def load_config(self) -> tuple[HostConfig, LocalSettings, dict[str, str]]:
        settings_path = find_config_file(self.options.settings, self.script_root,
                                         "local.settings.json")
        settings = load_local_settings(settings_path)
        env, skipped = worker_environment(settings, os.environ)
        for key in skipped:
            log.info("Skipping '%s' from local settings as it's already defined in current "
                     "environment variables.", key)
        host_path = find_config_file(self.options.host_json, self.script_root, "host.json")
        config = load_host_config(host_path, env)
        return config, settings, env

    async def start(self) -> None:
        config, settings, env = self.load_config()
        self.config, self.settings = config, settings
        connection = resolve_setting(config.durable.connection_name, settings, os.environ)
        count = self.options.workers or default_worker_count(env)
        self.pool = WorkerPool(self.script_root, env, count)
        # Storage and the first worker start side by side: both take a few hundred ms.
        storage_task = asyncio.create_task(self._ensure_storage(connection))
        try:
            self.index = await self.pool.start()
        except BaseException:
            storage_task.cancel()
            await asyncio.gather(storage_task, return_exceptions=True)
            await self.stop()
            raise
        for name, reason in self.index.skipped:
            log.warning("Function '%s': %s", name, reason)
        routes = self._build_routes(self.index)
        if settings.local_http_port is not None and self.options.port is None:
            port = settings.local_http_port
        else:
            port = self.options.port if self.options.port is not None else DEFAULT_PORT
        address = self.options.address or settings.local_http_address or "127.0.0.1"
        if self.options.enable_auth:
            self.keys = KeyStore.create(settings.master_key, settings.host_key,
                                        settings.function_keys)
        cors = self.options.cors if self.options.cors is not None else settings.cors
        try:
            await storage_task
            if self._needs_durable(self.index):
                self.durable = await self._start_durable(config, connection)
            self.server = HttpServer(
                route_prefix=config.route_prefix, keys=self.keys, cors_origins=cors,
                cors_credentials=settings.cors_credentials,
                function_timeout=config.function_timeout, status=self.status,
                durable_handler=self.durable.api.public if self.durable else None,
                client_binding=self._client_binding if self.durable else None)
            self.server.set_app(AppView(self.index, routes, self.pool))
            self.port = await self.server.start(address, port)
            if self.durable is not None:
                await self.durable.api.start_rpc()
                self._attach_durable(self.index, self.pool)
                await self.durable.dispatcher.start()
        except BaseException:
            await self.stop()
            raise
        self.state = "Running"
        self._print_banner(address)

    async def _ensure_storage(self, connection: str | None) -> None:
        if not connection:
            return
        self.storage, self.azurite = await ensure_storage(
            connection, self.script_root, self.options.manage_azurite)
        if self.azurite is not None:
            log.info("Started Azurite (blob, queue and table services) with data in %s.",
                     self.azurite.data_dir)

    @staticmethod
    def _needs_durable(index: FunctionIndex) -> bool:
        return any(f.kind in ("orchestrationtrigger", "activitytrigger", "entitytrigger")
                   or f.binding_names("durableClient") for f in index.functions)

    async def _start_durable(self, config: HostConfig,
                             connection: str | None) -> DurableServices:
        if self.storage is None:
            raise HostError(
                f"This app uses Durable Functions, which keep their state in Azure Storage, "
                f"but the setting '{config.durable.connection_name}' is not set. Add "
                f"\"{config.durable.connection_name}\": \"UseDevelopmentStorage=true\" to the "
                "Values of local.settings.json.")
        # Imported here: apps without durable functions start without loading the
        # Azure Storage SDKs.
        from runtime.durable.client import DurableClient
        from runtime.durable.dispatcher import Dispatcher
        from runtime.durable.leases import PartitionLeases
        from runtime.durable.storage import open_storage
        from runtime.durable.taskhub import TaskHub
        from runtime.http.durable_api import DurableApi

        settings = config.durable
        storage = await open_storage(self.storage.connection_string)
        try:
            hub = TaskHub(storage, settings.hub_name, settings.partition_count)
            await hub.create_if_missing()
            leases = PartitionLeases(storage, settings.hub_name, settings.partition_count,
                                     owner_id=f"{socket.gethostname()}-{self.host_id[:8]}")
            dispatcher = Dispatcher(hub, leases, settings,
                                    function_timeout=config.function_timeout)
            client = DurableClient(hub, settings, notify=dispatcher.notify_instance)
            api = DurableApi(client, hub_name=hub.hub_name,
                             key=self.keys.host_key if self.keys else None)
        except BaseException:
            await storage.close()
            raise
        return DurableServices(storage, hub, client, dispatcher, api)

    def _attach_durable(self, index: FunctionIndex, pool: WorkerPool) -> None:
        assert self.durable is not None
        self.durable.dispatcher.set_functions(index, pool)
        self.durable.client.orchestrators = lambda: index.durable_names("orchestrationTrigger")

    def _client_binding(self, spec: FunctionSpec, request_url: str) -> str:
        from runtime.durable.client import client_binding_json

        assert self.durable is not None
        parsed = urlsplit(request_url)
        return client_binding_json(f"{parsed.scheme}://{parsed.netloc}", self.durable.hub_name,
                                   self.durable.api.rpc_base_url,
                                   self.keys.host_key if self.keys else None)

    def _build_routes(self, index: FunctionIndex) -> RouteTable:
        http = [f for f in index.functions if f.is_http]
        table, errors = RouteTable.build((f.name, f.route, f.methods) for f in http)
        for error in errors:
            name = getattr(error, "function_name", "?")
            log.error("The function '%s' is skipped: %s", name, error)
        return table

    def public_base_url(self, address: str) -> str:
        shown = "localhost" if address in ("127.0.0.1", "0.0.0.0", "::", "localhost") else address
        return f"http://{shown}:{self.port}"

    def _print_banner(self, address: str) -> None:
        assert self.config is not None
        base = self.public_base_url(address)
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        lines = ["", "Functions:", ""]
        for spec in self.index.functions:
            if spec.is_http:
                methods = ",".join(sorted(spec.methods)) if spec.methods else "GET,POST"
                lines.append(f"\t{spec.name}: [{methods}] {base}{prefix}/{spec.route}")
            else:
                lines.append(f"\t{spec.name}: {spec.trigger_type}")
            lines.append("")
        lines.append("For detailed output, run funclocal with --verbose flag.")
        if self.keys is not None:
            lines.append("")
            lines.append(f"Auth is enabled. Master key: {self.keys.master_key}")
            lines.append(f"Host (default) key: {self.keys.host_key}")
        print("\n".join(lines), flush=True)
        log.info("Host started on %s (%d worker process%s).", base, len(self.pool.pids)
                 if self.pool else 0, "" if self.pool and len(self.pool.pids) == 1 else "es")

    def status(self) -> Mapping[str, Any]:
        return {
            "id": self.host_id,
            "state": self.state,
            "version": __version__,
            "processUptime": int((time.monotonic() - self.started_at) * 1000),
            "workerPids": self.pool.pids if self.pool else [],
            "functions": [f.name for f in self.index.functions],
            "taskHub": self.durable.hub_name if self.durable else None,
        }

    # -- stop --------------------------------------------------------------------------

    async def stop(self) -> None:
        self.state = "Stopping"
        if self.server is not None:
            await self.server.stop()  # in-flight requests finish first (bounded)
        if self.durable is not None:
            await self.durable.close()
        if self.pool is not None:
            await self.pool.stop()
        if self.azurite is not None:
            await self.azurite.stop()
        self.state = "Stopped"


async def index_only(options: HostOptions) -> FunctionIndex:
    """Index the app in a worker without serving anything (`funclocal functions`)."""
    host = Host(options)
    _, _, env = host.load_config()
    pool = WorkerPool(host.script_root, env, 1)
    try:
        return await pool.start()
    finally:
        await pool.stop()


__all__ = ["Host", "HostOptions", "IndexingError", "index_only"]
