"""The HTTP front door (runtime/http/server.py) on a loopback port: start-up answer, admin
endpoints, keys, CORS, the route prefix, and HTTP functions through an invoker.

The invoker is a small class written here (the worker pool is covered by integration
tests and tests/unit/test_pool.py): it records what it was asked and answers with an
HttpResponseData payload or raises one of the worker errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from runtime.bindings import DurableBinding
from runtime.clock import VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable.client import DurableClient
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.errors import (
    FunctionInvocationError,
    HostError,
    InvocationTimeout,
    WorkerDied,
    WorkerError,
)
from runtime.functions import FunctionIndex
from runtime.http.auth import KeyStore
from runtime.http.durable_api import DurableApi
from runtime.http.routes import RouteTable
from runtime.http.server import AppView, HttpServer
from runtime.http.triggers import HTTP_REASON
from runtime.worker.protocol import HttpRequestData, HttpResponseData

KEYS = KeyStore("the-master-key", "the-host-key", {"secret": "secret-key", "hello": "hi-key"},
               {"durabletask_extension": "the-durable-key"})
STATUS = {"state": "Running", "version": "test", "workerPids": [1, 2]}
WEBHOOKS = "/runtime/webhooks/durabletask"


def http_function(name: str, route: str, methods: list[str] | None = None,
                  auth: str = "ANONYMOUS", *extra: dict[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "httpTrigger", "name": "req", "direction": "in",
                               "route": route, "authLevel": auth}
    if methods is not None:
        trigger["methods"] = methods
    return {"name": name, "bindings": [trigger, {"type": "http", "name": "$return",
                                                 "direction": "out"}, *extra]}


FUNCTIONS = [
    http_function("hello", "hello", ["GET"]),
    http_function("echo", "echo/{id}", ["GET", "POST"]),
    http_function("items_get", "items", ["GET"]),
    http_function("items_post", "items", ["POST"]),
    http_function("secret", "secret", None, "FUNCTION"),
    http_function("adminonly", "ops/admin-level", None, "ADMIN"),
    http_function("starter", "start", None, "ANONYMOUS",
                  {"type": "durableClient", "name": "client", "direction": "in"}),
    {"name": "orch", "bindings": [{"type": "orchestrationTrigger", "name": "context"}]},
]


def ok(body: bytes = b"hi", status: int = 200,
       headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/plain"),)
       ) -> dict[str, Any]:
    return HttpResponseData(status, headers, body).to_json()


@dataclass
class Invoker:
    """Answers every invocation with `answer` (a payload, or an exception to raise)."""

    answer: dict[str, Any] | Exception = field(default_factory=ok)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = "(null)") -> dict[str, Any]:
        self.calls.append({"function": function, "inputs": inputs,
                           "invocation_id": invocation_id, "timeout": timeout,
                           "reason": reason})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def view_of(descriptions: list[dict[str, Any]], invoker: Invoker) -> AppView:
    index = FunctionIndex.build(descriptions)
    table, errors = RouteTable.build((f.name, f.route, f.methods)
                                     for f in index.functions if f.is_http)
    assert errors == []
    return AppView(index, table, invoker)


@dataclass
class Running:
    server: HttpServer
    session: aiohttp.ClientSession
    invoker: Invoker

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, bytes]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            return response.status, response.headers, await response.read()


@asynccontextmanager
async def running(*, view: bool = True, keys: KeyStore | None = None, prefix: str = "api",
                  cors: tuple[str, ...] = (), credentials: bool = False,
                  timeout: float | None = 12.5,
                  answer: dict[str, Any] | Exception | None = None,
                  status: Mapping[str, Any] = STATUS) -> AsyncIterator[Running]:
    server = HttpServer(route_prefix=prefix, keys=keys, cors_origins=cors,
                        cors_credentials=credentials, function_timeout=timeout,
                        status=lambda: status)
    invoker = Invoker(answer if answer is not None else ok())
    if view:
        server.set_app(view_of(FUNCTIONS, invoker))
    port = await server.start("127.0.0.1", 0)
    assert port > 0 and server.port == port
    try:
        async with aiohttp.ClientSession() as session:
            yield Running(server, session, invoker)
    finally:
        await server.stop()


# --- start-up and admin ---------------------------------------------------------------


async def test_without_an_app_functions_answer_503_the_host_is_starting() -> None:
    async with running(view=False) as host:
        status, _, body = await host.request("GET", "/api/hello")
        assert (status, body) == (503, b"The host is starting.")
        status, _, body = await host.request("POST", "/anything/at/all")
        assert (status, body) == (503, b"The host is starting.")
        # the admin endpoints answer meanwhile
        status, _, body = await host.request("GET", "/admin/functions")
        assert (status, json.loads(body)) == (200, [])
        status, _, body = await host.request("GET", "/admin/host/status")
        assert (status, json.loads(body)) == (200, STATUS)


async def test_admin_status_and_functions() -> None:
    async with running() as host:
        status, headers, body = await host.request("GET", "/admin/host/status")
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == STATUS
        status, _, body = await host.request("GET", "/Admin/Functions")
        assert status == 200
        assert json.loads(body) == FunctionIndex.build(FUNCTIONS).describe()
        described = {f["name"]: f for f in json.loads(body)}
        assert described["hello"]["route"] == "hello"
        assert described["hello"]["methods"] == ["GET"]
        assert described["secret"]["authLevel"] == "function"
        assert described["orch"]["trigger"] == "orchestrationTrigger"
        assert "route" not in described["orch"]


async def test_admin_other_methods_and_paths() -> None:
    async with running() as host:
        status, _, _ = await host.request("POST", "/admin/host/status")
        assert status == 405
        status, _, body = await host.request("GET", "/admin/nothing")
        assert (status, body) == (404, b"")
        # /administrator is not under /admin: it is an (unknown) function route
        status, _, _ = await host.request("GET", "/administrator")
        assert status == 404


async def test_stop_closes_the_listener_and_twice_is_fine() -> None:
    server = HttpServer(route_prefix="api", keys=None, status=lambda: STATUS)
    port = await server.start("127.0.0.1", 0)
    await server.stop()
    await server.stop()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/admin/host/status")


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "expected"), [
    (None, 401), ("wrong", 401), ("the-host-key", 401), ("secret-key", 401),
    ("the-master-key", 200)])
async def test_admin_endpoints_need_the_master_key(key: str | None, expected: int) -> None:
    async with running(keys=KEYS) as host:
        headers = {"x-functions-key": key} if key else {}
        status, _, body = await host.request("GET", "/admin/host/status", headers=headers)
        assert status == expected
        if expected == 401:
            assert body == b""
        status, _, _ = await host.request("GET", "/admin/functions" + (
            f"?code={key}" if key else ""))
        assert status == expected


@pytest.mark.parametrize(("key", "expected"), [
    (None, 401), ("wrong", 401), ("secret-key", 401), ("the-host-key", 401),
    (KEYS.durable_key, 200), ("the-master-key", 200)])
async def test_the_durable_webhooks_need_the_system_key(key: str | None,
                                                       expected: int) -> None:
    clock = VirtualClock()
    hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 2, clock=clock)
    api = DurableApi(DurableClient(hub, DurableTaskConfig(), clock=clock),
                     hub_name=hub.hub_name)
    async with running(keys=KEYS) as host:
        host.server.set_durable(api.public)
        query = f"?code={key}" if key else ""
        status, _, body = await host.request("GET", f"{WEBHOOKS}/instances{query}")
        assert status == expected
        if expected == 200:
            assert json.loads(body) == []


async def test_the_durable_webhooks_are_404_without_the_durable_runtime() -> None:
    async with running() as host:
        status, _, body = await host.request("GET", f"{WEBHOOKS}/instances")
        assert (status, body) == (404, b"")


async def test_the_durable_webhooks_ignore_the_route_prefix_and_reach_the_handler() -> None:
    clock = VirtualClock()
    hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 2, clock=clock)
    api = DurableApi(DurableClient(hub, DurableTaskConfig(), clock=clock),
                     hub_name=hub.hub_name)
    async with running(prefix="api") as host:
        host.server.set_durable(api.public)
        status, _, body = await host.request("POST", f"{WEBHOOKS}/orchestrators/Orch/i1")
        assert status == 202
        assert json.loads(body)["statusQueryGetUri"].startswith(
            f"{host.base}{WEBHOOKS}/instances/i1?")
        host.server.set_durable(None)
        status, _, _ = await host.request("GET", f"{WEBHOOKS}/instances/i1")
        assert status == 404


@pytest.mark.parametrize(("path", "key", "expected"), [
    ("/api/hello", None, 200),  # anonymous
    ("/api/secret", None, 401),
    ("/api/secret", "wrong", 401),
    ("/api/secret", "hi-key", 401),  # another function's key
    ("/api/secret", "secret-key", 200),
    ("/api/secret", "the-host-key", 200),
    ("/api/secret", "the-master-key", 200),
    ("/api/ops/admin-level", "the-host-key", 401),
    ("/api/ops/admin-level", "secret-key", 401),
    ("/api/ops/admin-level", "the-master-key", 200),
])
async def test_function_auth_levels(path: str, key: str | None, expected: int) -> None:
    async with running(keys=KEYS) as host:
        headers = {"x-functions-key": key} if key else {}
        status, _, _ = await host.request("GET", path, headers=headers)
        assert status == expected
        status, _, _ = await host.request("GET", path + (f"?code={key}" if key else ""))
        assert status == expected
        assert len(host.invoker.calls) == (2 if expected == 200 else 0)


async def test_without_keys_every_level_passes() -> None:
    async with running(keys=None) as host:
        for path in ("/api/secret", "/api/ops/admin-level", "/admin/host/status"):
            status, _, _ = await host.request("GET", path)
            assert status == 200, path


# --- CORS -----------------------------------------------------------------------------


async def test_a_preflight_from_an_allowed_origin() -> None:
    async with running(cors=("https://app.example",)) as host:
        status, headers, body = await host.request("OPTIONS", "/api/hello", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Thing, Content-Type"})
        assert (status, body) == (204, b"")
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert headers["Access-Control-Allow-Methods"] == "POST"
        assert headers["Access-Control-Allow-Headers"] == "X-Thing, Content-Type"
        assert headers["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in headers
        assert host.invoker.calls == []


async def test_a_preflight_without_request_headers_allows_the_defaults() -> None:
    async with running(cors=("https://app.example",)) as host:
        status, headers, _ = await host.request("OPTIONS", "/api/whatever",
                                                headers={"Origin": "https://app.example"})
        assert status == 204
        assert headers["Access-Control-Allow-Methods"] == \
            "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"
        assert headers["Access-Control-Allow-Headers"] == "*"


async def test_cors_headers_on_responses_for_allowed_origins_only() -> None:
    async with running(cors=("https://app.example",), keys=KEYS) as host:
        status, headers, _ = await host.request("GET", "/api/hello",
                                                headers={"Origin": "https://app.example"})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert headers["Vary"] == "Origin"
        # error answers carry them too
        status, headers, _ = await host.request("GET", "/api/secret",
                                                headers={"Origin": "https://app.example"})
        assert status == 401
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"

        status, headers, _ = await host.request("GET", "/api/hello",
                                                headers={"Origin": "https://evil.example"})
        assert status == 200
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, _ = await host.request("GET", "/api/hello")
        assert "Access-Control-Allow-Origin" not in headers


async def test_an_options_request_from_another_origin_is_routed_as_usual() -> None:
    async with running(cors=("https://app.example",)) as host:
        status, headers, _ = await host.request("OPTIONS", "/api/hello",
                                                headers={"Origin": "https://evil.example"})
        assert status == 404  # "hello" takes GET only; the host never answers 405
        assert "Access-Control-Allow-Origin" not in headers


async def test_without_cors_settings_no_preflight_is_answered() -> None:
    async with running() as host:
        status, headers, _ = await host.request("OPTIONS", "/api/hello",
                                                headers={"Origin": "https://app.example"})
        assert status == 404
        assert "Access-Control-Allow-Origin" not in headers


async def test_cors_wildcard_with_and_without_credentials() -> None:
    async with running(cors=("*",)) as host:
        _, headers, _ = await host.request("GET", "/api/hello",
                                           headers={"Origin": "https://any.example"})
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in headers
        assert "Access-Control-Allow-Credentials" not in headers
    async with running(cors=("*",), credentials=True) as host:
        status, headers, _ = await host.request("OPTIONS", "/api/hello",
                                                headers={"Origin": "https://any.example"})
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == "https://any.example"
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert headers["Vary"] == "Origin"


# --- routing --------------------------------------------------------------------------


async def test_functions_live_under_the_route_prefix() -> None:
    async with running(prefix="api") as host:
        assert (await host.request("GET", "/api/hello"))[0] == 200
        assert (await host.request("GET", "/API/Hello"))[0] == 200
        assert (await host.request("GET", "/api/hello/"))[0] == 200
        assert (await host.request("GET", "/hello"))[0] == 404
        assert (await host.request("GET", "/apihello"))[0] == 404
        assert (await host.request("GET", "/api"))[0] == 404
        assert (await host.request("GET", "/api/nothing"))[0] == 404


async def test_an_empty_route_prefix_serves_from_the_root() -> None:
    async with running(prefix="/") as host:
        assert (await host.request("GET", "/hello"))[0] == 200
        assert (await host.request("GET", "/api/hello"))[0] == 404


async def test_reconfigure_changes_the_prefix_and_keys_on_the_same_port() -> None:
    async with running(prefix="api") as host:
        port = host.server.port
        host.server.reconfigure(route_prefix="/v1/", keys=KEYS, cors_origins=(),
                                cors_credentials=False, function_timeout=3.0)
        assert host.server.port == port
        assert (await host.request("GET", "/v1/hello"))[0] == 200
        assert (await host.request("GET", "/api/hello"))[0] == 404
        assert (await host.request("GET", "/v1/secret"))[0] == 401
        assert host.invoker.calls[-1]["timeout"] == 3.0


async def test_a_known_route_with_another_method_is_404_and_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    async with running() as host:
        status, headers, body = await host.request("POST", "/api/hello")
        assert (status, body) == (404, b"")
        assert "Allow" not in headers
        for _ in range(3):
            status, _, _ = await host.request("DELETE", "/api/items")
            assert status == 404
        assert (await host.request("HEAD", "/api/hello"))[0] == 404  # GET is not HEAD
        assert host.invoker.calls == []
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("On Azure")]
    assert len(notes) == 3
    assert "POST /api/hello answers 404" in notes[0]
    assert "'hello' (route 'hello') accept(s) only GET" in notes[0]
    assert "'items_get' (route 'items'), 'items_post' (route 'items') accept(s) only GET, " \
        "POST" in notes[1]
    assert "HEAD /api/hello" in notes[2]


async def test_routes_with_the_same_template_dispatch_by_method() -> None:
    async with running() as host:
        await host.request("GET", "/api/items")
        await host.request("POST", "/api/items")
        assert [c["function"] for c in host.invoker.calls] == ["items_get", "items_post"]


# --- invocations ----------------------------------------------------------------------


async def test_the_request_reaches_the_invoker_as_http_request_data() -> None:
    async with running(timeout=12.5) as host:
        status, _, _ = await host.request(
            "POST", "/api/echo/a%20b?x=1&x=2&empty=&y=z", data=b"\x00body\xff",
            headers={"X-One": "1", "Content-Type": "application/octet-stream"})
        assert status == 200
        (call,) = host.invoker.calls
        assert call["function"] == "echo"
        assert call["timeout"] == 12.5
        assert call["reason"] == HTTP_REASON
        uuid.UUID(call["invocation_id"])
        assert set(call["inputs"]) == {"req"}
        request = HttpRequestData.from_json(call["inputs"]["req"])
        assert request.method == "POST"
        assert request.url == f"{host.base}/api/echo/a%20b?x=1&x=2&empty=&y=z"
        assert request.headers["x-one"] == "1"
        assert request.headers["content-type"] == "application/octet-stream"
        assert all(name == name.lower() for name in request.headers)
        assert request.params == {"x": "1,2", "y": "z"}
        assert request.route_params == {"id": "a b"}
        assert request.body == b"\x00body\xff"


async def test_the_functions_answer_reaches_the_client() -> None:
    answer = HttpResponseData(201, (("Content-Type", "application/json"), ("X-Custom", "yes")),
                              b'{"made":true}').to_json()
    async with running(answer=answer) as host:
        status, headers, body = await host.request("GET", "/api/hello")
        assert status == 201
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Custom"] == "yes"
        assert body == b'{"made":true}'


async def test_a_repeated_response_header_reaches_the_client_every_time() -> None:
    """HttpResponseData keeps headers in order and a name may repeat (Set-Cookie)."""
    answer = HttpResponseData(200, (("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")),
                              b"ok").to_json()
    async with running(answer=answer) as host:
        _, headers, _ = await host.request("GET", "/api/hello")
        assert headers.getall("Set-Cookie") == ["a=1", "b=2"]


async def test_an_answer_that_is_not_http_is_204() -> None:
    async with running(answer={"kind": "none"}) as host:
        status, _, body = await host.request("GET", "/api/hello")
        assert (status, body) == (204, b"")


async def test_an_unreadable_http_answer_is_500() -> None:
    async with running(answer={"kind": "http", "status": "teapot"}) as host:
        status, _, _ = await host.request("GET", "/api/hello")
        assert status == 500


@pytest.mark.parametrize(("error", "expected", "text"), [
    (FunctionInvocationError("hello", "ValueError", "bad input", "Traceback ..."), 500, ""),
    (InvocationTimeout("hello", 3), 500,
     "Timeout value of 00:00:03 was exceeded by function: Functions.hello"),
    (WorkerDied(4242, -9), 500,
     "The worker process (pid 4242) exited with code -9 while running this invocation."),
    (WorkerError("No worker process is available."), 503, "No worker process is available."),
])
async def test_worker_errors_become_responses(error: HostError, expected: int,
                                              text: str) -> None:
    async with running(answer=error) as host:
        status, _, body = await host.request("GET", "/api/hello")
        assert status == expected
        assert body.decode() == text


async def test_a_durable_client_input_without_the_durable_runtime_is_500() -> None:
    async with running() as host:
        status, _, body = await host.request("GET", "/api/start")
        assert status == 500
        assert body.decode() == (
            "The function 'starter' has a durableClient input, but Durable Functions are "
            "not available.")
        assert host.invoker.calls == []


async def test_a_durable_client_input_carries_the_binding_json_for_the_callers_origin(
        ) -> None:
    async with running() as host:
        host.server.bindings.durable = DurableBinding("MyHub",
                                                      lambda: "http://127.0.0.1:9/durabletask")
        status, _, _ = await host.request("GET", "/api/start")
        assert status == 200
        (call,) = host.invoker.calls
        assert set(call["inputs"]) == {"req", "client"}
        binding = json.loads(call["inputs"]["client"])
        assert binding["taskHubName"] == "MyHub"
        assert binding["rpcBaseUrl"] == "http://127.0.0.1:9/durabletask/"
        assert binding["managementUrls"]["statusQueryGetUri"].startswith(
            f"{host.base}{WEBHOOKS}/instances/INSTANCEID?")


async def test_a_new_app_view_serves_new_requests() -> None:
    async with running() as host:
        other = Invoker(ok(b"second version"))
        host.server.set_app(view_of([http_function("fresh", "fresh", ["GET"])], other))
        assert host.server.view is not None
        status, _, body = await host.request("GET", "/api/fresh")
        assert (status, body) == (200, b"second version")
        assert (await host.request("GET", "/api/hello"))[0] == 404
        status, _, body = await host.request("GET", "/admin/functions")
        assert [f["name"] for f in json.loads(body)] == ["fresh"]
