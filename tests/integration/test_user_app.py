"""A user's own app, as a new user runs it: a folder outside funclocal's checkout with
its own `.venv` (holding `humanize`, which funclocal's environment lacks),
`requirements.txt`, `host.json` and `local.settings.json`, served by the `funclocal`
script of a `pip install` of this checkout, from the app's folder.

Each console item a user reads is asserted on the captured output, and every host is
stopped with Ctrl-C (SIGINT to its process group, as a terminal sends it).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.azurite import emulator_at, free_ports, unique_hub_name
from support.dap import DapClient
from support.host import (
    APPS,
    REPO,
    HostProcess,
    child_pids,
    free_port,
    pid_alive,
    request,
    start_host,
    wait_until_running,
)
from support.installs import app_venv, azurite_cache, cache_lock, installed_funclocal

from runtime.storage.connection import StorageEndpoints

JSON = {"Content-Type": "application/json"}
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # node and npm, and no Azurite


# -- the user's environment -----------------------------------------------------------

@pytest.fixture(scope="session")
def funclocal_bin() -> Path:
    return installed_funclocal()


@pytest.fixture(scope="session")
def venv() -> Path:
    return app_venv()


def user_env(funclocal_bin: Path, *extra_path: Path, **values: str) -> dict[str, str]:
    """A shell's environment after `pip install` of funclocal: this machine's settings
    (certificates...), funclocal's script on PATH, and nothing of this checkout (no
    PYTHONPATH) nor of the test run's virtual environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "FUNCLOCAL_CACHE_DIR")}
    env["PATH"] = os.pathsep.join([str(funclocal_bin), *map(str, extra_path), SYSTEM_PATH])
    env["XDG_CACHE_HOME"] = str(values.pop("XDG_CACHE_HOME", "/nonexistent/cache"))
    env.update(values)
    return env


def make_app(folder: Path, venv: Path, source: str, *, settings: dict[str, Any],
             host: dict[str, Any] | None = None, local_port: int | None = None) -> Path:
    """An app folder as `func init` leaves it, with the app's venv as its `.venv`."""
    folder.mkdir(parents=True)
    (folder / "function_app.py").write_text(source)
    (folder / "requirements.txt").write_text(
        "azure-functions\nazure-functions-durable\nhumanize\n")
    (folder / "host.json").write_text(json.dumps({"version": "2.0", **(host or {})}))
    local: dict[str, Any] = {"IsEncrypted": False, "Values": {
        "FUNCTIONS_WORKER_RUNTIME": "python", **settings}}
    if local_port is not None:
        local["Host"] = {"LocalHttpPort": local_port}
    (folder / "local.settings.json").write_text(json.dumps(local, indent=2))
    (folder / ".venv").symlink_to(venv)
    return folder


