"""Opening the app's own task hub for the commands that inspect or operate it.

The hub and its storage are the ones `funclocal start` would use for the app in the
current folder (or `--script-root`): the same host.json and local.settings.json, the same
connection setting, environment variables winning over Values. Nothing needs a host to
be running: every operation goes to storage, and when the app's storage is the local
emulator and it is not running, Azurite is started for the length of the command on the
app's own data folder (`.azurite/`), exactly as `start` would start it.

Storage that is not on this machine is read freely, but changed only with `--yes`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import console
from runtime.cli.common import add_app_arguments, host_options
from runtime.config import HostConfig, resolve_setting
from runtime.durable.app import AppFunctions
from runtime.durable.client import DurableClient
from runtime.durable.services import DurableServices, open_durable
from runtime.durable.taskhub.azure import AzureTaskHub
from runtime.errors import CommandError, HostError, RemoteStorageRefused, TaskHubNotFound
from runtime.options import HostOptions
from runtime.storage.azurite import ensure_storage
from runtime.storage.connection import StorageEndpoints, parse_connection_string
from runtime.versions import read_app_config
from runtime.worker.pool import WorkerPool

CLI_OWNER = "funclocal-cli"  # never takes a lease; named for completeness


def add_hub_arguments(parser: argparse.ArgumentParser, *, writes: bool = False,
                      json_output: bool = True) -> None:
    """The app (as for `start`), storage options, `--json`, and `--yes` for commands
    that change something."""
    add_app_arguments(parser)
    parser.add_argument("--no-azurite", action="store_true",
                        help="never start Azurite; use the storage the connection string names "
                             "as it is")
    if json_output:
        parser.add_argument("--json", action="store_true",
                            help="print JSON for scripts instead of text for people")
    if writes:
        parser.add_argument("--yes", "-y", action="store_true",
                            help="allow changes on storage that is not on this machine")
    parser.add_argument("--verbose", action="store_true", help="debug logging on stderr")


@dataclass
class HubSession:
    """The opened task hub of the app: its durable services (not started: nothing is
    polled, no partition is taken), its config and where its storage is."""

    services: DurableServices
    config: HostConfig
    env: dict[str, str]
    script_root: Path
    endpoints: StorageEndpoints
    info: dict[str, Any]  # taskhub.json
    # The management operations without the app's function list: the app in this folder
    # is not indexed, so any orchestrator name may be restarted (as with no host running).
    client: DurableClient

    @property
    def hub(self) -> AzureTaskHub:
        hub = self.services.hub
        assert isinstance(hub, AzureTaskHub)
        return hub

    @property
    def hub_name(self) -> str:
        return self.services.hub_name


def on_this_machine(endpoints: StorageEndpoints) -> bool:
    """Whether every endpoint is the loopback address an emulator listens on (localhost,
    127.0.0.1, ::1): the names, not a DNS lookup, decide."""
    return endpoints.is_local_emulator


def describe_storage(endpoints: StorageEndpoints) -> str:
    return f"account {endpoints.account_name} at {endpoints.table_url}"


def quiet_console(verbose: bool) -> None:
    """funclocal's log lines go to stderr (stdout is the command's output), warnings and
    errors only unless `verbose`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(console.FuncStyleFormatter())
    for name in (console.LOGGER_NAME, "runtime"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
        logger.propagate = False


@asynccontextmanager
async def open_hub(args: argparse.Namespace, *,
                   changes: str | None = None) -> AsyncIterator[HubSession]:
    """The app's task hub, closed (and a temporary Azurite stopped) on exit. `changes`
    names what the command will change ("terminate an instance"): then storage that is
    not on this machine needs `--yes`. Raises ConfigError, CommandError,
    RemoteStorageRefused, TaskHubNotFound, AzuriteError or StorageError."""
    options = host_options(args)
    script_root = options.script_root.resolve()
    config, settings, env = read_app_config(options, script_root)
    name = config.durable.connection_name
    connection = resolve_setting(name, settings, os.environ)
    if not connection:
        raise CommandError(
            f"The app in {script_root} has no storage connection: the setting '{name}' is "
            f"not set. Add \"{name}\": \"UseDevelopmentStorage=true\" to the Values of "
            "local.settings.json.")
    endpoints = parse_connection_string(connection, setting=name)
    if changes is not None and not on_this_machine(endpoints) and \
            not getattr(args, "yes", False):
        raise RemoteStorageRefused(changes, describe_storage(endpoints))
    endpoints, azurite = await ensure_storage(connection, script_root,
                                              not getattr(args, "no_azurite", False))
    if azurite is not None:
        print(f"Started Azurite for this command (data in {azurite.data_dir}); it stops "
              "when the command ends.", file=sys.stderr, flush=True)
    try:
        services = await open_durable(config.durable,
                                      connection_string=endpoints.connection_string,
                                      owner_id=CLI_OWNER,
                                      function_timeout=config.function_timeout, create=False)
        try:
            hub = services.hub
            assert isinstance(hub, AzureTaskHub)
            info = await hub.read_info()
            if info is None:
                raise TaskHubNotFound(config.durable.hub_name, describe_storage(endpoints))
            client = DurableClient(hub, config.durable, clock=services.clock)
            yield HubSession(services, config, env, script_root, endpoints, info, client)
        finally:
            await services.close()
    finally:
        if azurite is not None:
            await azurite.stop()


@asynccontextmanager
async def app_workers(options: HostOptions, env: dict[str, str],
                      function_timeout: float | None) -> AsyncIterator[AppFunctions]:
    """The app in the folder, indexed in one worker process, as the durable workers see
    it (for replaying its orchestrators). Raises IndexingError when it cannot be
    indexed."""
    pool = WorkerPool(options.script_root.resolve(), env, 1)
    index = await pool.start()
    app = AppFunctions()
    app.set(index, pool)
    app.function_timeout = function_timeout
    try:
        yield app
    finally:
        await pool.stop()


def guarded(run: Callable[[argparse.Namespace], Awaitable[int]]
            ) -> Callable[[argparse.Namespace], Awaitable[int]]:
    """A command's `run` with funclocal's errors printed as `error: ...` on stderr and
    turned into its exit status (1, or the CommandError's own)."""
    async def wrapper(args: argparse.Namespace) -> int:
        quiet_console(getattr(args, "verbose", False))
        try:
            return await run(args)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except HostError as exc:
            print(f"error: {exc}", file=sys.stderr)
            traceback_text = getattr(exc, "traceback_text", None)
            if traceback_text:
                print(traceback_text.rstrip(), file=sys.stderr)
            return 1
        except BrokenPipeError:
            raise  # not an error of ours: runtime.cli.main stops quietly
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    wrapper.__name__ = getattr(run, "__name__", "run")
    wrapper.__doc__ = run.__doc__
    return wrapper


__all__ = ["HubSession", "add_hub_arguments", "app_workers", "describe_storage", "guarded",
           "on_this_machine", "open_hub", "quiet_console"]
