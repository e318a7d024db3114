"""User HTTP functions: route matching under the route prefix, auth levels, the
invocation in a worker, and its answer as the response.

Routing is the host's (see `routes.py`): function-name order, first match wins, and a
known path with a method no route accepts is a 404 with an empty body, never a 405. Where
that answer would surprise a user the console says once what Azure does (`AzureNotes`).
The request and response conversions are in `conversion.py`.

The app version is swapped whole on reload (`AppView`); a request whose body was still
arriving when the app changed is routed again on the new version.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from runtime import console
from runtime.bindings import Bindings
from runtime.errors import BindingError, HostError
from runtime.functions import FunctionIndex, FunctionSpec
from runtime.http.auth import KEY_HEADER, KeyStore
from runtime.http.conversion import has_body, query_params, request_data, web_response
from runtime.http.errors import error_response
from runtime.http.route_template import decode_path
from runtime.http.routes import RouteMatch, RouteTable, WrongMethod
from runtime.worker.protocol import HttpResponseData

log = console.get("http")

HTTP_REASON = "This function was programmatically called via the host APIs."
# The host serves its embedded Home.html (150 kB) at `/`; this page has the same title.
HOMEPAGE = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            "<title>Your Azure Function App is up and running.</title></head>"
            "<body><h1>Your Functions 4.0 app is up and running</h1>"
            "<p>Served locally by funclocal.</p></body></html>\n")


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
    homepage_disabled: bool = False  # app setting AzureWebJobsDisableHomepage=true


def presented_key(request: web.Request) -> str | None:
    """The key a request presents: x-functions-key, else ?code=."""
    return request.headers.get(KEY_HEADER) or query_params(request.query_string).get("code")


def authorized(keys: KeyStore | None, request: web.Request, level: str,
               function_name: str | None) -> bool:
    """Whether the request's key (x-functions-key or ?code=) allows `level`. With auth
    off every request passes, as with `func start`."""
    if keys is None:
        return True
    return keys.allows(level, function_name, presented_key(request))


class HttpTriggers:
    def __init__(self, settings: HttpSettings, bindings: Bindings) -> None:
        self.settings = settings
        self.bindings = bindings
        self.view: AppView | None = None
        self.notes = console.AzureNotes(log)

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
        relative = self._strip_prefix(request.rel_url.raw_path)
        match = view.routes.resolve(request.method, relative) if relative is not None \
            else None
        if match is None or isinstance(match, WrongMethod):
            if request.rel_url.raw_path == "/":
                return self._homepage()
            if match is not None:
                self._note_wrong_method(request, view, match)
            return web.Response(status=404)
        self._note_shadowed(request, view, match)
        spec = view.index.get(match.function_name)
        if spec is None:
            return web.Response(status=404)
        if not authorized(self.settings.keys, request, spec.auth_level, spec.name):
            return web.Response(status=401)
        return spec, match.route_params

    def _homepage(self) -> web.Response:
        """HomepageMiddleware: `/` that no function serves, whatever the method."""
        if self.settings.homepage_disabled:
            return web.Response(status=204)
        response = web.Response(status=200, body=HOMEPAGE.encode("utf-8"))
        response.headers["Content-Type"] = "text/html"
        return response

    def _note_wrong_method(self, request: web.Request, view: AppView,
                           match: WrongMethod) -> None:
        verb = request.method.upper()
        routes = ", ".join(f"'{name}' (route '{_route_of(view, name)}')"
                           for name in match.functions)
        accepted = ", ".join(sorted(match.allowed)) or "no method at all (methods=[])"
        self.notes.once(("method", *match.functions, verb), (
            f"{verb} {request.path} answers 404, as here: the host routes by method too, "
            f"and {routes} accept(s) only {accepted}. Azure answers 404 (not 405) when only "
            "the method differs."))

    def _note_shadowed(self, request: web.Request, view: AppView, match: RouteMatch) -> None:
        if match.shadowed is None:
            return
        winner, other = match.function_name, match.shadowed.function_name
        self.notes.once(("shadowed", winner, other), (
            f"{request.method.upper()} {request.path} is served by '{winner}' (route "
            f"'{_route_of(view, winner)}'), as here, although '{other}' (route "
            f"'{match.shadowed.template.text}') is more specific: the host tries routes "
            "in function-name order and takes the first that matches."))

    def _strip_prefix(self, raw_path: str) -> str | None:
        """The raw path below the route prefix (compared decoded, without case), or
        None when the request is not under it."""
        trimmed = raw_path.lstrip("/")
        prefix = self.settings.route_prefix.strip("/")
        if not prefix:
            return trimmed
        count = prefix.count("/") + 1
        segments = trimmed.split("/")
        head = "/".join(decode_path(segment) for segment in segments[:count])
        if len(segments) < count or head.lower() != prefix.lower():
            return None
        return "/".join(segments[count:])

    async def _invoke(self, request: web.Request, view: AppView, spec: FunctionSpec,
                      route_params: Mapping[str, str]) -> web.StreamResponse:
        body = await request.read()
        payload = request_data(request, body, dict(route_params))
        if body and not has_body(request):
            self.notes.once(("chunked", spec.name), (
                f"Functions.{spec.name} received a request body without Content-Length "
                "(Transfer-Encoding: chunked); the host gives Python functions no body for "
                "such requests, so the function sees an empty body, here too."))
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
        for code, text in answer.notes:
            self.notes.once((code, spec.name), f"Functions.{spec.name}: {text}")
        return web_response(answer)


def _route_of(view: AppView, function_name: str) -> str:
    spec = view.index.get(function_name)
    return spec.route if spec is not None else "?"


__all__ = ["AppView", "HttpSettings", "HttpTriggers", "authorized", "query_params"]
