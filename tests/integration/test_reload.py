"""Hot reload: the host runs on a temporary copy of an app while the tests edit its files."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.durable import api, start, wait_done, wait_status
from support.host import APPS, HostProcess, Response, child_pids, pid_alive, start_host

from runtime.storage.connection import StorageEndpoints

JSON = {"Content-Type": "application/json"}


# -- helpers ---------------------------------------------------------------------------

@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(APPS / "reload_http", root)
    return root


@pytest.fixture
def host(app: Path) -> Iterator[HostProcess]:
    process = start_host(app, reload=True)
    yield process
    process.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def set_version(app: Path, version: str) -> None:
    source = app / "function_app.py"
    text = source.read_text()
    start_at = text.index('VERSION = "') + len('VERSION = "')
    end = text.index('"', start_at)
    source.write_text(text[:start_at] + version + text[end:])


def wait_until(condition: Callable[[], bool], host: HostProcess, what: str,
               timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} within {timeout}s; host log:\n{host.log_text()[-6000:]}")


def wait_served(host: HostProcess, path: str, text: str, timeout: float = 30.0) -> None:
    def served() -> bool:
        response = host.get(path)
        return response.status == 200 and response.text == text
    wait_until(served, host, f"{path} did not answer {text!r}", timeout)


def wait_status_code(host: HostProcess, path: str, status: int) -> None:
    wait_until(lambda: host.get(path).status == status, host,
               f"{path} did not answer {status}")


def count(host: HostProcess, fragment: str) -> int:
    return sum(fragment in line for line in list(host.output))


def wait_count(host: HostProcess, fragment: str, at_least: int, timeout: float = 30.0) -> None:
    wait_until(lambda: count(host, fragment) >= at_least, host,
               f"{at_least} x {fragment!r} not logged", timeout)


def workers(host: HostProcess) -> list[int]:
    return [pid for pid in child_pids(host.process.pid) if pid_alive(pid)]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- code changes ----------------------------------------------------------------------

def test_changed_response_is_served_after_save(app: Path, host: HostProcess) -> None:
    assert host.get("/api/version").text == "v1"
    old_pid = host.get("/api/pid").text
    set_version(app, "v2")
    wait_served(host, "/api/version", "v2")
    assert host.get("/api/pid").text != old_pid
    host.wait_for_log("Code change detected (function_app.py); reloading...")
    host.wait_for_log("Reloaded in ")
    # Only a module constant changed, not the code of any function: no banner lines.
    assert "Functions changed:" not in host.log_text()
    wait_until(lambda: not pid_alive(int(old_pid)), host, "the old worker did not stop")


def test_a_change_in_an_imported_module_is_served(app: Path, host: HostProcess) -> None:
    assert host.get("/api/hello").text == "Hello world"
    edit(app / "lib" / "greeting.py", "Hello {name}", "Bonjour {name}")
    wait_served(host, "/api/hello", "Bonjour world")


def test_functions_are_added_removed_and_moved(app: Path, host: HostProcess) -> None:
    source = app / "function_app.py"
    source.write_text(source.read_text() + (
        '\n\n@app.route(route="added")\n'
        'def added(req: func.HttpRequest) -> str:\n'
        '    return "a new function"\n'))
    wait_served(host, "/api/added", "a new function")
    host.wait_for_log(f"\tadded: [GET,POST] http://localhost:{host.port}/api/added")
    assert "\thello:" not in host.log_text().split("Functions changed:")[1]

    edit(source, '@app.route(route="pid")\ndef pid(req: func.HttpRequest) -> str:\n'
         '    return str(os.getpid())\n', "")
    wait_status_code(host, "/api/pid", 404)
    host.wait_for_log("\tpid: removed")

    edit(source, '@app.route(route="hello")', '@app.route(route="greetings/hello")')
    wait_served(host, "/api/greetings/hello", "Hello world")
    assert host.get("/api/hello").status == 404
    host.wait_for_log(f"\thello: [GET,POST] http://localhost:{host.port}/api/greetings/hello")
    functions = {f["name"]: f for f in host.get("/admin/functions").json()}
    assert functions["hello"]["route"] == "greetings/hello"
    assert "pid" not in functions and "added" in functions


@pytest.mark.parametrize("breakage", ["syntax", "import", "no_app", "bad_binding", "deleted"])
def test_a_broken_save_keeps_the_previous_version(app: Path, host: HostProcess,
                                                  breakage: str) -> None:
    source = app / "function_app.py"
    good = source.read_text()
    expected = {
        "syntax": ["SyntaxError", 'File "', "function_app.py", "line 14"],
        "import": ["ModuleNotFoundError: No module named 'not_a_module'", "Traceback",
                   "function_app.py"],
        "no_app": ["Could not find top level function app instances in function_app.py."],
        "bad_binding": ["Can not parse", "NOT A METHOD", "function_app.py", "Traceback"],
        "deleted": ["function_app.py was not found"],
    }[breakage]
    if breakage == "syntax":
        source.write_text(good.replace('VERSION = "v1"', 'VERSION = "v1"\n\ndef broken(:'))
    elif breakage == "import":
        source.write_text("import not_a_module\n" + good)
    elif breakage == "no_app":
        source.write_text(good + "\napp = None\n")
    elif breakage == "bad_binding":
        source.write_text(good.replace('@app.route(route="hello")',
                                       '@app.route(route="hello", methods=["NOT A METHOD"])'))
    else:
        source.unlink()
    wait_count(host, "Reload failed; the previous version keeps serving.", 1)
    for fragment in expected:
        assert fragment in host.log_text(), fragment
    assert host.get("/api/version").text == "v1"
    assert host.get("/api/hello").text == "Hello world"

    source.write_text(good.replace('VERSION = "v1"', 'VERSION = "fixed"'))
    wait_served(host, "/api/version", "fixed")
    assert len(workers(host)) == 1 or _settles_to_one_worker(host)


def _settles_to_one_worker(host: HostProcess) -> bool:
    wait_until(lambda: len(workers(host)) == 1, host, "the replaced workers did not stop")
    return True


def test_the_newest_save_wins_over_one_still_indexing(app: Path, host: HostProcess) -> None:
    source = app / "function_app.py"
    good = source.read_text()
    source.write_text('import time\nprint("indexing the slow version", flush=True)\n'
                      'time.sleep(30)\n' + good.replace('"v1"', '"slow"'))
    host.wait_for_log("] indexing the slow version")
    source.write_text(good.replace('"v1"', '"fast"'))
    wait_served(host, "/api/version", "fast", timeout=20)
    host.wait_for_log("Newer changes arrived while indexing; reloading them instead.")
    assert count(host, "Reloaded in ") == 1
    wait_until(lambda: len(workers(host)) == 1, host, "the superseded worker was not stopped")


def test_hundreds_of_files_at_once_are_one_reload(app: Path, host: HostProcess) -> None:
    for n in range(300):
        (app / "lib" / f"generated_{n}.py").write_text(f"VALUE = {n}\n")
    wait_count(host, "Reloaded in ", 1)
    host.wait_for_log("and 297 more); reloading...")
    # A later save is a second reload: had the 300 files been split, there would be more.
    set_version(app, "v2")
    wait_served(host, "/api/version", "v2")
    wait_count(host, "Reloaded in ", 2)
    assert count(host, "change detected") == 2


def test_a_half_written_save_is_served_once_complete(app: Path, host: HostProcess) -> None:
    source = app / "function_app.py"
    text = source.read_text().replace('"v1"', '"complete"')
    middle = text.index("def hello")
    with source.open("w") as stream:
        stream.write(text[:middle] + "def hel")
        stream.flush()
        time.sleep(0.02)  # an editor writing in two steps, well within the debounce
        stream.write(text[middle + len("def hel"):])
    wait_served(host, "/api/version", "complete")
    assert host.get("/api/hello").text == "Hello world"


def test_requests_during_20_reloads_all_succeed(app: Path, host: HostProcess) -> None:
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                response = host.post("/api/version", b"x" * 2048, timeout=30)
                seen.append((response.status, response.text))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(2, 22):
            set_version(app, f"v{n}")
            wait_served(host, "/api/version", f"v{n}")
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(seen) > 40
    assert [s for s in seen if s[0] != 200] == []
    assert count(host, "Reloaded in ") == 20


def test_50_reloads_leak_no_workers_or_file_descriptors(app: Path, host: HostProcess) -> None:
    set_version(app, "warm-up")
    wait_served(host, "/api/version", "warm-up")
    wait_until(lambda: len(workers(host)) == 1, host, "the first replaced worker did not stop")
    baseline = open_fds(host.process.pid)
    for n in range(50):
        set_version(app, f"r{n}")
        wait_served(host, "/api/version", f"r{n}")
    wait_until(lambda: len(workers(host)) == 1, host, "replaced workers are still running")
    wait_until(lambda: open_fds(host.process.pid) <= baseline + 2, host,
               f"file descriptors grew from {baseline} to {open_fds(host.process.pid)}")
    assert count(host, "Reloaded in ") == 51


# -- in-flight invocations -------------------------------------------------------------

def _in_background(call: Callable[[], Response]) -> tuple[threading.Thread, list[Response]]:
    results: list[Response] = []
    thread = threading.Thread(target=lambda: results.append(call()))
    thread.start()
    return thread, results


def test_a_running_request_finishes_on_the_old_workers(app: Path) -> None:
    host = start_host(app, reload=True, args=["--reload-grace", "30"])
    try:
        thread, results = _in_background(lambda: host.get("/api/sleep/2"))
        wait_count(host, "Executing 'Functions.sleep'", 1)
        set_version(app, "v2")
        wait_served(host, "/api/version", "v2")
        thread.join(30)
        assert (results[0].status, results[0].text) == (200, "slept on v1")
    finally:
        host.stop()


def test_a_worker_that_will_not_stop_is_killed_after_the_grace(app: Path) -> None:
    host = start_host(app, reload=True, args=["--reload-grace", "1"])
    try:
        old_pid = int(host.get("/api/pid").text)
        thread, results = _in_background(lambda: host.get("/api/block"))
        wait_count(host, "Executing 'Functions.block'", 1)
        set_version(app, "v2")
        wait_served(host, "/api/version", "v2")
        wait_until(lambda: not pid_alive(old_pid), host, "the blocked worker was not killed")
        thread.join(30)
        assert results[0].status == 500
        host.wait_for_log(f"Worker process {old_pid} still has ")
        host.wait_for_log(f"Worker process {old_pid} did not exit; killing it.")
    finally:
        host.stop()


# -- configuration ---------------------------------------------------------------------

def test_settings_and_host_json_changes_apply_on_the_same_port(app: Path,
                                                               host: HostProcess) -> None:
    assert host.get("/api/setting").text == "one"
    edit(app / "local.settings.json", '"RELOAD_SETTING": "one"', '"RELOAD_SETTING": "two"')
    wait_served(host, "/api/setting", "two")
    host.wait_for_log("Configuration change detected (local.settings.json); reloading...")

    (app / "host.json").write_text(json.dumps({
        "version": "2.0", "extensions": {"http": {"routePrefix": "v2"}}}))
    wait_served(host, "/v2/version", "v1")
    assert host.get("/api/version").status == 404
    host.wait_for_log(f"\tversion: [GET,POST] http://localhost:{host.port}/v2/version")
    assert host.process.poll() is None


def test_a_broken_host_json_keeps_the_previous_config(app: Path, host: HostProcess) -> None:
    (app / "host.json").write_text('{"version": "2.0",\n "functionTimeout": 5}')
    wait_count(host, "Reload failed; the previous version keeps serving.", 1)
    assert "host.json, line 2" in host.log_text()
    assert host.get("/api/version").text == "v1"
    # A later code change still applies the config once it is valid.
    (app / "host.json").write_text(json.dumps({
        "version": "2.0", "extensions": {"http": {"routePrefix": "fixed"}}}))
    wait_served(host, "/fixed/version", "v1")


def test_watch_files_from_host_json_trigger_a_reload(app: Path) -> None:
    (app / "data.txt").write_text("first")
    (app / "host.json").write_text(json.dumps({"version": "2.0", "watchFiles": ["data.txt"]}))
    source = app / "function_app.py"
    source.write_text(source.read_text() + (
        '\n\n@app.route(route="data")\n'
        'def data(req: func.HttpRequest) -> str:\n'
        '    return DATA\n\n\n'
        'DATA = open("data.txt").read()\n'))
    host = start_host(app, reload=True)
    try:
        assert host.get("/api/data").text == "first"
        (app / "data.txt").write_text("second")
        wait_served(host, "/api/data", "second")
    finally:
        host.stop()


def test_no_reload_turns_watching_off(app: Path) -> None:
    host = start_host(app)
    try:
        host.wait_for_log("Host started on")
        assert "Watching" not in host.log_text()
    finally:
        host.stop()


# -- durable functions across reloads --------------------------------------------------

@pytest.fixture
def durable_app(tmp_path: Path) -> Path:
    root = tmp_path / "durable"
    shutil.copytree(APPS / "reload_durable", root)
    return root


def _durable_host(app: Path, azurite: StorageEndpoints, hub: str,
                  *args: str) -> HostProcess:
    return start_host(app, reload=True, args=["--no-azurite", *args], env={
        "AzureWebJobsStorage": azurite.connection_string, "TEST_HUB_NAME": hub})


def test_a_waiting_orchestration_resumes_on_the_new_code(
        durable_app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = _durable_host(durable_app, azurite, task_hub_name)
    try:
        instance_id = start(host, "approval")
        wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
        edit(durable_app / "function_app.py", 'f"Hello {name}!"', 'f"Bonjour {name}!"')
        wait_count(host, "Reloaded in ", 1)
        raised = api(host, "POST", f"/instances/{instance_id}/raiseEvent/Approval",
                     json.dumps("Ann"), JSON)
        assert raised.status == 202
        status = wait_done(host, instance_id)
        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == ["Hello before!", "Bonjour Ann!"]
        assert "replay check" not in host.log_text()  # only an activity changed
    finally:
        host.stop()


def test_an_orchestrator_change_names_the_instances_it_breaks_and_they_fail(
        durable_app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = _durable_host(durable_app, azurite, task_hub_name)
    try:
        instance_id = start(host, "approval")
        wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
        edit(durable_app / "function_app.py", 'context.call_activity("greet", "before")',
             'context.call_activity("slow_step", "before")')
        host.wait_for_log("Orchestrator 'approval' changed; the replay check of its 1 "
                          "running instance on the new code: 1 would fail when they next "
                          f"run: {instance_id}", timeout=30)
        host.wait_for_log(f"  {instance_id}: Non-Deterministic workflow detected: ")
        api(host, "POST", f"/instances/{instance_id}/raiseEvent/Approval", json.dumps("Bo"),
            JSON)
        status = wait_done(host, instance_id)
        assert status["runtimeStatus"] == "Failed"
        assert "Non-Deterministic workflow detected" in status["output"]
    finally:
        host.stop()


def test_an_interrupted_activity_is_retried_on_the_new_code(
        durable_app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = _durable_host(durable_app, azurite, task_hub_name, "--reload-grace", "1")
    try:
        instance_id = start(host, "slow_chain")
        wait_count(host, "Executing 'Functions.slow_step'", 1)
        source = durable_app / "function_app.py"
        source.write_text(source.read_text().replace("SLOW_SECONDS = 3600", "SLOW_SECONDS = 0")
                          .replace('VERSION = "v1"', 'VERSION = "v2"'))
        status = wait_done(host, instance_id, timeout=90)
        assert (status["runtimeStatus"], status["output"]) == ("Completed",
                                                               "slow step on v2")
    finally:
        host.stop()