def follow(host: HostProcess, status_url: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = request("GET", status_url)
        if response.status == 200:
            return dict(response.json())
        assert response.status == 202, response.text
        time.sleep(0.05)
    raise AssertionError(f"{status_url} did not finish:\n{host.log_text()}")


def lines_after(host: HostProcess, fragment: str, count: int) -> list[str]:
    index = next(i for i, line in enumerate(host.output) if fragment in line)
    return host.output[index + 1:index + 1 + count]


def wait_count(host: HostProcess, fragment: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while host.count(fragment) < count:
        assert time.monotonic() < deadline, host.log_text()
        time.sleep(0.02)


def stop_with_ctrl_c(host: HostProcess) -> None:
    """Ctrl-C stops the host and everything it started, with no traceback, no warning
    of unclosed sessions and no worker restarted on the way."""
    before = len(host.output)
    started = child_pids(host.process.pid)
    assert host.interrupt() == 0, host.log_text()
    shutdown = "\n".join(host.output[before:])
    assert "Host stopped." in shutdown
    for noise in ("Traceback", "KeyboardInterrupt", "Unclosed", "exited unexpectedly",
                  "starting a new one"):
        assert noise not in shutdown, host.log_text()
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if pid_alive(pid)] == []


# -- the orders app: durable, with its own packages -----------------------------------

ORDERS_APP = '''\
import importlib.util
import json
import logging
import sys
import time

import azure.durable_functions as df
import azure.functions as func
import humanize

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="size")
def size(req: func.HttpRequest) -> func.HttpResponse:
    logging.debug("size: debug detail")
    logging.warning("size: the disk is nearly full")
    logging.error("size: the disk is failing")
    return func.HttpResponse(humanize.naturalsize(int(req.params.get("bytes", "0"))))


@app.route(route="where")
def where(req: func.HttpRequest) -> func.HttpResponse:
    logging.debug("where: debug detail")
    return func.HttpResponse(json.dumps({
        "python": sys.executable,
        "funclocal_dependency": importlib.util.find_spec("watchfiles") is not None}))


@app.route(route="pause")
def pause(req: func.HttpRequest) -> func.HttpResponse:
    breakpoint()
    return func.HttpResponse("went on")


@app.route(route="hidden")
def hidden(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("disabled functions are not served")


@app.route(route="orders", methods=["POST"])
@app.durable_client_input(client_name="client")
async def place(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_json()
    name = body.pop("orchestrator", "process_order")
    instance_id = await client.start_new(name, None, body)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def process_order(context: df.DurableOrchestrationContext):
    order = context.get_input()
    results = yield context.task_all([context.call_activity("charge", order),
                                      context.call_activity("pack", order)])
    return results


@app.orchestration_trigger(context_name="context")
def uses_secret(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("secret", "x"))


@app.activity_trigger(input_name="order")
def charge(order: dict) -> str:
    if order.get("fail"):
        raise ValueError(f"card declined for {order['id']}")
    return humanize.intcomma(order["amount"])


@app.activity_trigger(input_name="order")
def pack(order: dict) -> str:
    time.sleep(0.5)  # still running when charge fails
    return "packed"


@app.activity_trigger(input_name="value")
def secret(value: str) -> str:
    return value
'''
BREAKPOINT_LINE = ORDERS_APP.splitlines().index("    breakpoint()") + 1


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory, azurite: StorageEndpoints,
           funclocal_bin: Path, venv: Path) -> Iterator[HostProcess]:
    hub = unique_hub_name("orders")
    port = free_port()
    app = make_app(
        tmp_path_factory.mktemp("src") / "orders-app", venv, ORDERS_APP, local_port=port,
        settings={"AzureWebJobsStorage": azurite.connection_string,
                  "AzureWebJobs.hidden.Disabled": "true", "AzureWebJobs.Secret.Disabled": "1",
                  "PYTHON_ENABLE_WORKER_EXTENSIONS": "1",
                  "PYTHON_THREADPOOL_THREAD_COUNT": "many"},
        host={"logging": {"logLevel": {"default": "Information", "Function.size": "Debug"}},
              "extensions": {"durableTask": {"hubName": hub}}})
    host = start_host(app, program=[str(funclocal_bin / "funclocal")], port=port,
                      port_flag=False, base_env=user_env(funclocal_bin))
    host.hub = hub  # type: ignore[attr-defined]
    yield host
    host.interrupt()


def test_workers_run_on_the_apps_own_python_and_packages(orders: HostProcess) -> None:
    app = orders.script_root
    orders.wait_for_log(f"Workers run on {app}/.venv/bin/python (the script root's .venv).")
    assert orders.get("/api/size?bytes=123456789").text == "123.5 MB"
    where = orders.get("/api/where").json()
    assert where == {"python": f"{app}/.venv/bin/python", "funclocal_dependency": False}


def test_an_emulator_it_did_not_start_is_named_and_left_running(
        orders: HostProcess, azurite: StorageEndpoints) -> None:
    ports = [f"{s} 127.0.0.1:{u.rsplit(':', 1)[1].split('/')[0]}"
             for s, u in (("blob", azurite.blob_url), ("queue", azurite.queue_url),
                          ("table", azurite.table_url))]
    orders.wait_for_log(f"Using the storage emulator already running ({', '.join(ports)}); "
                        "funclocal did not start it and will not stop it.")
    assert "Started Azurite" not in orders.log_text()


def test_log_levels_from_host_json_and_marked_warnings_and_errors(
        orders: HostProcess) -> None:
    orders.get("/api/size?bytes=1")
    orders.get("/api/where")
    orders.wait_for_log("size: the disk is failing")
    text = orders.log_text()
    # host.json "Function.size": "Debug"; the default (Information) hides where's.
    assert re.search(r"\] \[worker \d+\] size: debug detail", text)
    assert "where: debug detail" not in text
    assert re.search(r"\] Warning: \[worker \d+\] size: the disk is nearly full", text)
    assert re.search(r"\] Error: \[worker \d+\] size: the disk is failing", text)
    assert "For detailed output, run funclocal with --verbose flag." in text


