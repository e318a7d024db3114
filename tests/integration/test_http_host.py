"""The host as a user runs it, serving HTTP triggers from real worker processes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from support.host import APPS, HostProcess, child_pids, pid_alive, request, start_host

APP = APPS / "http_basic"


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    process = start_host(APP, env={"OVERRIDDEN": "from the environment"})
    yield process
    process.stop()


def test_echo_builds_the_request_as_the_worker_does(host: HostProcess) -> None:
    response = host.post("/api/echo/a/b%20c?x=1&x=2&empty=", "payload",
                         headers={"X-Custom-Header": "Value", "Content-Type": "text/plain"})
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["method"] == "POST"
    assert body["url"] == f"{host.base}/api/echo/a/b%20c?x=1&x=2&empty="
    assert body["headers"]["x-custom-header"] == "Value"
    assert body["params"] == {"x": "1,2"}
    assert body["route_params"] == {"rest": "a/b c"}
    assert body["body_text"] == "payload"


@pytest.mark.parametrize(("path", "status", "expected"), [
    ("/api/products/shoes/12", 200, {"category": "shoes", "id": "12"}),
    ("/api/products/shoes", 200, {"category": "shoes"}),
    ("/api/PRODUCTS/Shoes", 200, {"category": "Shoes"}),
    ("/api/products/123", 404, None),
    ("/api/products/shoes/abc", 404, None),
    ("/api/items/5", 200, "item 5"),
    ("/api/items/0", 404, None),
    ("/api/items/99999999999", 404, None),
    ("/api/greet", 200, "Hi stranger"),
    ("/api/greet/Ann", 200, "Hi Ann"),
    ("/api/nothing-here", 404, None),
    ("/nope", 404, None),
])
def test_route_templates(host: HostProcess, path: str, status: int, expected: object) -> None:
    response = host.get(path)
    assert response.status == status
    if isinstance(expected, dict):
        assert response.json() == expected
    elif isinstance(expected, str):
        assert response.text == expected


def test_methods_filter_gives_404_as_the_host_does(host: HostProcess) -> None:
    assert host.post("/api/products/shoes").status == 404
    assert request("DELETE", host.url("/api/from-blueprint")).status == 404
    assert host.get("/api/from-blueprint").text == "blueprint"


def test_binary_body_round_trip(host: HostProcess) -> None:
    data = bytes(range(256)) * 4
    response = host.post("/api/binary", data,
                         headers={"Content-Type": "application/octet-stream"})
    assert response.status == 200
    assert response.body == bytes(reversed(data))
    assert response.headers["x-length"] == str(len(data))
    assert response.headers["content-type"].startswith("application/octet-stream")


def test_several_megabyte_body(host: HostProcess) -> None:
    data = os.urandom(5 * 1024 * 1024)
    response = host.post("/api/binary", data,
                         headers={"Content-Type": "application/octet-stream"})
    assert response.status == 200
    assert response.body == bytes(reversed(data))


def test_status_and_headers_from_the_function(host: HostProcess) -> None:
    response = host.get("/api/status/201")
    assert response.status == 201
    assert response.headers["x-custom"] == "yes"
    assert response.text == "custom"


def test_str_return_value_is_200_text(host: HostProcess) -> None:
    response = host.get("/api/greet/Bo")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_user_exception_is_500_and_logged_with_traceback(host: HostProcess) -> None:
    response = host.get("/api/boom")
    assert response.status == 500
    assert b"boom function" not in response.body
    host.wait_for_log("ValueError: the boom function always fails")
    assert "function_app.py" in host.log_text()
    assert "Executed 'Functions.boom' (Failed" in host.log_text()


def test_context_parameter_and_async_function(host: HostProcess) -> None:
    body = host.get("/api/ctx").json()
    assert body["function"] == "ctx"
    assert len(body["invocation_id"]) == 36
    host.wait_for_log(f"Executed 'Functions.ctx' (Succeeded, Id={body['invocation_id']}")


def test_local_settings_values_reach_the_worker(host: HostProcess) -> None:
    body = host.get("/api/env").json()
    assert body["FROM_SETTINGS"] == "from local settings"
    assert body["OVERRIDDEN"] == "from the environment"
    assert body["AZURE_FUNCTIONS_ENVIRONMENT"] == "Development"
    host.wait_for_log("Skipping 'OVERRIDDEN' from local settings")


def test_user_prints_go_to_the_host_log_prefixed(host: HostProcess) -> None:
    assert host.get("/api/print").text == "ok"
    host.wait_for_log("] printed by user code")
    line = next(line for line in host.output if "printed by user code" in line)
    assert "[worker " in line


def test_malformed_query_string_is_served(host: HostProcess) -> None:
    response = host.get("/api/echo/x?%zz=%&&=b&a=%E2%82")
    assert response.status == 200
    assert isinstance(response.json()["params"], dict)


def test_auth_not_enforced_by_default(host: HostProcess) -> None:
    assert host.get("/api/secret").status == 200
    assert host.get("/api/ops/admin-level").status == 200


def test_admin_endpoints(host: HostProcess) -> None:
    status = host.get("/admin/host/status").json()
    assert status["state"] == "Running"
    assert status["workerPids"]
    functions = {f["name"]: f for f in host.get("/admin/functions").json()}
    assert functions["products"]["route"] == "products/{category:alpha}/{id:int?}"
    assert functions["products"]["methods"] == ["GET"]
    assert functions["from_blueprint"]["trigger"] == "httpTrigger"


def test_function_timeout_gives_500_and_host_keeps_serving(host: HostProcess) -> None:
    started = time.monotonic()
    response = host.get("/api/slow")
    assert response.status == 500
    assert "Timeout value of 00:00:03 was exceeded by function: Functions.slow" in response.text
    assert time.monotonic() - started < 30
    assert _eventually_ok(host, "/api/greet")


def test_worker_exit_fails_the_invocation_and_is_replaced(host: HostProcess) -> None:
    old_pid = int(host.get("/api/pid").text)
    response = host.get("/api/exit")
    assert response.status == 500
    assert "exited with code 3" in response.text
    assert _eventually_ok(host, "/api/pid")
    new_pid = int(host.get("/api/pid").text)
    assert new_pid != old_pid
    assert not pid_alive(old_pid)


def _eventually_ok(host: HostProcess, path: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.get(path).status == 200:
            return True
        time.sleep(0.05)
    return False


def test_auth_enforced_with_enable_auth() -> None:
    host = start_host(APP, args=["--enable-auth"])
    try:
        assert host.get("/api/secret").status == 401
        assert host.get("/api/secret").body == b""
        assert host.get("/api/secret?code=wrong").status == 401
        assert host.get("/api/secret?code=test-secret-key").text == "the secret body"
        assert host.get("/api/secret", headers={"x-functions-key": "test-host-key"}).status == 200
        assert host.get("/api/secret?code=test-master-key").status == 200
        assert host.get("/api/ops/admin-level?code=test-host-key").status == 401
        assert host.get("/api/ops/admin-level?code=test-master-key").text == "admin body"
        assert host.get("/api/greet").status == 200  # anonymous always passes
        assert host.get("/admin/host/status").status == 401
        status = host.get("/admin/host/status",
                          headers={"x-functions-key": "test-master-key"})
        assert status.status == 200
    finally:
        host.stop()


def test_generated_keys_are_printed_when_settings_have_none(tmp_path: object) -> None:
    host = start_host(APPS / "unsupported_binding", args=["--enable-auth"])
    try:
        host.wait_for_log("Master key: ")
        line = next(line for line in host.output if "Master key: " in line)
        key = line.split("Master key: ", 1)[1].strip()
        assert host.get("/admin/functions").status == 401
        assert host.get("/admin/functions", headers={"x-functions-key": key}).status == 200
    finally:
        host.stop()


def test_clean_shutdown_leaves_no_children() -> None:
    host = start_host(APP)
    children = child_pids(host.process.pid)
    assert children  # the worker
    assert host.stop() == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in children):
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in children)
    assert "Host stopped." in host.log_text()


def test_cors_headers(tmp_path: object) -> None:
    host = start_host(APP, args=["--cors", "http://example.test"])
    try:
        allowed = host.get("/api/greet", headers={"Origin": "http://example.test"})
        assert allowed.headers["access-control-allow-origin"] == "http://example.test"
        other = host.get("/api/greet", headers={"Origin": "http://other.test"})
        assert "access-control-allow-origin" not in other.headers
        preflight = request("OPTIONS", host.url("/api/greet"), headers={
            "Origin": "http://example.test", "Access-Control-Request-Method": "POST"})
        assert preflight.status == 204
        assert preflight.headers["access-control-allow-methods"] == "POST"
    finally:
        host.stop()


def test_several_workers(tmp_path: object) -> None:
    host = start_host(APP, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "2"})
    try:
        assert len(host.get("/admin/host/status").json()["workerPids"]) == 2
        pids = {host.get("/api/pid").text for _ in range(10)}
        assert len(pids) == 2
    finally:
        host.stop()


def test_json_index_of_functions_command() -> None:
    from support.host import run_cli

    result = run_cli("functions", "--script-root", str(APP), "--json")
    assert result.returncode == 0, result.stderr
    index = {f["name"]: f for f in json.loads(result.stdout)}
    assert index["greet"]["route"] == "greet/{name=stranger}"
    assert index["echo"]["methods"] == ["DELETE", "GET", "POST", "PUT"]
