from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.config import (
    DurableTaskConfig,
    HostConfig,
    LocalSettings,
    load_host_config,
    load_local_settings,
    parse_host_config,
    parse_local_settings,
    resolve_setting,
    worker_environment,
)
from runtime.config_source import parse_timespan
from runtime.errors import ConfigError

CPU_DEFAULT = 10 * (os.cpu_count() or 1)


def host_with_durable(durable: dict[str, Any]) -> str:
    """host.json text; line 5 holds durable's first key, line 6 storageProvider's first."""
    return json.dumps({"version": "2.0", "extensions": {"durableTask": durable}}, indent=2)


def host_error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_host_config(text, "app/host.json", env or {})
    return info.value


def settings_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_local_settings(text, "app/local.settings.json")
    return info.value


# --- parse_timespan ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:30", 30.0),
    ("00:05:00", 300.0),
    ("01:00:00", 3600.0),
    ("0:5:0", 300.0),
    ("23:59:59", 86399.0),
    ("1.00:00:00", 86400.0),
    ("2.03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0),
    ("00:00:01.5", 1.5),
    ("00:00:00.0000001", 1e-7),
    ("-00:00:10", -10.0),
    ("  00:01:00 ", 60.0),
])
def test_parse_timespan_accepts_dotnet_constant_format(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "", "30", "00:05", "24:00:00", "00:60:00", "00:00:60", "00:00:01.12345678",
    "1:00:00:00", "abc", "00:00:0x", "1.2.00:00:00",
])
def test_parse_timespan_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan(text)


# --- host.json: defaults and top level --------------------------------------------------


def test_minimal_host_json_gives_defaults() -> None:
    config = parse_host_config('{"version": "2.0"}', "host.json", {})
    assert config == HostConfig(path="host.json")
    assert config.route_prefix == "api"
    assert config.function_timeout == 1800.0
    assert config.durable == DurableTaskConfig()
    durable = config.durable
    assert (durable.hub_name, durable.partition_count, durable.control_queue_batch_size) == (
        "TestHubName", 4, 32)
    assert durable.max_queue_polling_interval == 30.0
    assert durable.control_queue_visibility_timeout == 300.0
    assert durable.work_item_queue_visibility_timeout == 300.0
    assert durable.connection_name == "AzureWebJobsStorage"
    assert durable.max_concurrent_activity_functions == CPU_DEFAULT
    assert durable.max_concurrent_orchestrator_functions == CPU_DEFAULT
    assert durable.max_concurrent_entity_functions == CPU_DEFAULT
    assert durable.max_orchestration_actions == 100000
    assert durable.overridable_existing_instance_states == "NonRunningStates"
    assert not durable.extended_sessions_enabled
    assert not durable.store_inputs_in_orchestration_history


def test_typical_python_host_json_parses() -> None:
    text = """{
  "version": "2.0",
  "logging": {
    "applicationInsights": {"samplingSettings": {"isEnabled": true}},
    "logLevel": {"default": "Information", "Host.Results": "Error"}
  },
  "extensionBundle": {
    "id": "Microsoft.Azure.Functions.ExtensionBundle",
    "version": "[4.*, 5.0.0)"
  }
}"""
    config = parse_host_config(text, "host.json", {})
    assert dict(config.log_levels) == {"default": "Information", "Host.Results": "Error"}
    assert config.durable == DurableTaskConfig()


def test_load_host_config_without_a_file_gives_defaults(tmp_path: Path) -> None:
    assert load_host_config(None, {}) == HostConfig(path=None)
    assert load_host_config(tmp_path / "host.json", {}) == HostConfig(path=None)


