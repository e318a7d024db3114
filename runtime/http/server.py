"""The HTTP front door: HTTP triggers under the route prefix, admin endpoints, and the
Durable management API under /runtime/webhooks/durabletask/."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from runtime import logs
from runtime.errors import (
    FunctionInvocationError,
    InvocationTimeout,
    WorkerDied,
    WorkerError,
)
from runtime.functions import FunctionIndex, FunctionSpec
from runtime.http.auth import KEY_HEADER, KeyStore
from runtime.http.routes import MethodNotAllowed, RouteTable

log = logs.get("http")

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's request size limit
DURABLE_PREFIX = "/runtime/webhooks/durabletask/"
HTTP_REASON = "This function was programmatically called via the host APIs."


class Invoker(Protocol):
    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = ...) -> dict[str, Any]: ...


DurableHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
ClientBindingFactory = Callable[[FunctionSpec, str], str]


@dataclass(frozen=True)
class AppView:
    """The version of the app the server currently routes to (swapped whole on reload)."""

    index: FunctionIndex
    routes: RouteTable
    invoker: Invoker


class HttpServer:
    def __init__(self, *, route_prefix: str, keys: KeyStore | None,
                 cors_origins: tuple[str, ...] = (), cors_credentials: bool = False,
                 function_timeout: float | None = None,
                 status: Callable[[], Mapping[str, Any]],
                 durable_handler: DurableHandler | None = None,
                 client_binding: ClientBindingFactory | None = None) -> None:
        self.route_prefix = route_prefix.strip("/")
        self.keys = keys
        self.cors_origins = cors_origins
        self.cors_credentials = cors_credentials
        self.function_timeout = function_timeout
        self.status = status
        self.durable_handler = durable_handler
        self.client_binding = client_binding
        self.view: AppView | None = None
        self.runner: web.AppRunner | None = None
        self.port: int = 0

    def set_app(self, view: AppView) -> None:
        """Route new requests to this version of the app. Requests already running on the
        previous version finish there."""
        self.view = view

    def set_durable(self, durable_handler: DurableHandler | None,
                    client_binding: ClientBindingFactory | None) -> None:
        self.durable_handler = durable_handler
        self.client_binding = client_binding

    def reconfigure(self, *, route_prefix: str, keys: KeyStore | None,
                    cors_origins: tuple[str, ...], cors_credentials: bool,
                    function_timeout: float | None) -> None:
        """Apply changed settings without closing the listening socket."""
        self.route_prefix = route_prefix.strip("/")
        self.keys = keys
        self.cors_origins = cors_origins
        self.cors_credentials = cors_credentials
        self.function_timeout = function_timeout

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, shutdown_timeout=10.0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # -- dispatch ------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS" and self._cors_origin(request):
            return self._with_cors(request, web.Response(status=204, headers={
                "Access-Control-Allow-Methods": request.headers.get(
                    "Access-Control-Request-Method", "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"),
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", "*"),
            }))
        response = await self._route(request)
        return self._with_cors(request, response)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.lower().startswith(DURABLE_PREFIX) or path.lower() == DURABLE_PREFIX.rstrip("/"):
            if not self._authorized(request, "function", None):
                return web.Response(status=401)
            if self.durable_handler is None:
                return web.Response(status=404)
            return await self.durable_handler(request, path[len(DURABLE_PREFIX):])
        if path.lower().startswith("/admin/"):
            return await self._admin(request)
        while True:
            view = self.view
            if view is None:
                return web.Response(status=503, text="The host is starting.")
            resolved = self._resolve(request, view)
            if isinstance(resolved, web.StreamResponse):
                return resolved
            spec, route_params = resolved
            await request.read()  # kept by aiohttp: a second pass reads it from memory
            if self.view is view:
                return await self._invoke_http(request, view, spec, route_params)
            # The app was reloaded while the body arrived: the previous version is being
            # retired, so route the request again on the new one.

    def _resolve(self, request: web.Request, view: AppView
                 ) -> web.StreamResponse | tuple[FunctionSpec, Mapping[str, str]]:
        relative = self._strip_prefix(request.path)
        if relative is None:
            return web.Response(status=404)
        match = view.routes.resolve(request.method, relative)
        if match is None:
            return web.Response(status=404)
        if isinstance(match, MethodNotAllowed):
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(match.allowed))})
        spec = view.index.get(match.function_name)
        if spec is None:
            return web.Response(status=404)
        if not self._authorized(request, spec.auth_level, spec.name):
            return web.Response(status=401)
        return spec, match.route_params

    def _strip_prefix(self, path: str) -> str | None:
        trimmed = path.lstrip("/")
        if not self.route_prefix:
            return trimmed
        prefix = self.route_prefix.lower()
        lowered = trimmed.lower()
        if lowered == prefix:
            return ""
        if lowered.startswith(prefix + "/"):
            return trimmed[len(prefix) + 1:]
        return None

    def _authorized(self, request: web.Request, level: str, function_name: str | None) -> bool:
        if self.keys is None:
            return True  # as `func start`: auth levels are not enforced locally by default
        presented = request.headers.get(KEY_HEADER) or _query_value(request, "code")
        return self.keys.allows(level, function_name, presented)

    async def _invoke_http(self, request: web.Request, view: AppView, spec: FunctionSpec,
                           route_params: Mapping[str, str]) -> web.StreamResponse:
        body = await request.read()
        invocation_id = str(uuid.uuid4())
        inputs: dict[str, Any] = {}
        trigger_name = str(spec.trigger.get("name", "req"))
        inputs[trigger_name] = {
            "method": request.method,
            "url": str(request.url),
            "headers": _headers(request),
            "params": _query_params(request.query_string),
            "route_params": dict(route_params),
            "body_b64": base64.b64encode(body).decode("ascii"),
        }
        for name in spec.binding_names("durableClient"):
            if self.client_binding is None:
                return web.Response(status=500, text="Durable Functions are not available.")
            inputs[name] = self.client_binding(spec, str(request.url))
        try:
            result = await view.invoker.invoke(spec.name, inputs, invocation_id=invocation_id,
                                               timeout=self.function_timeout,
                                               reason=HTTP_REASON)
            return _to_response(result)
        except FunctionInvocationError:
            return web.Response(status=500)  # logged with its traceback by the pool
        except (InvocationTimeout, WorkerDied) as exc:
            return web.Response(status=500, text=str(exc))
        except WorkerError as exc:
            return web.Response(status=503, text=str(exc))
        except (TypeError, ValueError, KeyError) as exc:
            log.error("Functions.%s returned an invalid response: %s", spec.name, exc)
            return web.Response(status=500)

    # -- admin ---------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request, "admin", None):
            return web.Response(status=401)
        path = request.path.rstrip("/").lower()
        if request.method != "GET":
            return web.Response(status=405)
        if path == "/admin/host/status":
            return web.json_response(dict(self.status()))
        if path == "/admin/functions":
            if self.view is None:
                return web.json_response([])
            return web.json_response(self.view.index.describe())
        return web.Response(status=404)

    # -- CORS ----------------------------------------------------------------------

    def _cors_origin(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if not origin or not self.cors_origins:
            return None
        if "*" in self.cors_origins:
            return origin if self.cors_credentials else "*"
        return origin if origin in self.cors_origins else None

    def _with_cors(self, request: web.Request,
                   response: web.StreamResponse) -> web.StreamResponse:
        allowed = self._cors_origin(request)
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
            if self.cors_credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
            if allowed != "*":
                response.headers["Vary"] = "Origin"
        return response


def _headers(request: web.Request) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in request.headers.items():
        lowered = key.lower()
        merged[lowered] = f"{merged[lowered]}, {value}" if lowered in merged else value
    return merged


def _query_params(query_string: str) -> dict[str, str]:
    """Query parameters as the worker sees them: repeated keys joined by commas, empty
    values dropped; malformed pairs are kept as best as can be parsed, never an error."""
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=False, errors="replace"):
        params.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in params.items()}


def _query_value(request: web.Request, name: str) -> str | None:
    return _query_params(request.query_string).get(name)


def _to_response(result: Mapping[str, Any]) -> web.Response:
    if result.get("kind") != "http":
        return web.Response(status=204)
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    body = base64.b64decode(result.get("body_b64") or "")
    return web.Response(status=int(result.get("status", 200)), body=body, headers=headers)
