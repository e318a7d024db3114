"""The host's admin endpoints, for tools and scripts (master key when auth is on):
`GET /admin/host/status` (state, version, worker pids, storage request counts) and
`GET /admin/functions` (the index as JSON)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from runtime.functions import FunctionIndex
from runtime.http.builtin import Route, Routes

ADMIN_PATH = "/admin"


class AdminApi:
    def __init__(self, status: Callable[[], Mapping[str, Any]],
                 index: Callable[[], FunctionIndex | None]) -> None:
        self.status = status
        self.index = index
        self.routes = Routes([
            Route("GET", "host/status", self._status),
            Route("GET", "functions", self._functions),
        ])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return web.Response(status=405)
        return await self.routes.dispatch(request, ADMIN_PATH)

    async def _status(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        return web.json_response(dict(self.status()))

    async def _functions(self, request: web.Request,
                         params: Mapping[str, str]) -> web.StreamResponse:
        index = self.index()
        return web.json_response(index.describe() if index is not None else [])


__all__ = ["ADMIN_PATH", "AdminApi"]
