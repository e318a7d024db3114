"""The rules behind running a user's own app: which interpreter, which log lines, which
functions are disabled, which settings are refused or named, how a failed orchestration
is reported, how another app on the task hub is described."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from runtime import console
from runtime.app_settings import check_app_settings
from runtime.durable.checkpoint import failure_line
from runtime.durable.hub_owners import HubUse, app_of
from runtime.errors import ConfigError
from runtime.functions import FunctionIndex
from runtime.storage import azurite_install
from runtime.worker.interpreter import OWN, find_app_python
from runtime.worker.protocol import parse_log_line, tag_log_line

REPO = Path(__file__).resolve().parents[2]


# -- the app's interpreter -----------------------------------------------------------

def make_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = folder / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


def test_the_flag_wins_then_the_active_venv_then_the_script_roots(tmp_path: Path) -> None:
    root = tmp_path / "app"
    local = make_venv(root / ".venv")
    active = make_venv(tmp_path / "active")
    named = make_venv(tmp_path / "named")

    assert find_app_python(root, str(named), {"VIRTUAL_ENV": str(tmp_path / "active")}) \
        .describe() == f"{named} (--python)"
    assert find_app_python(root, str(tmp_path / "named"), {}).executable == str(named)
    assert find_app_python(root, None, {"VIRTUAL_ENV": str(tmp_path / "active")}) \
        .describe() == f"{active} (VIRTUAL_ENV)"
    assert find_app_python(root, None, {}).describe() == f"{local} (the script root's .venv)"


def test_venv_is_found_too_and_funclocals_own_is_the_last_resort(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "app" / "venv")
    assert find_app_python(tmp_path / "app", None, {}).executable == str(python)
    bare = find_app_python(tmp_path / "other", None, {})
    assert (bare.executable, bare.source) == (sys.executable, OWN)


def test_a_missing_interpreter_named_by_the_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="--python /no/such/python: no such interpreter"):
        find_app_python(tmp_path, "/no/such/python", {})


# -- log lines ---------------------------------------------------------------------------

def test_tagged_log_lines_round_trip_and_prints_are_not_tagged() -> None:
    line = tag_log_line(logging.WARNING, "orders", "low disk")
    assert parse_log_line(line) == (logging.WARNING, "orders", "low disk")
    assert parse_log_line("print('hello')") is None


def test_log_levels_take_the_longest_matching_category() -> None:
    levels = console.LogLevels({"default": "Warning", "Function": "Information",
                                "Function.size": "Debug", "Function.size.User": "Error"})
    assert levels.level_for("Host.Worker") == logging.WARNING
    assert levels.level_for("Function.where.User") == logging.INFO
    assert levels.level_for("Function.size") == logging.DEBUG
    assert levels.level_for("Function.size.User") == logging.ERROR
    assert levels.level_for("Function.sizes.User") == logging.INFO  # not a prefix match
    assert levels.minimum() == logging.DEBUG


def test_verbose_shows_debug_and_a_disabled_console_shows_nothing() -> None:
    assert console.LogLevels(verbose=True).shows("Function.x.User", logging.DEBUG)
    assert not console.LogLevels().shows("Function.x.User", logging.DEBUG)
    assert not console.LogLevels(console_enabled=False).shows("Function.x", logging.ERROR)
    assert console.LogLevels({"default": "None"}).level_for("Function.x") > logging.CRITICAL


def test_warnings_and_errors_are_marked_and_coloured_only_on_a_terminal() -> None:
    record = logging.LogRecord("funclocal", logging.WARNING, __file__, 1, "careful", None,
                               None)
    plain = console.FuncStyleFormatter().format(record)
    assert plain.endswith("] Warning: careful") and "\x1b" not in plain
    coloured = console.FuncStyleFormatter(color=True).format(record)
    assert coloured.startswith("\x1b[33m[") and coloured.endswith("Warning: careful\x1b[0m")
    record.levelno = logging.CRITICAL
    assert console.FuncStyleFormatter().format(record).endswith("] Error: careful")
    record.levelno = logging.INFO
    assert console.FuncStyleFormatter().format(record).endswith("Z] careful")


def test_the_banner_lists_disabled_functions_and_drops_the_hint_when_verbose() -> None:
    index = FunctionIndex.build([{"name": "a", "bindings": [
        {"type": "activityTrigger", "name": "x", "direction": "in"}]}])
    text = console.banner(index.functions, "http://localhost:7071", "api",
                          disabled=index.functions)
    assert "Function a is disabled." in text
    assert "--verbose" in text
    assert "--verbose" not in console.banner((), "http://localhost:7071", "api", verbose=True)


# -- settings ----------------------------------------------------------------------------

def http(name: str) -> dict[str, object]:
    return {"name": name, "bindings": [{"type": "httpTrigger", "name": "req",
                                        "direction": "in"}]}


def test_disabled_functions_by_setting_true_or_1_any_case() -> None:
    index = FunctionIndex.build([http("Hidden"), http("secret"), http("shown"), http("off")])
    result = index.with_disabled({"AzureWebJobs.hidden.Disabled": "True",
                                  "AZUREWEBJOBS.SECRET.DISABLED": "1",
                                  "AzureWebJobs.off.Disabled": "false"})
    assert [f.name for f in result.functions] == ["shown", "off"]
    assert [f.name for f in result.disabled] == ["Hidden", "secret"]
    assert [d["isDisabled"] for d in result.describe()] == [False, False, True, True]
    assert index.with_disabled({}) is index


def test_another_worker_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match="FUNCTIONS_WORKER_RUNTIME is \"dotnet-isolated\", "
                       "but funclocal runs Python function apps only"):
        check_app_settings({"FUNCTIONS_WORKER_RUNTIME": "dotnet-isolated"}, "settings.json")
    assert check_app_settings({"functions_worker_runtime": "Python"}, "x") == []


@pytest.mark.parametrize("value", ["0", "-2", "lots", ""])
def test_a_bad_thread_count_is_named(value: str) -> None:
    [warning] = check_app_settings({"PYTHON_THREADPOOL_THREAD_COUNT": value}, "x")
    assert warning.startswith("PYTHON_THREADPOOL_THREAD_COUNT must be an integer of at least 1")
    assert check_app_settings({"PYTHON_THREADPOOL_THREAD_COUNT": "4"}, "x") == []


def test_worker_extensions_are_named_as_ignored() -> None:
    [warning] = check_app_settings({"PYTHON_ENABLE_WORKER_EXTENSIONS": "true"}, "x")
    assert warning.startswith("PYTHON_ENABLE_WORKER_EXTENSIONS is ignored")
    assert check_app_settings({"PYTHON_ENABLE_WORKER_EXTENSIONS": "0"}, "x") == []


# -- failures and neighbours -------------------------------------------------------------

def test_a_failure_line_has_the_reason_without_the_sdks_details() -> None:
    output = json.dumps("Orchestrator function 'order' failed: Activity function 'charge' "
                        "failed: ValueError: declined \n {\"ClassName\": \"ValueError\"}")
    assert failure_line("order", "i1", output, None) == (
        "Orchestration 'order' (i1) failed: Activity function 'charge' failed: "
        "ValueError: declined")
    frames = 'Traceback (most recent call last):\n  File "app.py", line 3, in order\n'
    assert failure_line("order", "i1", json.dumps("boom"), frames) == (
        "Orchestration 'order' (i1) failed: boom\n" + frames.rstrip())


def test_another_app_on_the_hub_is_one_line_with_the_fix() -> None:
    assert app_of("vm:7071:/src/orders") == "/src/orders"
    running = HubUse(("vm:7072:/src/billing",), None, 3).warning("Hub", 4)
    assert running is not None and "\n" not in running
    assert running.startswith("Task hub 'Hub' is in use by another app (/src/billing; host "
                              "vm:7072:/src/billing), which holds 3 of its 4 partitions")
    assert running.endswith('"hubName": "<a name for this app>"}} in host.json.')
    earlier = HubUse((), "/src/billing").warning("Hub", 4)
    assert earlier is not None and earlier.startswith(
        "Task hub 'Hub' was last used by another app (/src/billing)")
    assert HubUse().warning("Hub", 4) is None


def test_the_azurite_funclocal_installs_is_the_one_it_is_tested_with() -> None:
    package = json.loads((REPO / "package.json").read_text())
    assert package["dependencies"]["azurite"] == azurite_install.AZURITE_VERSION


def test_the_user_cache_follows_xdg(tmp_path: Path) -> None:
    assert azurite_install.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == \
        tmp_path / "funclocal"
    assert azurite_install.cache_dir({"FUNCLOCAL_CACHE_DIR": "/x", "XDG_CACHE_HOME": "/y"}) \
        == Path("/x")


def test_host_json_logging_is_read_and_checked() -> None:
    from runtime.config import parse_host_config

    config = parse_host_config(json.dumps({
        "version": "2.0", "logging": {"logLevel": {"Function.size": "Debug"},
                                      "console": {"isEnabled": False}}}), "host.json", {})
    assert dict(config.log_levels) == {"Function.size": "Debug"}
    assert config.console_logging is False
    with pytest.raises(ConfigError, match="key 'logging.logLevel.default': must be one of "
                       "Trace, Debug, Information, Warning, Error, Critical, None, got "
                       "\"Verbose\""):
        parse_host_config('{"version": "2.0", "logging": {"logLevel": '
                          '{"default": "Verbose"}}}', "host.json", {})


def test_a_missing_module_names_the_interpreter_the_package_and_the_install(
        tmp_path: Path) -> None:
    from runtime.worker.interpreter import AppPython
    from runtime.worker.process import WorkerProcess, WorkerSettings

    python = AppPython("/app/.venv/bin/python", "the script root's .venv")
    worker = WorkerProcess(tmp_path, {}, WorkerSettings(python=python))
    message = "Error importing function_app.py: ModuleNotFoundError: No module named 'x'"
    assert worker._with_hint(message, "humanize") == message + (
        "\nThe workers run on /app/.venv/bin/python (the script root's .venv); install the "
        "app's packages there: /app/.venv/bin/python -m pip install humanize")
    (tmp_path / "requirements.txt").write_text("# the app's packages\nazure-functions\n"
                                               "Humanize>=4 ; python_version >= '3.9'\n")
    listed = worker._with_hint(message, "humanize.time")
    assert listed.endswith(f"install the app's packages there: /app/.venv/bin/python -m pip "
                           f"install -r {tmp_path}/requirements.txt")
    assert worker._with_hint(message, "tabulate").endswith(
        "install the app's packages there: 'tabulate' is not in requirements.txt: add the "
        "package that provides it (usually 'tabulate'), then run /app/.venv/bin/python -m "
        f"pip install -r {tmp_path}/requirements.txt")
    assert worker._with_hint(message, "azure.durable_functions").endswith(
        "\nThe app's Python has no 'azure-functions-durable' package: add it to "
        "requirements.txt.\nThe workers run on /app/.venv/bin/python (the script root's "
        f".venv); install the app's packages there: /app/.venv/bin/python -m pip install -r "
        f"{tmp_path}/requirements.txt")
    assert worker._with_hint(message, None) == message


def test_an_app_module_named_runtime_is_named_at_start(tmp_path: Path) -> None:
    from runtime.worker.interpreter import shadowed_by_funclocal

    assert shadowed_by_funclocal(tmp_path) is None
    (tmp_path / "runtime").mkdir()
    assert shadowed_by_funclocal(tmp_path) is None  # an empty folder imports nothing
    (tmp_path / "runtime" / "regions.py").write_text("")
    assert shadowed_by_funclocal(tmp_path) == "runtime"
    (tmp_path / "runtime.py").write_text("")
    assert shadowed_by_funclocal(tmp_path) == "runtime.py"
