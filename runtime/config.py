"""host.json, local.settings.json and the worker environment (pure parsing).

Files are read only when a path is given; nothing here touches the network. Every value
is validated up front so that a bad setting stops `funclocal start` with the file, line
and key, instead of surfacing later as an obscure storage or worker error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from runtime.config_source import ABSENT, JsonSource, Section, show_value
from runtime.errors import ConfigError

_DEFAULT_CONCURRENCY = 10 * (os.cpu_count() or 1)
_OVERRIDABLE_STATES = ("NonRunningStates", "AnyState")
_MATCH_STRATEGIES = ("None", "Strict", "CurrentOrOlder")
_FAILURE_STRATEGIES = ("Reject", "Fail")


def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class DurableTaskConfig:
    hub_name: str = "TestHubName"
    partition_count: int = 4
    control_queue_batch_size: int = 32
    max_queue_polling_interval: float = 30.0
    control_queue_visibility_timeout: float = 300.0
    work_item_queue_visibility_timeout: float = 300.0
    connection_name: str = "AzureWebJobsStorage"
    max_concurrent_activity_functions: int = _DEFAULT_CONCURRENCY
    max_concurrent_orchestrator_functions: int = _DEFAULT_CONCURRENCY
    max_concurrent_entity_functions: int = _DEFAULT_CONCURRENCY
    extended_sessions_enabled: bool = False
    max_orchestration_actions: int = 100000
    store_inputs_in_orchestration_history: bool = False
    overridable_existing_instance_states: str = "NonRunningStates"
    local_rpc_endpoint_enabled: bool = True
    default_version: str | None = None
    version_match_strategy: str = "CurrentOrOlder"  # None, Strict, CurrentOrOlder
    version_failure_strategy: str = "Reject"  # Reject, Fail
    max_entity_operation_batch_size: int = 5000


@dataclass(frozen=True)
class HostConfig:
    path: str | None
    route_prefix: str = "api"
    function_timeout: float | None = 1800.0
    watch_directories: tuple[str, ...] = ()
    watch_files: tuple[str, ...] = ()
    log_levels: Mapping[str, str] = field(default_factory=_empty_map)
    console_logging: bool = True  # logging.console.isEnabled
    durable: DurableTaskConfig = field(default_factory=DurableTaskConfig)


@dataclass(frozen=True)
class LocalSettings:
    path: str | None
    values: Mapping[str, str] = field(default_factory=_empty_map)
    connection_strings: Mapping[str, str] = field(default_factory=_empty_map)
    local_http_port: int | None = None
    local_http_address: str | None = None
    cors: tuple[str, ...] = ()
    cors_credentials: bool = False
    master_key: str | None = None
    host_key: str | None = None
    function_keys: Mapping[str, str] = field(default_factory=_empty_map)
    system_keys: Mapping[str, str] = field(default_factory=_empty_map)


# --- host.json --------------------------------------------------------------------------


def load_host_config(path: Path | None, env: Mapping[str, str]) -> HostConfig:
    text = _read(path)
    if path is None or text is None:
        return HostConfig(path=None)
    return parse_host_config(text, str(path), env)


def parse_host_config(text: str, file: str, env: Mapping[str, str]) -> HostConfig:
    top = JsonSource(text, file).root()
    version = top.raw("version")
    if version is ABSENT:
        raise ConfigError(file, "the required 'version' property is missing; "
                          "add \"version\": \"2.0\"", key="version")
    if version != "2.0":
        raise top.fail("version", f"must be \"2.0\", got {show_value(version)}")
    extensions = top.section("extensions")
    logging = top.section("logging")
    return HostConfig(
        path=file,
        route_prefix=extensions.section("http").string("routePrefix", "api").strip("/"),
        function_timeout=_function_timeout(top),
        watch_directories=top.strings("watchDirectories"),
        watch_files=top.strings("watchFiles"),
        log_levels=_log_levels(logging),
        console_logging=logging.section("console").boolean("isEnabled", True),
        durable=_durable_config(extensions.section("durableTask"), env),
    )


_LOG_LEVELS = ("Trace", "Debug", "Information", "Warning", "Error", "Critical", "None")


def _log_levels(logging: Section) -> Mapping[str, str]:
    levels = logging.string_map("logLevel")
    section = logging.section("logLevel")
    for key, value in levels.items():
        if value.strip().lower() not in (name.lower() for name in _LOG_LEVELS):
            raise section.fail(key, f"must be one of {', '.join(_LOG_LEVELS)}, got "
                               f"{show_value(value)}")
    return levels


def _function_timeout(top: Section) -> float | None:
    value = top.raw("functionTimeout")
    if value is ABSENT:
        return 1800.0
    if value is None or value == "-1" or value == -1:
        return None
    if not isinstance(value, str):
        raise top.fail("functionTimeout",
                       f"must be a TimeSpan string such as \"00:05:00\" or -1 for no limit, "
                       f"got {show_value(value)}")
    seconds = top.timespan_value("functionTimeout", value)
    if seconds < 1:
        raise top.fail("functionTimeout",
                       f"must be at least 00:00:01, or -1 for no limit, got {show_value(value)}")
    return seconds


_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,44}")
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def _hub_name(durable: Section, env: Mapping[str, str]) -> str:
    configured = durable.string("hubName", "TestHubName")

    def resolve(match: re.Match[str]) -> str:
        value = _lookup(match.group(1), env)
        if value is None:
            raise durable.fail("hubName", f"app setting '{match.group(1)}' is not defined")
        return value

    name = _SETTING_REFERENCE.sub(resolve, configured)
    if not _HUB_NAME.fullmatch(name):
        origin = "" if name == configured else f" (resolved from {show_value(configured)})"
        raise durable.fail(
            "hubName",
            f"{show_value(name)}{origin} is not a valid task hub name: use 3 to 45 letters "
            "and digits, starting with a letter")
    return name


def _durable_config(durable: Section, env: Mapping[str, str]) -> DurableTaskConfig:
    storage = durable.section("storageProvider")
    connection = (storage.optional_string("connectionName")
                  or storage.optional_string("connectionStringName")
                  or "AzureWebJobsStorage")
    states = _choice(durable, "overridableExistingInstanceStates", _OVERRIDABLE_STATES,
                     "NonRunningStates")
    return DurableTaskConfig(
        hub_name=_hub_name(durable, env),
        partition_count=storage.integer("partitionCount", 4, 1, 16),
        control_queue_batch_size=storage.integer("controlQueueBatchSize", 32, 1, 32),
        max_queue_polling_interval=storage.timespan("maxQueuePollingInterval", 30.0),
        control_queue_visibility_timeout=storage.timespan(
            "controlQueueVisibilityTimeout", 300.0),
        work_item_queue_visibility_timeout=storage.timespan(
            "workItemQueueVisibilityTimeout", 300.0),
        connection_name=connection,
        max_concurrent_activity_functions=durable.integer(
            "maxConcurrentActivityFunctions", _DEFAULT_CONCURRENCY, 1),
        max_concurrent_orchestrator_functions=durable.integer(
            "maxConcurrentOrchestratorFunctions", _DEFAULT_CONCURRENCY, 1),
        max_concurrent_entity_functions=durable.integer(
            "maxConcurrentEntityFunctions", _DEFAULT_CONCURRENCY, 1),
        extended_sessions_enabled=durable.boolean("extendedSessionsEnabled", False),
        max_orchestration_actions=durable.integer("maxOrchestrationActions", 100000, 1),
        store_inputs_in_orchestration_history=durable.boolean(
            "storeInputsInOrchestrationHistory", False),
        overridable_existing_instance_states=states,
        local_rpc_endpoint_enabled=durable.boolean("localRpcEndpointEnabled", True),
        default_version=durable.optional_string("defaultVersion"),
        version_match_strategy=_choice(durable, "versionMatchStrategy", _MATCH_STRATEGIES,
                                       "CurrentOrOlder"),
        version_failure_strategy=_choice(durable, "versionFailureStrategy",
                                         _FAILURE_STRATEGIES, "Reject"),
        max_entity_operation_batch_size=durable.integer("maxEntityOperationBatchSize", 5000, 1),
    )


def _choice(section: Section, name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (matched without case), else a ConfigError naming them."""
    value = section.string(name, default)
    matching = [a for a in allowed if a.lower() == value.strip().lower()]
    if not matching:
        names = " or ".join(f'"{a}"' for a in allowed)
        raise section.fail(name, f"must be {names}, got {show_value(value)}")
    return matching[0]


