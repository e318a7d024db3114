"""Composition root: config, storage, workers, the durable runtime and the HTTP server,
started in the right order and stopped cleanly."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
from runtime.reload import Reloader
from runtime.watch import WatchPlan
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
    reload_grace: float = 10.0  # seconds a replaced worker's invocations get to finish
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


@dataclass
class AppVersion:
    """A started, not yet serving, version of the app (and of its config when that
    changed): what a reload switches to once the new workers have indexed cleanly."""

    pool: WorkerPool
    config: HostConfig
    settings: LocalSettings
    env: dict[str, str]
    connection: str | None
    keys: KeyStore | None
    storage: StorageEndpoints | None
    index: FunctionIndex = field(default_factory=lambda: FunctionIndex(()))
    durable: DurableServices | None = None  # new services that replace the running ones
    azurite: ManagedAzurite | None = None  # started for a changed connection


def _preload_durable() -> None:
    import runtime.durable.dispatcher  # noqa: F401
    import runtime.http.durable_api  # noqa: F401


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.script_root = options.script_root.resolve()
        self.host_id = uuid.uuid4().hex
        self.started_at = time.monotonic()
        self.state = "Initialized"
        self.config: HostConfig | None = None
        self.settings: LocalSettings | None = None
        self.env: dict[str, str] = {}
        self.connection: str | None = None
        self.pool: WorkerPool | None = None
        self.server: HttpServer | None = None
        self.azurite: ManagedAzurite | None = None
        self.storage: StorageEndpoints | None = None
        self.durable: DurableServices | None = None
        self.keys: KeyStore | None = None
        self.reloader: Reloader | None = None
        self.index = FunctionIndex(())
        self.address = "127.0.0.1"
        self.port = 0
        self._retiring: set[asyncio.Task[None]] = set()

    # -- start -------------------------------------------------------------------------

    def config_paths(self) -> tuple[Path | None, Path | None]:
        """The local.settings.json and host.json in use (None where there is none)."""
        return (find_config_file(self.options.settings, self.script_root, "local.settings.json"),
                find_config_file(self.options.host_json, self.script_root, "host.json"))

    def load_config(self) -> tuple[HostConfig, LocalSettings, dict[str, str]]:
        settings_path, host_path = self.config_paths()
        settings = load_local_settings(settings_path)
        env, skipped = worker_environment(settings, os.environ)
        for key in skipped:
            log.info("Skipping '%s' from local settings as it's already defined in current "
                     "environment variables.", key)
        config = load_host_config(host_path, env)
        return config, settings, env

    def new_pool(self, env: Mapping[str, str]) -> WorkerPool:
        return WorkerPool(self.script_root, env, self.options.workers or default_worker_count(env))

    async def start(self) -> None:
        config, settings, env = self.load_config()
        self.config, self.settings, self.env = config, settings, env
        self.connection = resolve_setting(config.durable.connection_name, settings, os.environ)
        pool = self.new_pool(env)
        # Storage and the first worker start side by side: both take a few hundred ms.
        storage_task = asyncio.create_task(self._ensure_storage(self.connection))
        try:
            index = await pool.start()
        except BaseException:
            storage_task.cancel()
            await asyncio.gather(storage_task, return_exceptions=True)
            await self.stop()
            raise
        for name, reason in index.skipped:
            log.warning("Function '%s': %s", name, reason)
        if settings.local_http_port is not None and self.options.port is None:
            port = settings.local_http_port
        else:
            port = self.options.port if self.options.port is not None else DEFAULT_PORT
        self.address = self.options.address or settings.local_http_address or "127.0.0.1"
        if self.options.enable_auth:
            self.keys = KeyStore.create(settings.master_key, settings.host_key,
                                        settings.function_keys)
        try:
            await storage_task
            if self._needs_durable(index):
                self.durable = await self._open_durable(config, self.storage, self.keys)
            self.server = HttpServer(
                route_prefix=config.route_prefix, keys=self.keys,
                cors_origins=self._cors(settings), cors_credentials=settings.cors_credentials,
                function_timeout=config.function_timeout, status=self.status)
            if self.durable is not None:
                self.server.set_durable(self.durable.api.public, self._client_binding)
            self.swap_app(pool, index)
            self.port = await self.server.start(self.address, port)
            if self.durable is not None:
                await self.durable.api.start_rpc()
                await self.durable.dispatcher.start()
            if self.options.reload:
                self.reloader = Reloader(self)
                await self.reloader.start()
        except BaseException:
            if self.pool is None:
                await pool.stop()
            await self.stop()
            raise
        self.state = "Running"
        self._print_banner()

    def _cors(self, settings: LocalSettings) -> tuple[str, ...]:
        return self.options.cors if self.options.cors is not None else settings.cors

    async def _ensure_storage(self, connection: str | None) -> None:
        if not connection:
            return
        self.storage, self.azurite = await ensure_storage(
            connection, self.script_root, self.options.manage_azurite)
        if self.azurite is not None:
            log.info("Started Azurite (blob, queue and table services) with data in %s.",
                     self.azurite.data_dir)
        # While the first worker starts, load the durable modules (and the Azure SDKs they
        # import, ~0.3 s) on a thread: an app with durable functions needs them right
        # after indexing, and one without pays only idle time.
        await asyncio.to_thread(_preload_durable)

    @staticmethod
    def _needs_durable(index: FunctionIndex) -> bool:
        return any(f.kind in ("orchestrationtrigger", "activitytrigger", "entitytrigger")
                   or f.binding_names("durableClient") for f in index.functions)

    async def _open_durable(self, config: HostConfig, storage_endpoints: StorageEndpoints | None,
                            keys: KeyStore | None) -> DurableServices:
        """The durable services, opened but not started."""
        if storage_endpoints is None:
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
        storage = await open_storage(storage_endpoints.connection_string)
        try:
            hub = TaskHub(storage, settings.hub_name, settings.partition_count)
            await hub.create_if_missing()
            leases = PartitionLeases(storage, settings.hub_name, settings.partition_count,
                                     owner_id=self.owner_id())
            dispatcher = Dispatcher(hub, leases, settings,
                                    function_timeout=config.function_timeout)
            client = DurableClient(hub, settings, notify=dispatcher.notify_instance)
            api = DurableApi(client, hub_name=hub.hub_name,
                             key=keys.host_key if keys else None)
        except BaseException:
            await storage.close()
            raise
        return DurableServices(storage, hub, client, dispatcher, api)

    def owner_id(self) -> str:
        """Stable across restarts of this host (same machine, app and port), so a host
        restarted after a crash takes its partition leases back at once; distinct for
        hosts running side by side, which cannot share a port."""
        port = self.options.port if self.options.port is not None else DEFAULT_PORT
        return f"{socket.gethostname()}:{port}:{self.script_root}"

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

    # -- versions of the app -----------------------------------------------------------

    def swap_app(self, pool: WorkerPool, index: FunctionIndex) -> WorkerPool | None:
        """Send new invocations (HTTP and durable) to `pool`; return the previous pool,
        whose running invocations go on until it is retired."""
        assert self.server is not None
        previous = self.pool
        self.server.set_app(AppView(index, self._build_routes(index), pool))
        self.pool, self.index = pool, index
        if self.durable is not None:
            self._attach_durable(index, pool)
        return previous

    def retire(self, pool: WorkerPool) -> None:
        """Stop a replaced pool in the background: its running invocations get the reload
        grace period to finish, then its workers are stopped."""
        task = asyncio.create_task(pool.stop(self.options.reload_grace))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def prepare_version(self, config_changed: bool) -> AppVersion:
        """Start workers on the app as it is on disk (and read the config again if it
        changed), without serving them yet. Raises HostError (IndexingError, ConfigError...)
        when that version cannot be served; cancelled, it leaves nothing running."""
        assert self.config is not None and self.settings is not None
        if config_changed:
            config, settings, env = self.load_config()
            connection = resolve_setting(config.durable.connection_name, settings, os.environ)
            keys = self._keys_for(settings)
        else:
            config, settings, env = self.config, self.settings, self.env
            connection, keys = self.connection, self.keys
        version = AppVersion(self.new_pool(env), config, settings, env, connection, keys,
                             self.storage)
        try:
            version.index = await version.pool.start()
            for name, reason in version.index.skipped:
                log.warning("Function '%s': %s", name, reason)
            changed = self.durable is not None and self.config is not None and (
                config.durable != self.config.durable or connection != self.connection
                or keys != self.keys)
            if changed or (self.durable is None and self._needs_durable(version.index)):
                if connection != self.connection or version.storage is None:
                    version.storage, version.azurite = None, None
                    if connection:
                        version.storage, version.azurite = await ensure_storage(
                            connection, self.script_root, self.options.manage_azurite)
                version.durable = await self._open_durable(config, version.storage, keys)
        except BaseException:
            await asyncio.shield(self._discard(version))
            raise
        return version

    def _keys_for(self, settings: LocalSettings) -> KeyStore | None:
        if not self.options.enable_auth:
            return None
        current = self.keys
        # Generated keys stay as they are: only keys written in the settings change them.
        return KeyStore.create(settings.master_key or (current.master_key if current else None),
                               settings.host_key or (current.host_key if current else None),
                               settings.function_keys)

    @staticmethod
    async def _discard(version: AppVersion) -> None:
        await version.pool.stop(0.0)
        if version.durable is not None:
            await version.durable.storage.close()
        if version.azurite is not None:
            await version.azurite.stop()

    async def commit_version(self, version: AppVersion) -> None:
        """Serve `version`: new invocations go to its workers, the previous workers are
        retired. The HTTP server keeps listening throughout."""
        assert self.server is not None and self.config is not None
        if version.config is not self.config:
            self._apply_config(version)
        replaced = self.durable if version.durable is not None else None
        if version.durable is not None:
            await version.durable.api.start_rpc()
            self.durable = version.durable
            self.server.set_durable(self.durable.api.public, self._client_binding)
        previous = self.swap_app(version.pool, version.index)
        if previous is not None:
            self.retire(previous)
        if version.durable is not None:
            if replaced is not None:
                await replaced.close()  # releases its partition leases for the new dispatcher
            await version.durable.dispatcher.start()
        if version.azurite is not None:
            if self.azurite is not None:
                await self.azurite.stop()
            self.azurite = version.azurite
        self.storage = version.storage

    def _apply_config(self, version: AppVersion) -> None:
        assert self.server is not None and self.settings is not None
        old = self.settings
        config, settings = version.config, version.settings
        self.config, self.settings, self.env = config, settings, version.env
        self.connection, self.keys = version.connection, version.keys
        self.server.reconfigure(route_prefix=config.route_prefix, keys=version.keys,
                                cors_origins=self._cors(settings),
                                cors_credentials=settings.cors_credentials,
                                function_timeout=config.function_timeout)
        if self.durable is not None and version.durable is None:
            self.durable.dispatcher.function_timeout = config.function_timeout
        if (settings.local_http_port, settings.local_http_address) != \
                (old.local_http_port, old.local_http_address):
            log.warning("Host.LocalHttpPort or Host.LocalHttpAddress changed in %s: restart "
                        "funclocal to listen there (still on port %d).", settings.path,
                        self.port)

    def watch_plan(self) -> WatchPlan:
        assert self.config is not None
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
        return WatchPlan.build(self.script_root, candidates, self.config.watch_directories,
                               self.config.watch_files)

    # -- output ------------------------------------------------------------------------

    def public_base_url(self, address: str | None = None) -> str:
        address = address or self.address
        shown = "localhost" if address in ("127.0.0.1", "0.0.0.0", "::", "localhost") else address
        return f"http://{shown}:{self.port}"

    def function_lines(self, specs: Iterable[FunctionSpec]) -> list[str]:
        """The banner's line for each function, as `func start` prints it."""
        assert self.config is not None
        base = self.public_base_url()
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        lines: list[str] = []
        for spec in specs:
            if spec.is_http:
                methods = ",".join(sorted(spec.methods)) if spec.methods else "GET,POST"
                lines.append(f"\t{spec.name}: [{methods}] {base}{prefix}/{spec.route}")
            else:
                lines.append(f"\t{spec.name}: {spec.trigger_type}")
            lines.append("")
        return lines

    def _print_banner(self) -> None:
        lines = ["", "Functions:", "", *self.function_lines(self.index.functions)]
        lines.append("For detailed output, run funclocal with --verbose flag.")
        if self.keys is not None:
            lines.append("")
            lines.append(f"Auth is enabled. Master key: {self.keys.master_key}")
            lines.append(f"Host (default) key: {self.keys.host_key}")
        print("\n".join(lines), flush=True)
        count = len(self.pool.pids) if self.pool else 0
        log.info("Host started on %s (%d worker process%s).", self.public_base_url(), count,
                 "" if count == 1 else "es")
        if self.reloader is not None:
            log.info("Watching %s for changes (--no-reload turns this off).", self.script_root)

    def status(self) -> Mapping[str, Any]:
        return {
            "id": self.host_id,
            "state": self.state,
            "version": __version__,
            "processUptime": int((time.monotonic() - self.started_at) * 1000),
            "workerPids": self.pool.pids if self.pool else [],
            "functions": [f.name for f in self.index.functions],
            "taskHub": self.durable.hub_name if self.durable else None,
            "storage": self.durable.storage.request_counts() if self.durable else None,
        }

    # -- stop --------------------------------------------------------------------------

    async def stop(self) -> None:
        self.state = "Stopping"
        if self.reloader is not None:
            await self.reloader.stop()  # a reload half-way through leaves no workers behind
        if self.server is not None:
            await self.server.stop()  # in-flight requests finish first (bounded)
        if self.durable is not None:
            await self.durable.close()
        if self.pool is not None:
            await self.pool.stop()
        await asyncio.gather(*self._retiring, return_exceptions=True)
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
