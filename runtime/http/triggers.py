"""User HTTP functions: route matching under the route prefix, auth levels, the
invocation in a worker, and its answer as the response.

The app version is swapped whole on reload (`AppView`); a request whose body was still
arriving when the app changed is routed again on the new version.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from runtime import console
from runtime.bindings import Bindings
from runtime.errors import BindingError, HostError
from runtime.functions import FunctionIndex, FunctionSpec
from runtime.http.auth import KEY_HEADER, KeyStore
from runtime.http.errors import error_response
from runtime.http.routes import MethodNotAllowed, RouteTable
from runtime.worker.protocol import HttpRequestData, HttpResponseData

log = console.get("http")

HTTP_REASON = "This function was programmatically called via the host APIs."


class Invoker(Protocol):
    async def invoke(self, function: str, inputs: dict[str, Any], *,
                     invocation_id: str | None = None, timeout: float | None = None,
                     reason: str = ...) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AppView:
    """The version of the app the server currently routes to (swapped whole on reload)."""

    index: FunctionIndex
    routes: RouteTable
    invoker: Invoker


@dataclass
class HttpSettings:
    """The settings a reload may change without closing the listener."""

    route_prefix: str
    keys: KeyStore | None
    function_timeout: float | None = None


def query_params(query_string: str) -> dict[str, str]:
    """Query parameters as the worker sees them: repeated keys joined by commas, empty
    values dropped; malformed pairs are kept as best as can be parsed, never an error."""
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=False, errors="replace"):
        params.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in params.items()}


def authorized(keys: KeyStore | None, request: web.Request, level: str,
               function_name: str | None) -> bool:
    """Whether the request's key (x-functions-key or ?code=) allows `level`. With auth
    off every request passes, as with `func start`."""
    if keys is None:
        return True
    presented = request.headers.get(KEY_HEADER) or query_params(request.query_string).get("code")
    return keys.allows(level, function_name, presented)


def _headers(request: web.Request) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in request.headers.items():
        lowered = key.lower()
        merged[lowered] = f"{merged[lowered]}, {value}" if lowered in merged else value
    return merged


class HttpTriggers:
    def __init__(self, settings: HttpSettings, bindings: Bindings) -> None:
        self.settings = settings
        self.bindings = bindings
        self.view: AppView | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
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
                return await self._invoke(request, view, spec, route_params)
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
        if not authorized(self.settings.keys, request, spec.auth_level, spec.name):
            return web.Response(status=401)
        return spec, match.route_params

    def _strip_prefix(self, path: str) -> str | None:
        trimmed = path.lstrip("/")
        prefix = self.settings.route_prefix.strip("/").lower()
        if not prefix:
            return trimmed
        lowered = trimmed.lower()
        if lowered == prefix:
            return ""
        if lowered.startswith(prefix + "/"):
            return trimmed[len(prefix) + 1:]
        return None

    async def _invoke(self, request: web.Request, view: AppView, spec: FunctionSpec,
                      route_params: Mapping[str, str]) -> web.StreamResponse:
        payload = HttpRequestData(
            method=request.method, url=str(request.url), headers=_headers(request),
            params=query_params(request.query_string), route_params=dict(route_params),
            body=await request.read())
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if request.headers.get("Host"):
            origin = f"{request.url.scheme}://{request.headers['Host']}"
        try:
            inputs = self.bindings.inputs(spec, payload.to_json(), origin=origin)
            result = await view.invoker.invoke(spec.name, inputs,
                                               invocation_id=str(uuid.uuid4()),
                                               timeout=self.settings.function_timeout,
                                               reason=HTTP_REASON)
        except BindingError as exc:
            log.error("%s", exc)
            return web.Response(status=500, text=str(exc))
        except HostError as exc:
            return error_response(exc)
        if result.get("kind") != "http":
            return web.Response(status=204)
        try:
            answer = HttpResponseData.from_json(result)
        except (TypeError, ValueError, KeyError) as exc:
            log.error("Functions.%s returned an invalid response: %s", spec.name, exc)
            return web.Response(status=500)
        response = web.Response(status=answer.status, body=answer.body)
        for name, value in answer.headers:
            response.headers.add(name, value)
        return response


__all__ = ["AppView", "HttpSettings", "HttpTriggers", "authorized", "query_params"]