# --- local.settings.json ----------------------------------------------------------------


def load_local_settings(path: Path | None) -> LocalSettings:
    text = _read(path)
    if path is None or text is None:
        return LocalSettings(path=None)
    return parse_local_settings(text, str(path))


def parse_local_settings(text: str, file: str) -> LocalSettings:
    top = JsonSource(text, file).root()
    if top.boolean("IsEncrypted", False):
        raise top.fail("IsEncrypted", "encrypted local settings are not supported; "
                       "run `func settings decrypt`")
    host = top.section("Host")
    cors = host.optional_string("CORS") or ""
    return LocalSettings(
        path=file,
        values=_values(top.section("Values")),
        connection_strings=_connection_strings(top.section("ConnectionStrings")),
        local_http_port=host.optional_integer("LocalHttpPort", 1, 65535),
        local_http_address=host.optional_string("LocalHttpAddress"),
        cors=tuple(origin.strip() for origin in cors.split(",") if origin.strip()),
        cors_credentials=host.boolean("CORSCredentials", False),
        master_key=host.optional_string("MasterKey"),
        host_key=host.optional_string("HostKey"),
        function_keys=host.string_map("FunctionKeys"),
        system_keys=host.string_map("SystemKeys"),
    )


def _values(section: Section) -> Mapping[str, str]:
    result: dict[str, str] = {}
    for key, value in section.obj.items():
        if not key.strip() or value is None:
            continue
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            result[key] = str(value)
        else:
            raise section.fail(key, f"must be a string, got {show_value(value)}")
    return MappingProxyType(result)