def test_load_host_config_reads_the_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text('\ufeff{"version": "2.0", "extensions": {"http": {"routePrefix": "x"}}}',
                    encoding="utf-8")
    config = load_host_config(path, {})
    assert config.path == str(path)
    assert config.route_prefix == "x"

    path.write_text('{\n  "version": "1.0"\n}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_host_config(path, {})
    assert str(info.value) == f"{path}, line 2, key 'version': must be \"2.0\", got \"1.0\""


def test_unreadable_host_json_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "host.json").mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        load_host_config(tmp_path / "host.json", {})
    (tmp_path / "bad.json").write_bytes(b'{"version": "2.0\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_host_config(tmp_path / "bad.json", {})


@pytest.mark.parametrize(("text", "line", "key", "fragment"), [
    ("{}", None, "version", "the required 'version' property is missing"),
    ('{\n"version": "1.0"}', 2, "version", 'must be "2.0", got "1.0"'),
    ('{"version": 2.0}', 1, "version", 'must be "2.0", got 2.0'),
    ('{"version": null}', 1, "version", 'must be "2.0", got null'),
    ('{"version": "2.0"} trailing', 1, None, "invalid JSON: Extra data"),
    ('{"version": "2.0"}\n{}', 2, None, "invalid JSON: Extra data"),
    ('{\n  "version": "2.0",\n  "logging": {,\n}', 3, None, "invalid JSON"),
    ("", 1, None, "invalid JSON: Expecting value"),
    ('\n\n["version"]', 3, None, "must contain a JSON object"),
])
def test_host_json_top_level_errors(text: str, line: int | None, key: str | None,
                                    fragment: str) -> None:
    error = host_error(text)
    assert (error.file, error.line, error.key) == ("app/host.json", line, key)
    assert fragment in error.detail
    assert str(error).startswith("app/host.json")


def test_comments_are_ignored_and_lines_still_count() -> None:
    text = """{
  // "version": "1.0",
  "version": "2.0", /* a block
     comment with "partitionCount": 1 */
  "extensions": {"durableTask": {"storageProvider": {
    "partitionCount": 99 // too many
  }}},
  "watchFiles": ["a // b", "/* c */"]
}"""
    error = host_error(text)
    assert (error.line, error.key) == (6, "extensions.durableTask.storageProvider.partitionCount")
    assert "must be an integer from 1 to 16, got 99" in str(error)
    config = parse_host_config(text.replace("99", "8"), "host.json", {})
    assert config.durable.partition_count == 8
    assert config.watch_files == ("a // b", "/* c */")


# --- host.json: routePrefix, functionTimeout, watch lists, logging -----------------------


@pytest.mark.parametrize(("http", "prefix"), [
    ({}, "api"),
    ({"routePrefix": None}, "api"),
    ({"routePrefix": ""}, ""),
    ({"routePrefix": "/"}, ""),
    ({"routePrefix": "v1"}, "v1"),
    ({"routePrefix": "/v1/"}, "v1"),
    ({"routePrefix": "/a/b/"}, "a/b"),
    ({"ROUTEPREFIX": "upper"}, "upper"),
])
def test_route_prefix(http: dict[str, Any], prefix: str) -> None:
    text = json.dumps({"version": "2.0", "extensions": {"http": http}})
    assert parse_host_config(text, "host.json", {}).route_prefix == prefix


@pytest.mark.parametrize(("entry", "timeout"), [
    ({}, 1800.0),
    ({"functionTimeout": "00:10:00"}, 600.0),
    ({"functionTimeout": "1.00:00:00"}, 86400.0),
    ({"functionTimeout": "00:00:01"}, 1.0),
    ({"functionTimeout": "-1"}, None),
    ({"functionTimeout": -1}, None),
    ({"functionTimeout": None}, None),
    ({"FunctionTimeout": "00:00:05"}, 5.0),
])
def test_function_timeout(entry: dict[str, Any], timeout: float | None) -> None:
    text = json.dumps({"version": "2.0", **entry})
    assert parse_host_config(text, "host.json", {}).function_timeout == timeout


@pytest.mark.parametrize(("value", "fragment"), [
    (300, "must be a TimeSpan string such as \"00:05:00\" or -1 for no limit, got 300"),
    ("5 minutes", "'5 minutes' is not a TimeSpan"),
    ("00:00:00", "must be at least 00:00:01"),
    ("-00:00:05", "must be at least 00:00:01"),
    (True, "got true"),
])
def test_bad_function_timeout(value: object, fragment: str) -> None:
    error = host_error(json.dumps({"version": "2.0", "functionTimeout": value}, indent=2))
    assert (error.line, error.key) == (3, "functionTimeout")
    assert fragment in error.detail


def test_watch_lists_and_log_levels() -> None:
    text = json.dumps({
        "version": "2.0",
        "watchDirectories": ["shared", "lib"],
        "watchFiles": ["data.csv"],
        "logging": {"logLevel": {"default": "Warning", "Function.hello": "Debug"}},
    })
    config = parse_host_config(text, "host.json", {})
    assert config.watch_directories == ("shared", "lib")
    assert config.watch_files == ("data.csv",)
    assert dict(config.log_levels) == {"default": "Warning", "Function.hello": "Debug"}


@pytest.mark.parametrize(("body", "line", "key", "fragment"), [
    ({"watchDirectories": "shared"}, 3, "watchDirectories",
     'must be a list of strings, got "shared"'),
    ({"watchFiles": ["a", 1]}, 3, "watchFiles", 'must be a list of strings, got ["a", 1]'),
    ({"logging": []}, 3, "logging", "must be a JSON object, got []"),
    ({"logging": {"logLevel": "Debug"}}, 4, "logging.logLevel",
     'must be a JSON object, got "Debug"'),
    ({"logging": {"logLevel": {"default": 3}}}, 5, "logging.logLevel.default",
     "must be a string, got 3"),
    ({"extensions": "x"}, 3, "extensions", 'must be a JSON object, got "x"'),
    ({"extensions": {"http": {"routePrefix": 1}}}, 5, "extensions.http.routePrefix",
     "must be a string, got 1"),
])
def test_bad_top_level_values(body: dict[str, Any], line: int, key: str,
                              fragment: str) -> None:
    error = host_error(json.dumps({"version": "2.0", **body}, indent=2))
    assert (error.line, error.key) == (line, key)
    assert fragment in error.detail


# --- host.json: extensions.durableTask --------------------------------------------------


def test_durable_task_settings_are_read() -> None:
    text = host_with_durable({
        "hubName": "MyHub1",
        "storageProvider": {
            "type": "AzureStorage",
            "connectionName": "Storage",
            "partitionCount": 16,
            "controlQueueBatchSize": 1,
            "maxQueuePollingInterval": "00:00:02",
            "controlQueueVisibilityTimeout": "00:01:00",
            "workItemQueueVisibilityTimeout": "00:02:30.5",
            "someFutureSetting": {"anything": [1, 2]},
        },
        "maxConcurrentActivityFunctions": 3,
        "maxConcurrentOrchestratorFunctions": 4,
        "maxConcurrentEntityFunctions": 5,
        "extendedSessionsEnabled": True,
        "localRpcEndpointEnabled": False,
        "maxOrchestrationActions": 50,
        "storeInputsInOrchestrationHistory": True,
        "overridableExistingInstanceStates": "AnyState",
        "tracing": {"traceInputsAndOutputs": True},
    })
    assert parse_host_config(text, "host.json", {}).durable == DurableTaskConfig(
        hub_name="MyHub1",
        partition_count=16,
        control_queue_batch_size=1,
        max_queue_polling_interval=2.0,
        control_queue_visibility_timeout=60.0,
        work_item_queue_visibility_timeout=150.5,
        connection_name="Storage",
        max_concurrent_activity_functions=3,
        max_concurrent_orchestrator_functions=4,
        max_concurrent_entity_functions=5,
        extended_sessions_enabled=True,
        max_orchestration_actions=50,
        store_inputs_in_orchestration_history=True,
        overridable_existing_instance_states="AnyState",
        local_rpc_endpoint_enabled=False,
    )


def test_durable_keys_match_case_insensitively() -> None:
    text = json.dumps({"Version": "2.0", "Extensions": {"DurableTask": {
        "HUBNAME": "CaseHub",
        "StorageProvider": {"PartitionCount": 2, "ConnectionStringName": "Legacy"},
        "overridableexistinginstancestates": "anystate",
    }}})
    durable = parse_host_config(text, "host.json", {}).durable
    assert (durable.hub_name, durable.partition_count, durable.connection_name) == (
        "CaseHub", 2, "Legacy")
    assert durable.overridable_existing_instance_states == "AnyState"


@pytest.mark.parametrize(("storage", "connection"), [
    ({}, "AzureWebJobsStorage"),
    ({"connectionName": "A"}, "A"),
    ({"connectionStringName": "B"}, "B"),
    ({"connectionName": "A", "connectionStringName": "B"}, "A"),
    ({"connectionName": None}, "AzureWebJobsStorage"),
])
def test_connection_name(storage: dict[str, Any], connection: str) -> None:
    text = host_with_durable({"storageProvider": storage})
    assert parse_host_config(text, "host.json", {}).durable.connection_name == connection


@pytest.mark.parametrize(("durable", "value"), [
    ({"storageProvider": {"partitionCount": "8"}}, 8),
    ({"storageProvider": {"partitionCount": None}}, 4),
])
def test_numbers_written_as_text_bind_like_dotnet(durable: dict[str, Any], value: int) -> None:
    text = host_with_durable(durable)
    assert parse_host_config(text, "host.json", {}).durable.partition_count == value


@pytest.mark.parametrize(("hub", "env", "resolved"), [
    ("%HUB_NAME%", {"HUB_NAME": "FromEnv"}, "FromEnv"),
    ("%hub_name%", {"HUB_NAME": "AnyCase"}, "AnyCase"),
    ("Pre%SUFFIX%", {"SUFFIX": "Fix9"}, "PreFix9"),
    ("abc", {}, "abc"),
    ("A" * 45, {}, "A" * 45),
    ("Hub2024", {}, "Hub2024"),
])
def test_hub_name_is_resolved_and_accepted(hub: str, env: dict[str, str],
                                           resolved: str) -> None:
    text = host_with_durable({"hubName": hub})
    assert parse_host_config(text, "host.json", env).durable.hub_name == resolved


@pytest.mark.parametrize(("hub", "env", "fragment"), [
    ("ab", {}, '"ab" is not a valid task hub name: use 3 to 45 letters and digits, '
               "starting with a letter"),
    ("A" * 46, {}, "is not a valid task hub name"),
    ("1hub", {}, '"1hub" is not a valid task hub name'),
    ("my-hub", {}, '"my-hub" is not a valid task hub name'),
    ("my_hub", {}, "is not a valid task hub name"),
    ("", {}, '"" is not a valid task hub name'),
    ("%HUB%", {"HUB": "bad hub"}, '"bad hub" (resolved from "%HUB%") is not a valid task hub'),
    ("%MISSING%", {}, "app setting 'MISSING' is not defined"),
])
def test_bad_hub_names(hub: str, env: dict[str, str], fragment: str) -> None:
    error = host_error(host_with_durable({"hubName": hub}), env)
    assert (error.line, error.key) == (5, "extensions.durableTask.hubName")
    assert fragment in error.detail
    assert str(error).startswith("app/host.json, line 5, key 'extensions.durableTask.hubName': ")


@pytest.mark.parametrize(("durable", "line", "key", "fragment"), [
    ({"hubName": 42}, 5, "hubName", "must be a string, got 42"),
    ({"storageProvider": "x"}, 5, "storageProvider", 'must be a JSON object, got "x"'),
    ({"storageProvider": {"partitionCount": 0}}, 6, "storageProvider.partitionCount",
     "must be an integer from 1 to 16, got 0"),
    ({"storageProvider": {"partitionCount": 17}}, 6, "storageProvider.partitionCount",
     "must be an integer from 1 to 16, got 17"),
    ({"storageProvider": {"partitionCount": 2.5}}, 6, "storageProvider.partitionCount",
     "must be an integer from 1 to 16, got 2.5"),
    ({"storageProvider": {"partitionCount": True}}, 6, "storageProvider.partitionCount",
     "must be an integer from 1 to 16, got true"),
    ({"storageProvider": {"partitionCount": "four"}}, 6, "storageProvider.partitionCount",
     'must be an integer from 1 to 16, got "four"'),
    ({"storageProvider": {"controlQueueBatchSize": 33}}, 6,
     "storageProvider.controlQueueBatchSize", "must be an integer from 1 to 32, got 33"),
    ({"storageProvider": {"controlQueueBatchSize": 0}}, 6,
     "storageProvider.controlQueueBatchSize", "must be an integer from 1 to 32, got 0"),
    ({"storageProvider": {"maxQueuePollingInterval": 30}}, 6,
     "storageProvider.maxQueuePollingInterval",
     'must be a TimeSpan string such as "00:05:00", got 30'),
    ({"storageProvider": {"maxQueuePollingInterval": "30s"}}, 6,
     "storageProvider.maxQueuePollingInterval", "'30s' is not a TimeSpan"),
    ({"storageProvider": {"controlQueueVisibilityTimeout": "00:00:00"}}, 6,
     "storageProvider.controlQueueVisibilityTimeout",
     'must be a positive TimeSpan, got "00:00:00"'),
    ({"storageProvider": {"workItemQueueVisibilityTimeout": "-00:01:00"}}, 6,
     "storageProvider.workItemQueueVisibilityTimeout", "must be a positive TimeSpan"),
    ({"storageProvider": {"connectionName": 5}}, 6, "storageProvider.connectionName",
     "must be a string, got 5"),
    ({"maxConcurrentActivityFunctions": 0}, 5, "maxConcurrentActivityFunctions",
     "must be an integer of at least 1, got 0"),
    ({"maxConcurrentOrchestratorFunctions": -3}, 5, "maxConcurrentOrchestratorFunctions",
     "must be an integer of at least 1, got -3"),
    ({"maxConcurrentEntityFunctions": "many"}, 5, "maxConcurrentEntityFunctions",
     'must be an integer of at least 1, got "many"'),
    ({"maxOrchestrationActions": 0}, 5, "maxOrchestrationActions",
     "must be an integer of at least 1, got 0"),
    ({"extendedSessionsEnabled": "yes"}, 5, "extendedSessionsEnabled",
     'must be true or false, got "yes"'),
    ({"localRpcEndpointEnabled": 1}, 5, "localRpcEndpointEnabled",
     "must be true or false, got 1"),
    ({"storeInputsInOrchestrationHistory": []}, 5, "storeInputsInOrchestrationHistory",
     "must be true or false, got []"),
    ({"overridableExistingInstanceStates": "Running"}, 5,
     "overridableExistingInstanceStates",
     'must be "NonRunningStates" or "AnyState", got "Running"'),
])
def test_bad_durable_values(durable: dict[str, Any], line: int, key: str,
                            fragment: str) -> None:
    error = host_error(host_with_durable(durable))
    full_key = f"extensions.durableTask.{key}"
    assert (error.file, error.line, error.key) == ("app/host.json", line, full_key)
    assert fragment in error.detail
    assert f"app/host.json, line {line}, key '{full_key}': " in str(error)


def test_boolean_text_binds_like_dotnet() -> None:
    text = host_with_durable({"extendedSessionsEnabled": "True"})
    assert parse_host_config(text, "host.json", {}).durable.extended_sessions_enabled


def test_error_line_prefers_the_key_under_its_parent() -> None:
    text = """{
  "version": "2.0",
  "logging": {"logLevel": {"partitionCount": "Information"}},
  "extensions": {
    "queues": {"partitionCount": 1},
    "durableTask": {
      "storageProvider": {
        "partitionCount": 0
      }
    }
  }
}"""
    error = host_error(text)
    assert error.line == 8


# --- local.settings.json ----------------------------------------------------------------

FULL_SETTINGS = """{
  "IsEncrypted": false,
  "Values": {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "RETRIES": 3,
    "RATIO": 0.5,
    "FEATURE_ON": true,
    "FEATURE_OFF": false,
    "NOTHING": null,
    "": "ignored"
  },
  "ConnectionStrings": {
    "Sql": "Server=.;Database=x",
    "Other": {"ConnectionString": "Endpoint=y", "ProviderName": "System.Data.SqlClient"}
  },
  "Host": {
    "LocalHttpPort": 7072,
    "LocalHttpAddress": "0.0.0.0",
    "CORS": "http://a.example, https://b.example ,",
    "CORSCredentials": true,
    "MasterKey": "master",
    "HostKey": "host",
    "FunctionKeys": {"hello": "k1"}
  }
}"""


def test_full_local_settings() -> None:
    settings = parse_local_settings(FULL_SETTINGS, "local.settings.json")
    assert settings.path == "local.settings.json"
    assert dict(settings.values) == {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "RETRIES": "3",
        "RATIO": "0.5",
        "FEATURE_ON": "true",
        "FEATURE_OFF": "false",
    }
    assert dict(settings.connection_strings) == {"Sql": "Server=.;Database=x",
                                                 "Other": "Endpoint=y"}
    assert settings.local_http_port == 7072
    assert settings.local_http_address == "0.0.0.0"
    assert settings.cors == ("http://a.example", "https://b.example")
    assert settings.cors_credentials is True
    assert (settings.master_key, settings.host_key) == ("master", "host")
    assert dict(settings.function_keys) == {"hello": "k1"}


def test_empty_local_settings() -> None:
    settings = parse_local_settings("{}", "local.settings.json")
    assert settings == LocalSettings(path="local.settings.json")
    assert dict(settings.values) == {}
    assert settings.local_http_port is None
    assert settings.cors == ()
    assert settings.cors_credentials is False
    assert settings.master_key is None


def test_local_settings_keys_match_case_insensitively() -> None:
    text = '{"values": {"A": "1"}, "host": {"localHttpPort": "8080", "cors": "*"}}'
    settings = parse_local_settings(text, "local.settings.json")
    assert dict(settings.values) == {"A": "1"}
    assert settings.local_http_port == 8080
    assert settings.cors == ("*",)


def test_load_local_settings(tmp_path: Path) -> None:
    assert load_local_settings(None) == LocalSettings(path=None)
    path = tmp_path / "local.settings.json"
    assert load_local_settings(path) == LocalSettings(path=None)
    path.write_text('\ufeff{"Values": {"X": "y"}}', encoding="utf-8")
    settings = load_local_settings(path)
    assert settings.path == str(path)
    assert dict(settings.values) == {"X": "y"}
    path.write_text('{"Values": {\n  "X": ["y"]\n}}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_local_settings(path)
    assert str(info.value) == f"{path}, line 2, key 'Values.X': must be a string, got [\"y\"]"


@pytest.mark.parametrize(("body", "line", "key", "fragment"), [
    ({"IsEncrypted": True}, 2, "IsEncrypted",
     "encrypted local settings are not supported; run `func settings decrypt`"),
    ({"IsEncrypted": "no"}, 2, "IsEncrypted", 'must be true or false, got "no"'),
    ({"Values": []}, 2, "Values", "must be a JSON object, got []"),
    ({"Values": {"A": {"b": 1}}}, 3, "Values.A", 'must be a string, got {"b": 1}'),
    ({"Values": {"A": "ok", "B": [1]}}, 4, "Values.B", "must be a string, got [1]"),
    ({"ConnectionStrings": {"Db": 5}}, 3, "ConnectionStrings.Db",
     'must be a string or an object with a "ConnectionString" string'),
    ({"ConnectionStrings": {"Db": {"ProviderName": "x"}}}, 3, "ConnectionStrings.Db",
     'must be a string or an object with a "ConnectionString" string'),
    ({"Host": {"LocalHttpPort": 0}}, 3, "Host.LocalHttpPort",
     "must be an integer from 1 to 65535, got 0"),
    ({"Host": {"LocalHttpPort": 65536}}, 3, "Host.LocalHttpPort",
     "must be an integer from 1 to 65535, got 65536"),
    ({"Host": {"LocalHttpPort": "http"}}, 3, "Host.LocalHttpPort",
     'must be an integer from 1 to 65535, got "http"'),
    ({"Host": {"LocalHttpPort": True}}, 3, "Host.LocalHttpPort",
     "must be an integer from 1 to 65535, got true"),
    ({"Host": {"LocalHttpAddress": 127}}, 3, "Host.LocalHttpAddress",
     "must be a string, got 127"),
    ({"Host": {"CORS": ["a"]}}, 3, "Host.CORS", 'must be a string, got ["a"]'),
    ({"Host": {"CORSCredentials": "maybe"}}, 3, "Host.CORSCredentials",
     'must be true or false, got "maybe"'),
    ({"Host": {"MasterKey": 1}}, 3, "Host.MasterKey", "must be a string, got 1"),
    ({"Host": {"FunctionKeys": {"hello": 1}}}, 4, "Host.FunctionKeys.hello",
     "must be a string, got 1"),
    ({"Host": "x"}, 2, "Host", 'must be a JSON object, got "x"'),
])
def test_bad_local_settings(body: dict[str, Any], line: int, key: str,
                            fragment: str) -> None:
    error = settings_error(json.dumps(body, indent=2))
    assert (error.file, error.line, error.key) == ("app/local.settings.json", line, key)
    assert fragment in error.detail
    assert str(error).startswith(f"app/local.settings.json, line {line}, key '{key}': ")


@pytest.mark.parametrize(("text", "line"), [
    ('{\n  "Values": {\n    "A": "1",\n  }\n}', 4),
    ('{"Values": {}}\n\n}', 3),
    ("[]", 1),
])
def test_local_settings_json_errors_name_the_line(text: str, line: int) -> None:
    error = settings_error(text)
    assert (error.line, error.key) == (line, None)


# --- worker environment and settings lookup ---------------------------------------------


def settings_with(values: dict[str, str],
                  connection_strings: dict[str, str] | None = None) -> LocalSettings:
    return LocalSettings(path="local.settings.json", values=values,
                         connection_strings=connection_strings or {})


@pytest.mark.parametrize(("values", "base", "expected_extra", "skipped"), [
    ({}, {}, {}, []),
    ({"A": "1", "B": "2"}, {"PATH": "/bin"}, {"PATH": "/bin", "A": "1", "B": "2"}, []),
    ({"A": "1", "B": "2"}, {"A": "env"}, {"A": "env", "B": "2"}, ["A"]),
    ({"A": "1", "B": "2"}, {"B": "", "A": "x"}, {"A": "x", "B": ""}, ["A", "B"]),
    ({"FUNCTIONS_WORKER_RUNTIME": "custom"}, {}, {"FUNCTIONS_WORKER_RUNTIME": "custom"}, []),
    ({}, {"FUNCTIONS_WORKER_RUNTIME": "base"}, {"FUNCTIONS_WORKER_RUNTIME": "base"}, []),
    ({"AZURE_FUNCTIONS_ENVIRONMENT": "Production"}, {"AZURE_FUNCTIONS_ENVIRONMENT": "Staging"},
     {}, ["AZURE_FUNCTIONS_ENVIRONMENT"]),
])
def test_worker_environment(values: dict[str, str], base: dict[str, str],
                            expected_extra: dict[str, str], skipped: list[str]) -> None:
    base_copy = dict(base)
    env, skipped_keys = worker_environment(settings_with(values), base)
    expected = {"FUNCTIONS_WORKER_RUNTIME": "python", **expected_extra,
                "AZURE_FUNCTIONS_ENVIRONMENT": "Development"}
    assert env == expected
    assert skipped_keys == skipped
    assert base == base_copy


def test_connection_strings_do_not_become_environment_variables() -> None:
    settings = settings_with({"A": "1"}, {"Sql": "Server=."})
    env, _ = worker_environment(settings, {})
    assert "Sql" not in env


@pytest.mark.parametrize(("name", "values", "env", "found"), [
    ("AzureWebJobsStorage", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, {},
     "UseDevelopmentStorage=true"),
    ("AzureWebJobsStorage", {"AzureWebJobsStorage": "from-values"},
     {"AzureWebJobsStorage": "from-env"}, "from-env"),
    ("AzureWebJobsStorage", {"azurewebjobsstorage": "any-case"}, {}, "any-case"),
    ("Missing", {"Other": "x"}, {"Another": "y"}, None),
    ("Empty", {"Empty": "values"}, {"Empty": ""}, ""),
])
def test_resolve_setting(name: str, values: dict[str, str], env: dict[str, str],
                         found: str | None) -> None:
    assert resolve_setting(name, settings_with(values), env) == found
