"""Versions of the app: each is a set of workers on the code as it is on disk, with the
config it was started with. One version serves; a reload prepares the next beside it,
and commits it once its workers have indexed cleanly: new invocations go to the new
workers, the replaced ones finish what they run (bounded by the reload grace), and the
HTTP listener, storage and partition leases stay up throughout.

Also here: how two versions differ (`compare`), for the reload's console output.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime import console
from runtime.app_settings import check_app_settings
from runtime.config import (
    HostConfig,
    LocalSettings,
    load_host_config,
    load_local_settings,
    resolve_setting,
    worker_environment,
)
from runtime.durable_host import HostDurable, needs_durable, open_host_durable
from runtime.functions import FunctionIndex, FunctionSpec
from runtime.http.auth import KeyStore
from runtime.http.routes import RouteTable
from runtime.http.server import AppView, HttpServer
from runtime.options import HostOptions, find_config_file
from runtime.storage.azurite import ManagedAzurite, ensure_storage
from runtime.storage.connection import StorageEndpoints
from runtime.worker.interpreter import AppPython
from runtime.worker.pool import WorkerPool, default_worker_count
from runtime.worker.process import DebugOptions, WorkerSettings

log = console.get()

ORCHESTRATOR = "orchestrationtrigger"
DISABLE_HOMEPAGE = "AzureWebJobsDisableHomepage"  # HomepageMiddleware.IsHomepageDisabled


LoadedConfig = tuple[HostConfig, LocalSettings, dict[str, str]]  # host.json, settings, env


@dataclass
class AppVersion:
    """A started version of the app (and of its config): what serves, or what a reload
    switches to once its workers have indexed cleanly."""

    pool: WorkerPool
    config: HostConfig
    settings: LocalSettings
    env: dict[str, str]
    connection: str | None
    keys: KeyStore | None
    storage: StorageEndpoints | None
    index: FunctionIndex = field(default_factory=lambda: FunctionIndex(()))
    durable: HostDurable | None = None  # new services that replace the running ones
    azurite: ManagedAzurite | None = None  # started for a changed connection


@dataclass(frozen=True)
class IndexChanges:
    """How one version of the app differs from the previous one."""

    added: tuple[FunctionSpec, ...] = ()
    changed: tuple[FunctionSpec, ...] = ()
    removed: tuple[str, ...] = ()
    changed_orchestrators: tuple[str, ...] = ()  # durable names
    removed_orchestrators: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare(old: FunctionIndex, old_hashes: Mapping[str, str | None], new: FunctionIndex,
            new_hashes: Mapping[str, str | None]) -> IndexChanges:
    """A function changed when its bindings or its code (by digest) did."""
    before = {f.name: f for f in old.functions}
    after = {f.name: f for f in new.functions}
    added = tuple(f for name, f in after.items() if name not in before)
    changed = tuple(f for name, f in after.items() if name in before and (
        f != before[name] or old_hashes.get(name) != new_hashes.get(name)))
    removed = tuple(name for name in before if name not in after)
    changed_orchestrators = tuple(f.durable_name for f in changed if f.kind == ORCHESTRATOR)
    kept = {f.durable_name.lower() for f in new.by_kind(ORCHESTRATOR)}
    removed_orchestrators = tuple(f.durable_name for f in old.by_kind(ORCHESTRATOR)
                                  if f.durable_name.lower() not in kept)
    return IndexChanges(added, changed, removed, changed_orchestrators, removed_orchestrators)


def config_paths(options: HostOptions, script_root: Path) -> tuple[Path | None, Path | None]:
    """The local.settings.json and host.json an app uses (None where there is none)."""
    return (find_config_file(options.settings, script_root, "local.settings.json"),
            find_config_file(options.host_json, script_root, "host.json"))


def read_app_config(options: HostOptions, script_root: Path) -> LoadedConfig:
    """An app's host.json, local.settings.json and worker environment, resolved as
    `funclocal start` resolves them (the CLI's other commands use the same), with the
    warnings about app settings. Raises ConfigError with file, line and key when a file
    is bad."""
    settings_path, host_path = config_paths(options, script_root)
    settings = load_local_settings(settings_path)
    env, skipped = worker_environment(settings, os.environ)
    for key in skipped:
        log.info("Skipping '%s' from local settings as it's already defined in current "
                 "environment variables.", key)
    for warning in check_app_settings(env, str(settings_path or "the environment")):
        log.warning("%s", warning)
    config = load_host_config(host_path, env)
    return config, settings, env


class Versions:
    """Prepares, commits and retires versions of the app for one host.

    `server` routes to the committed version; `owner_id` names this host in the task
    hub's partition leases; `public_base_url` is where people reach the host.
    """

    def __init__(self, options: HostOptions, script_root: Path, server: HttpServer,
                 owner_id: Callable[[], str], python: AppPython,
                 on_debug_port: Callable[[int, int], None] | None = None) -> None:
        self.options = options
        self.script_root = script_root
        self.server = server
        self.owner_id = owner_id
        self.python = python
        self.on_debug_port = on_debug_port
        self.current: AppVersion | None = None
        self.durable: HostDurable | None = None
        self.azurite: ManagedAzurite | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._sdk_noted: str | None = None

    # -- config ----------------------------------------------------------------------

    def config_paths(self) -> tuple[Path | None, Path | None]:
        """The local.settings.json and host.json in use (None where there is none)."""
        return config_paths(self.options, self.script_root)

    def load_config(self) -> LoadedConfig:
        """Read both files (ConfigError with file, line and key when one is bad)."""
        return read_app_config(self.options, self.script_root)

    def keys_for(self, settings: LocalSettings) -> KeyStore | None:
        if not self.options.enable_auth:
            return None
        current = self.current.keys if self.current else None
        # Generated keys stay as they are: only keys written in the settings change them.
        systems = dict(current.system_keys) if current else {}
        systems.update(settings.system_keys)
        return KeyStore.create(settings.master_key or (current.master_key if current else None),
                               settings.host_key or (current.host_key if current else None),
                               settings.function_keys, systems)

    def new_pool(self, env: Mapping[str, str], config: HostConfig) -> WorkerPool:
        debug = None
        count = self.options.workers or default_worker_count(env)
        if self.options.debug_port is not None:
            # One debugger, one process: every invocation stops at its breakpoints.
            debug = DebugOptions(self.options.debug_port, self.options.debug_wait)
            count = 1
        settings = WorkerSettings(
            python=self.python, debug=debug, on_debug_port=self.on_debug_port,
            log_levels=console.LogLevels(config.log_levels, verbose=self.options.verbose,
                                         console_enabled=config.console_logging))
        return WorkerPool(self.script_root, env, count, settings)

    # -- preparing ---------------------------------------------------------------------

    async def prepare(self, *, config_changed: bool = True,
                      loaded: LoadedConfig | None = None) -> AppVersion:
        """Start workers on the app as it is on disk (reading the config again when it
        changed, and always for the first version), and the storage and durable services
        that version needs, without serving it yet. Raises HostError (IndexingError,
        ConfigError...) when that version cannot be served; cancelled, it leaves nothing
        running."""
        current = self.current
        if current is None or config_changed:
            config, settings, env = loaded or self.load_config()
            connection = resolve_setting(config.durable.connection_name, settings, os.environ)
            keys = self.keys_for(settings)
        else:
            config, settings, env = current.config, current.settings, current.env
            connection, keys = current.connection, current.keys
        version = AppVersion(self.new_pool(env, config), config, settings, env, connection,
                             keys, current.storage if current else None)
        try:
            preload = None
            if self.durable is None and connection:
                # While the worker starts, load the durable modules (and the Azure SDKs
                # they import, ~0.3 s) on a thread: an app with durable functions needs
                # them right after indexing, and one without pays only idle time.
                preload = asyncio.create_task(asyncio.to_thread(_preload_durable))
            try:
                version.index = (await version.pool.start()).with_disabled(env)
            finally:
                if preload is not None:
                    await asyncio.gather(preload, return_exceptions=True)
            for name, reason in version.index.skipped:
                log.warning("Function '%s': %s", name, reason)
            self._note_sdk(version.pool.sdk_versions)
            needs = needs_durable(version.index)
            if needs and (version.storage is None or current is None
                          or connection != current.connection):
                # Storage only when the app needs it (an HTTP-only app never starts
                # Azurite), including when a reload adds the first durable function.
                await self._storage_for(version)
            changed = self.durable is not None and current is not None and (
                config.durable != current.config.durable or connection != current.connection
                or keys != current.keys)
            if changed or (self.durable is None and needs):
                version.durable = await open_host_durable(config, version.storage, keys,
                                                          self.owner_id())
        except BaseException:
            await asyncio.shield(self.discard(version))
            raise
        return version

    def _note_sdk(self, versions: Mapping[str, str]) -> None:
        """Say once what of the app's Durable SDK version funclocal cannot use fully."""
        durable = versions.get("azure-functions-durable")
        if durable is None or durable == self._sdk_noted:
            return
        self._sdk_noted = durable
        numbers = _version_numbers(durable)
        if numbers >= (2, 0):
            log.warning("The app uses azure-functions-durable %s; funclocal serves the 1.x "
                        "programming model and protocol (pin azure-functions-durable<2).",
                        durable)
        elif numbers < SESSIONS_SDK:
            log.info("The app uses azure-functions-durable %s: orchestrators replay their "
                     "whole history on every episode (the faster replay sessions need %s or "
                     "newer).", durable, ".".join(map(str, SESSIONS_SDK)))

    async def _storage_for(self, version: AppVersion) -> None:
        version.storage = None
        if not version.connection:
            return
        version.storage, version.azurite = await ensure_storage(
            version.connection, self.script_root, self.options.manage_azurite, detach=True)

    async def discard(self, version: AppVersion) -> None:
        """Stop a version that will not serve."""
        await version.pool.stop(0.0)
        if version.durable is not None:
            await version.durable.close()
        if version.azurite is not None:
            await version.azurite.stop()

    # -- committing --------------------------------------------------------------------

    async def commit(self, version: AppVersion) -> AppVersion | None:
        """Serve `version`: new invocations go to its workers, the previous workers are
        retired. Returns the version it replaced (None for the first)."""
        previous = self.current
        if previous is None or version.config is not previous.config:
            self._apply_config(version, previous)
        replaced = self.durable if version.durable is not None else None
        if version.durable is not None:
            self.durable = version.durable
            self.server.bindings.durable = version.durable.binding
            self.server.set_durable(version.durable.api.public)
        self.server.set_app(AppView(version.index, self._routes(version.index), version.pool))
        if self.durable is not None:
            self.durable.attach(version.index, version.pool)
        self.current = version
        if previous is not None:
            self.retire(previous.pool)
        if version.durable is not None:
            if replaced is not None:
                # Releases its partition leases for the new dispatcher. Shielded: a Ctrl-C
                # that cancels this reload must not cut its stop half-way (its messages
                # and leases would wait out their locks); `stop` waits for it.
                closing = asyncio.create_task(replaced.close())
                self._retiring.add(closing)
                closing.add_done_callback(self._retiring.discard)
                await asyncio.shield(closing)
            await version.durable.start()
        if version.azurite is not None:
            if self.azurite is not None:
                await self.azurite.stop()
            self.azurite = version.azurite
        return previous

    def _apply_config(self, version: AppVersion, previous: AppVersion | None) -> None:
        config, settings = version.config, version.settings
        cors = self.options.cors if self.options.cors is not None else settings.cors
        disable_homepage = os.environ.get(DISABLE_HOMEPAGE,
                                          settings.values.get(DISABLE_HOMEPAGE, ""))
        self.server.reconfigure(route_prefix=config.route_prefix, keys=version.keys,
                                cors_origins=cors, cors_credentials=settings.cors_credentials,
                                function_timeout=config.function_timeout,
                                homepage_disabled=disable_homepage.lower() == "true")
        if self.durable is not None and version.durable is None:
            self.durable.services.dispatcher.function_timeout = config.function_timeout
        if previous is not None and (settings.local_http_port, settings.local_http_address) != \
                (previous.settings.local_http_port, previous.settings.local_http_address):
            log.warning("Host.LocalHttpPort or Host.LocalHttpAddress changed in %s: restart "
                        "funclocal to listen there (still on port %d).", settings.path,
                        self.server.port)

    @staticmethod
    def _routes(index: FunctionIndex) -> RouteTable:
        http = [f for f in index.functions if f.is_http]
        table, errors = RouteTable.build((f.name, f.route, f.methods) for f in http)
        for error in errors:
            name = getattr(error, "function_name", "?")
            log.error("The function '%s' is skipped: %s", name, error)
        for entry in table.never_matched():
            log.warning("%sthe function '%s' declares methods=[]; the host routes no "
                        "request to it (every method answers 404), here too.",
                        console.AzureNotes.PREFIX, entry.function_name)
        return table

    def retire(self, pool: WorkerPool) -> None:
        """Stop a replaced pool in the background: its running invocations get the reload
        grace period to finish, then its workers are stopped."""
        task = asyncio.create_task(pool.stop(self.options.reload_grace))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- stopping ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop the durable runtime, every worker and the managed Azurite."""
        if self.durable is not None:
            await self.durable.close()
        if self.current is not None:
            await self.current.pool.stop()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self.azurite is not None:
            await self.azurite.stop()


SESSIONS_SDK = (1, 7)  # runtime.worker.child.sessions.MINIMUM_SDK


def _version_numbers(text: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in text.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers)


def _preload_durable() -> None:
    import runtime.durable.dispatcher  # noqa: F401
    import runtime.durable.services  # noqa: F401
    import runtime.http.durable_api  # noqa: F401


__all__ = ["AppVersion", "IndexChanges", "LoadedConfig", "Versions", "compare",
           "config_paths", "read_app_config"]