def _connection_strings(section: Section) -> Mapping[str, str]:
    # Core Tools accepts a plain string or {"ConnectionString": .., "ProviderName": ..}.
    result: dict[str, str] = {}
    for key, value in section.obj.items():
        if value is None:
            continue
        if isinstance(value, dict):
            value = section.section(key).optional_string("ConnectionString")
        if not isinstance(value, str):
            raise section.fail(key, "must be a string or an object with a "
                               "\"ConnectionString\" string")
        result[key] = value
    return MappingProxyType(result)


# --- environment ------------------------------------------------------------------------


def worker_environment(settings: LocalSettings,
                       base_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The worker's environment and the Values keys skipped because base_env has them."""
    env = dict(base_env)
    skipped: list[str] = []
    for key, value in settings.values.items():
        if key in base_env:
            skipped.append(key)
        else:
            env[key] = value
    env["AZURE_FUNCTIONS_ENVIRONMENT"] = "Development"
    env.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")
    return env, skipped


def resolve_setting(name: str, settings: LocalSettings, env: Mapping[str, str]) -> str | None:
    found = _lookup(name, env)
    return found if found is not None else _lookup(name, settings.values)


def _lookup(name: str, mapping: Mapping[str, str]) -> str | None:
    if name in mapping:
        return mapping[name]
    # App settings are case-insensitive in the real host; an exact match still wins.
    wanted = name.lower()
    return next((value for key, value in mapping.items() if key.lower() == wanted), None)


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read: {exc.strerror or exc}") from None
