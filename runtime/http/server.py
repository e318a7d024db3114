"""The HTTP front door: one listener, CORS, and the three kinds of endpoint:
- `/runtime/webhooks/durabletask/...`: the Durable management API (the extension's system
  key `durabletask_extension`, or the master key);
- `/admin/...`: the host's admin endpoints (master key);
- everything else: the app's HTTP triggers under the route prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from runtime.bindings import Bindings
from runtime.durable.urls import WEBHOOK_PATH
from runtime.functions import FunctionIndex
from runtime.http.admin import ADMIN_PATH, AdminApi
from runtime.http.auth import DURABLE_SYSTEM_KEY, KeyStore
from runtime.http.triggers import (
    AppView,
    HttpSettings,
    HttpTriggers,
    authorized,
    presented_key,
)

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's request size limit

DurableHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _under(path: str, prefix: str) -> bool:
    lowered = path.lower()
    return lowered == prefix or lowered.startswith(prefix + "/")


class HttpServer:
    def __init__(self, *, route_prefix: str, keys: KeyStore | None,
                 cors_origins: tuple[str, ...] = (), cors_credentials: bool = False,
                 function_timeout: float | None = None,
                 status: Callable[[], Mapping[str, Any]],
                 bindings: Bindings | None = None) -> None:
        self.settings = HttpSettings(route_prefix.strip("/"), keys, function_timeout)
        self.cors_origins = cors_origins
        self.cors_credentials = cors_credentials
        self.bindings = bindings or Bindings()
        self.triggers = HttpTriggers(self.settings, self.bindings)
        self.admin = AdminApi(status, self._index)
        self.durable_handler: DurableHandler | None = None
        self.runner: web.AppRunner | None = None
        self.port: int = 0

    @property
    def view(self) -> AppView | None:
        return self.triggers.view

    def _index(self) -> FunctionIndex | None:
        return self.triggers.view.index if self.triggers.view is not None else None

    def set_app(self, view: AppView) -> None:
        """Route new requests to this version of the app. Requests already running on the
        previous version finish there."""
        self.triggers.view = view

    def set_durable(self, durable_handler: DurableHandler | None) -> None:
        self.durable_handler = durable_handler

    def reconfigure(self, *, route_prefix: str, keys: KeyStore | None,
                    cors_origins: tuple[str, ...], cors_credentials: bool,
                    function_timeout: float | None, homepage_disabled: bool = False) -> None:
        """Apply changed settings without closing the listening socket."""
        self.settings.route_prefix = route_prefix.strip("/")
        self.settings.keys = keys
        self.settings.function_timeout = function_timeout
        self.settings.homepage_disabled = homepage_disabled
        self.cors_origins = cors_origins
        self.cors_credentials = cors_credentials

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: a free port); returns the port. OSError if busy."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                    shutdown_timeout=10.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
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
        keys = self.settings.keys
        if _under(path, WEBHOOK_PATH):
            # The extension's webhooks take its system key or the master key only.
            if keys is not None and not keys.allows_extension(DURABLE_SYSTEM_KEY,
                                                              presented_key(request)):
                return web.Response(status=401)
            if self.durable_handler is None:
                return web.Response(status=404)
            return await self.durable_handler(request)
        if _under(path, ADMIN_PATH):
            if not authorized(keys, request, "admin", None):
                return web.Response(status=401)
            return await self.admin.handle(request)
        return await self.triggers.handle(request)

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


__all__ = ["AppView", "HttpServer"]
