"""The entity routes of the Durable HTTP management API (the extension's HttpApiHandler,
`entities/{name}/{key}`): read an entity's state, list entities, signal an operation.

Their argument errors answer 400 with `{"Message": ...}` only, as the extension's entity
routes do (not the four-field body of the orchestration routes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from runtime.durable.client import DurableClient
from runtime.durable.history import json_or_raw
from runtime.errors import InvalidArgument
from runtime.http.builtin import Route
from runtime.http.errors import json_response
from runtime.http.params import param, parse_time

CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE = 100


def _bad(message: str) -> web.Response:
    return json_response(400, {"Message": message})


class EntityApi:
    def __init__(self, client: DurableClient) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        return [
            Route("GET", "entities", self._list),
            Route("GET", "entities/{name}", self._list),
            Route("GET", "entities/{name}/{key}", self._read),
            Route("POST", "entities/{name}", self._signal),
            Route("POST", "entities/{name}/{key}", self._signal),
            Route("DELETE", "entities/{name}", self._delete),
            Route("DELETE", "entities/{name}/{key}", self._delete),
        ]

    async def _read(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        key = params["key"]
        state = await self.client.read_entity_state(params["name"], "" if key == "$" else key)
        if state is None:
            return web.Response(status=404)
        body = json.dumps(json_or_raw(state), separators=(",", ":"), ensure_ascii=False)
        return web.Response(status=200, text=body, content_type="application/json",
                            charset="utf-8")

    async def _list(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        top = param(request, "top")
        try:
            page = int(top) if top else DEFAULT_PAGE
        except ValueError:
            return _bad(f"'top' must be an integer: '{top}'.")
        try:
            items, token = await self.client.list_entities(
                params.get("name") or None,
                fetch_state=(param(request, "fetchState") or "").lower() == "true",
                top=page, continuation=request.headers.get(CONTINUATION_HEADER) or None,
                from_time=parse_time(param(request, "lastOperationTimeFrom"),
                                     "lastOperationTimeFrom"),
                to_time=parse_time(param(request, "lastOperationTimeTo"),
                                   "lastOperationTimeTo"))
        except InvalidArgument as exc:
            return _bad(str(exc))
        return json_response(200, items, {CONTINUATION_HEADER: token or ""})

    async def _signal(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        return await self._send(request, params, param(request, "op") or "")

    async def _delete(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        return await self._send(request, params, "delete")

    async def _send(self, request: web.Request, params: Mapping[str, str],
                    operation: str) -> web.StreamResponse:
        body = await request.read()
        input_text: str | None = None
        if body:
            if request.content_type.lower() == "application/json":
                try:
                    value = json.loads(body)
                except (ValueError, UnicodeDecodeError) as exc:
                    return _bad(f"Could not parse JSON content: {exc}")
                input_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            else:  # any other content: the text, as a JSON string
                input_text = json.dumps(body.decode("utf-8", "replace"), ensure_ascii=False)
        try:
            await self.client.signal_entity(params["name"], params.get("key", ""), operation,
                                            input_text)
        except InvalidArgument as exc:
            return _bad(str(exc))
        return web.Response(status=202)


__all__ = ["EntityApi"]