def test_a_failed_orchestration_prints_its_reason_once(orders: HostProcess) -> None:
    response = orders.post("/api/orders", json.dumps({"id": "A-1", "amount": 12345,
                                                      "fail": True}), headers=JSON)
    instance = response.json()["id"]
    status = follow(orders, response.json()["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Failed"
    line = (f"Error: Orchestration 'process_order' ({instance}) failed: Activity function "
            "'charge' failed: ValueError: card declined for A-1")
    orders.wait_for_log(line)
    # The orchestrator ran again for pack's late result: still one failure line.
    assert orders.count(f"Orchestration 'process_order' ({instance}) failed") == 1
    assert orders.count("Executed 'Functions.pack' (Succeeded") >= 1
    # The orchestrator's traceback starts at user code; no SDK blob, no SDK frames.
    frames = lines_after(orders, line, 3)
    assert frames[0] == "Traceback (most recent call last):"
    assert frames[1].startswith(f'  File "{orders.script_root}/function_app.py", line ')
    assert frames[1].endswith(", in process_order")
    text = orders.log_text()
    assert "$OutOfProcData$" not in text
    assert "TaskOrchestrationExecutor" not in text


def test_breakpoint_without_a_debugger_is_one_warning(orders: HostProcess) -> None:
    assert orders.get("/api/pause").text == "went on"
    assert orders.get("/api/pause").text == "went on"
    warning = (f"breakpoint() at {orders.script_root}/function_app.py:{BREAKPOINT_LINE} "
               "ignored: no debugger is attached. Start funclocal with --debug PORT")
    orders.wait_for_log(warning)
    assert orders.count(warning) == 1
    assert "BdbQuit" not in orders.log_text()


def test_disabled_functions_are_listed_and_never_run(orders: HostProcess) -> None:
    orders.wait_for_log("Function hidden is disabled.")
    orders.wait_for_log("Function secret is disabled.")
    assert "\thidden:" not in orders.log_text()
    assert orders.get("/api/hidden").status == 404
    response = orders.post("/api/orders", json.dumps({"orchestrator": "uses_secret"}),
                           headers=JSON)
    status = follow(orders, response.json()["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Failed"
    assert "The function 'secret' doesn't exist, is disabled, or is not an activity " \
        "function." in status["output"]
    assert "Executing 'Functions.secret'" not in orders.log_text()


def test_the_index_command_runs_on_the_apps_python_too(orders: HostProcess,
                                                       funclocal_bin: Path) -> None:
    code, output = run_funclocal(funclocal_bin, orders.script_root, "functions")
    assert code == 0, output
    lines = output.splitlines()
    assert "size: [GET,POST] size (authLevel anonymous)" in lines
    assert "charge: activityTrigger" in lines
    assert "hidden: disabled" in lines and "secret: disabled" in lines


def test_settings_it_cannot_honour_are_named(orders: HostProcess) -> None:
    orders.wait_for_log("Warning: PYTHON_ENABLE_WORKER_EXTENSIONS is ignored: funclocal does "
                        "not run Python worker extensions")
    orders.wait_for_log('Warning: PYTHON_THREADPOOL_THREAD_COUNT must be an integer of at '
                        'least 1, got "many"')


def test_a_second_app_on_the_same_task_hub_is_warned_about(
        orders: HostProcess, azurite: StorageEndpoints) -> None:
    orders.wait_for_log("Host started on")
    other = start_host(APPS / "durable", args=["--no-azurite"], env={
        "AzureWebJobsStorage": azurite.connection_string,
        "TEST_HUB_NAME": orders.hub})  # type: ignore[attr-defined]
    try:
        # The partition owners name the first app and the port it serves (its
        # Host.LocalHttpPort, not a default).
        other.wait_for_log(
            f"Warning: Task hub '{orders.hub}' is in use by another app "  # type: ignore[attr-defined]
            f"({orders.script_root}; host {socket.gethostname()}:{orders.port}:"
            f"{orders.script_root}), which holds 4 of its 4 partitions")
        other.wait_for_log('"hubName": "<a name for this app>"}} in host.json')
    finally:
        other.stop()


def test_ctrl_c_stops_everything_quietly(orders: HostProcess) -> None:
    stop_with_ctrl_c(orders)


# -- an app that grows: broken, then HTTP only (no storage), then durable --------------

BROKEN_APP = '''\
import azure.functions as func
import not_installed_helper

app = func.FunctionApp()
'''
HTTP_APP = '''\
import azure.functions as func
import humanize

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello, {humanize.apnumber(3)} times")
'''
DURABLE_ADDITION = '''
import azure.durable_functions as df

durable = df.Blueprint()


@durable.route(route="start", methods=["POST"])
@durable.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new("greet")
    return client.create_check_status_response(req, instance_id)


@durable.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("word", 7))


@durable.activity_trigger(input_name="number")
def word(number: int) -> str:
    return humanize.apnumber(number)


app.register_functions(durable)
'''


def azurite_on_path(folder: Path) -> Path:
    """A folder on PATH with Azurite's three commands, as `npm install -g` leaves them."""
    folder.mkdir()
    for service in ("blob", "queue", "table"):
        (folder / f"azurite-{service}").symlink_to(
            REPO / "node_modules" / ".bin" / f"azurite-{service}")
    return folder


def test_an_app_that_grows_from_broken_to_http_to_durable(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    app = make_app(tmp_path / "greeter", venv, BROKEN_APP,
                   settings={"AzureWebJobsStorage": emulator_at(free_ports(3))},
                   host={"extensions": {"durableTask": {"hubName": unique_hub_name("grow")}}})
    on_path = azurite_on_path(tmp_path / "npm-global")
    host = start_host(app, program=[str(funclocal_bin / "funclocal")], reload=True,
                      args=["--verbose"], base_env=user_env(funclocal_bin, on_path))
    try:
        # 1. A package missing from the app's venv: said once, with the fix; the host
        # keeps running and serves nothing yet.
        python = f"{app}/.venv/bin/python"
        host.wait_for_log("Error importing function_app.py: ModuleNotFoundError: No module "
                          "named 'not_installed_helper'")
        host.wait_for_log(f"The workers run on {python} (the script root's .venv); install "
                          "the app's packages there: 'not_installed_helper' is not in "
                          "requirements.txt: add the package that provides it (usually "
                          f"'not_installed_helper'), then run {python} -m pip install -r "
                          f"{app}/requirements.txt")
        frames = lines_after(host, "install the app's packages there", 2)
        assert frames[0] == "Traceback (most recent call last):"
        assert frames[1].startswith(f'  File "{app}/function_app.py", line 2')
        host.wait_for_log("serving no functions until the app indexes")
        assert host.get("/api/hello").status == 503  # as the Functions host in error state
        assert "For detailed output" not in host.log_text()  # --verbose is on

        # 2. Fixed, HTTP only: served, and no storage is started or touched.
        (app / "function_app.py").write_text(HTTP_APP)
        host.wait_for_log("Reloaded in ")
        assert host.get("/api/hello").text == "hello, three times"
        host.wait_for_log("Reload timings: new workers indexed in ")
        assert "Started Azurite" not in host.log_text()
        assert "Storage request" not in host.log_text()
        assert not (app / ".azurite").exists()

        # 3. The first durable function: Azurite (found on PATH) starts with the reload.
        (app / "function_app.py").write_text(HTTP_APP + DURABLE_ADDITION)
        host.wait_for_log(f"from {on_path} (PATH) with data in {app}/.azurite. It keeps "
                          "running when funclocal exits", timeout=60)
        wait_count(host, "Reloaded in ", 2)
        response = host.post("/api/start")
        assert response.status == 202, host.log_text()
        status = follow(host, response.json()["statusQueryGetUri"])
        assert status["output"] == "seven"
        assert re.search(r"Storage request table:POST \$batch: 202 in [0-9.]+ ms",
                         host.log_text())
        assert re.search(r"Acquired partition 0 \(\S+-control-00\) as ", host.log_text())
    finally:
        stop_with_ctrl_c(host)


# -- where Azurite comes from ----------------------------------------------------------

SMALL_DURABLE_APP = HTTP_APP + DURABLE_ADDITION


def test_azurite_from_funclocals_checkout(tmp_path: Path, venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, SMALL_DURABLE_APP,
                   settings={"AzureWebJobsStorage": emulator_at(free_ports(3))},
                   host={"extensions": {"durableTask": {"hubName": unique_hub_name("co")}}})
    host = start_host(app)  # funclocal run from this checkout, as `make run` does
    try:
        host.wait_for_log(f"from {REPO}/node_modules/.bin (funclocal's checkout) with data "
                          f"in {app}/.azurite")
    finally:
        stop_with_ctrl_c(host)


def test_without_azurite_the_error_says_what_works_from_the_app_folder(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, SMALL_DURABLE_APP,
                   settings={"AzureWebJobsStorage": emulator_at(free_ports(3))})
    host = start_host(app, program=[str(funclocal_bin / "funclocal")], wait=False,
                      base_env=user_env(funclocal_bin, XDG_CACHE_HOME=str(tmp_path / "c")))
    assert host.process.wait(60) == 1
    host.stop()
    errors = [line for line in host.output if "Error: " in line]
    assert len(errors) == 1, host.log_text()
    assert "Azurite is not installed: run `funclocal azurite install`" in errors[0]
    assert "npm ci" not in host.log_text()


def test_azurite_installed_into_the_user_cache(tmp_path: Path, funclocal_bin: Path,
                                               venv: Path) -> None:
    cache = azurite_cache()
    env = user_env(funclocal_bin, XDG_CACHE_HOME=str(cache))
    with cache_lock("azurite-install"):  # test sessions side by side share the cache
        installed = subprocess.run([str(funclocal_bin / "funclocal"), "azurite", "install"],
                                   env=env, capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    where = cache / "funclocal" / "azurite-3.37.0" / "node_modules" / ".bin"
    assert f"Installed Azurite 3.37.0 in {where}." in installed.stdout

    app = make_app(tmp_path / "app", venv, SMALL_DURABLE_APP,
                   settings={"AzureWebJobsStorage": emulator_at(free_ports(3))},
                   host={"extensions": {"durableTask": {"hubName": unique_hub_name("uc")}}})
    host = start_host(app, program=[str(funclocal_bin / "funclocal")], base_env=env)
    try:
        host.wait_for_log(f"from {where} (the user cache) with data in {app}/.azurite")
        status = follow(host, host.post("/api/start").json()["statusQueryGetUri"])
        assert status["output"] == "seven"
    finally:
        stop_with_ctrl_c(host)


# -- debugging -------------------------------------------------------------------------

def status_pids(host: HostProcess) -> list[int]:
    return list(host.get("/admin/host/status").json()["workerPids"])


def test_a_debugger_attaches_to_the_same_port_across_a_reload(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, HTTP_APP, settings={})
    debug_port = free_port()
    host = start_host(app, program=[str(funclocal_bin / "funclocal")], reload=True,
                      args=["--debug", str(debug_port)], base_env=user_env(funclocal_bin))
    try:
        first = status_pids(host)
        host.wait_for_log(f"Debugger: attach to localhost:{debug_port} (worker process "
                          f"{first[0]}).")
        client = DapClient(debug_port)
        try:
            assert client.attach() == first[0]
            assert host.get("/api/hello").text == "hello, three times"
        finally:
            client.close()

        (app / "function_app.py").write_text(HTTP_APP.replace("hello, ", "hi, "))
        host.wait_for_log("Reloaded in ")
        second = status_pids(host)
        assert second != first
        host.wait_for_log(f"(worker process {second[0]}).")
        client = DapClient(debug_port)
        try:
            assert client.attach() == second[0]
            assert host.get("/api/hello").text == "hi, three times"
        finally:
            client.close()
    finally:
        stop_with_ctrl_c(host)


def test_debug_wait_holds_the_app_until_a_debugger_attaches(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, HTTP_APP, settings={})
    program = [str(funclocal_bin / "funclocal")]
    debug_port = free_port()
    host = start_host(app, program=program, wait=False, base_env=user_env(funclocal_bin),
                      args=["--debug", str(debug_port), "--debug-wait"])
    try:
        host.wait_for_log(f"Debugger: attach to localhost:{debug_port} (worker process ")
        assert host.get("/admin/host/status").json()["state"] == "Starting"
        client = DapClient(debug_port)
        try:
            client.attach()
            wait_until_running(host)
            assert host.get("/api/hello").text == "hello, three times"
        finally:
            client.close()
    finally:
        stop_with_ctrl_c(host)

    # Ctrl-C while a worker waits for its debugger stops everything at once.
    host = start_host(app, program=program, wait=False, base_env=user_env(funclocal_bin),
                      args=["--debug", str(free_port()), "--debug-wait"])
    host.wait_for_log("Debugger: attach to localhost:")
    stop_with_ctrl_c(host)


# -- start-up refusals: one line each, at once ------------------------------------------

def run_funclocal(funclocal_bin: Path, cwd: Path, *args: str,
                  timeout: float = 60) -> tuple[int, str]:
    result = subprocess.run([str(funclocal_bin / "funclocal"), *args], cwd=cwd,
                            env=user_env(funclocal_bin), capture_output=True, text=True,
                            timeout=timeout)
    return result.returncode, result.stdout + result.stderr


def test_no_arguments_prints_the_help(tmp_path: Path, funclocal_bin: Path) -> None:
    code, output = run_funclocal(funclocal_bin, tmp_path)
    assert code == 0
    assert output.startswith("usage: funclocal")
    for command in ("start", "functions", "azurite"):
        assert f"    {command}" in output


def test_a_busy_port_names_the_port_and_how_to_change_it(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, HTTP_APP, settings={})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        code, output = run_funclocal(funclocal_bin, app, "start", "--port", str(port))
    assert code == 1
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert errors == [errors[0]]
    assert errors[0].endswith(
        f"Error: Port {port} (HTTP) is unavailable: Address already in use. Stop what uses "
        "it, or choose another port with --port N (-p N), Host.LocalHttpPort in "
        "local.settings.json, or `make run PORT=N` in funclocal's checkout.")
    assert time.monotonic() - started < 10
    assert "Traceback" not in output


class _NotStorage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"a web app")

    def log_message(self, *args: Any) -> None:
        pass


def test_something_else_on_the_storage_port_is_one_line(
        tmp_path: Path, funclocal_bin: Path, venv: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _NotStorage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        blob = server.server_address[1]
        queue, table = free_ports(2)
        app = make_app(tmp_path / "app", venv, SMALL_DURABLE_APP,
                       settings={"AzureWebJobsStorage": emulator_at([blob, queue, table])})
        started = time.monotonic()
        code, output = run_funclocal(funclocal_bin, app, "start", "--port",
                                     str(free_port()), "--no-reload")
    finally:
        server.shutdown()
    assert code == 1
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert len(errors) == 1, output
    assert errors[0].endswith(
        f"Error: Port {blob} on 127.0.0.1, where AzureWebJobsStorage expects the blob "
        f"service of the storage emulator, is held by an HTTP server (BaseHTTP/0.6 Python/"
        f"{sys.version.split()[0]}) that is not Azure Storage: stop it, or give the "
        "emulator other ports in the connection string.")
    assert time.monotonic() - started < 20


def test_another_worker_runtime_is_refused(tmp_path: Path, funclocal_bin: Path,
                                           venv: Path) -> None:
    app = make_app(tmp_path / "app", venv, HTTP_APP,
                   settings={"FUNCTIONS_WORKER_RUNTIME": "node"})
    code, output = run_funclocal(funclocal_bin, app, "start", "--port", str(free_port()))
    assert code == 1
    assert (f"Error: {app}/local.settings.json, key 'Values.FUNCTIONS_WORKER_RUNTIME': "
            'FUNCTIONS_WORKER_RUNTIME is "node", but funclocal runs Python function apps '
            'only: set it to "python"') in output


def test_an_app_python_without_the_sdk_says_which_package(
        tmp_path: Path, funclocal_bin: Path) -> None:
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    app = make_app(tmp_path / "app", bare, HTTP_APP, settings={})
    code, output = run_funclocal(funclocal_bin, app, "start", "--port", str(free_port()),
                                 "--no-reload")
    assert code == 1
    python = f"{app}/.venv/bin/python"
    assert (f"The app's Python ({python}) has no 'azure-functions' package, which every "
            "Python function app needs: add azure-functions to requirements.txt and run "
            f"{python} -m pip install -r requirements.txt") in output
