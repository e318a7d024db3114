"""The entity routes of the Durable HTTP API: `entities/{name?}/{key?}` (the extension's
HttpApiHandler entity block, HandleGetEntityRequestAsync, HandleListEntitiesRequestAsync,
HandlePostEntityOperationRequestAsync).

- GET `entities/{name}/{key}`: 200 with the state's JSON, or 404 with no body (no check
  that the entity function exists; the key `$` is the empty key).
- GET `entities` and `entities/{name}`: a page of DurableEntityStatus items (`top`, 100 by
  default; `fetchState`; `lastOperationTimeFrom`/`To`), the continuation in the
  `x-ms-continuation-token` header both ways (empty on the last page).
- POST (`?op=`) and DELETE (operation "delete") `entities/{name}` and `entities/{name}/{key}`:
  202 with no body once the signal is queued. The checks in the extension's order: the
  name, the body (JSON when the media type is application/json), the key's characters,
  the entity function.
- Every ArgumentException there answers 400 with `{"Message"}` only; other methods 404.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from runtime.durable.client import DurableClient
from runtime.durable.history import json_or_raw
from runtime.errors import InvalidArgument
from runtime.http.builtin import Route
from runtime.http.durable_query import QueryValues, parse_bool, parse_datetime, parse_int, read_json
from runtime.http.errors import error_body, json_response

CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE_SIZE = 100  # EntityQuery.PageSize
EMPTY_KEY = "$"  # EmptyEntityKeySymbol: GET only


class EntityRoutes:
    """The entity block of the management API, over `client`."""

    def __init__(self, client: DurableClient) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        return [
            Route("GET", "entities", self._list),
            Route("GET", "entities/{name}", self._list),
            Route("GET", "entities/{name}/{key}", self._read),
            *(Route(method, template, self._signal) for method in ("POST", "DELETE")
              for template in ("entities", "entities/{name}", "entities/{name}/{key}")),
        ]

    async def _read(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        key = params["key"]
        state = await self.client.read_entity_state(params["name"],
                                                    "" if key == EMPTY_KEY else key)
        if state is None:
            return web.Response(status=404)
        body = json.dumps(json_or_raw(state), separators=(",", ":"), ensure_ascii=False)
        return web.Response(status=200, text=body, content_type="application/json",
                            charset="utf-8")

    async def _list(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        query = QueryValues(request.rel_url.raw_query_string)
        top = parse_int(query.get("top"))
        items, token = await self.client.list_entities(
            params.get("name") or None,
            fetch_state=parse_bool(query.get("fetchState")) or False,
            top=DEFAULT_PAGE_SIZE if top is None else top,
            continuation=request.headers.get(CONTINUATION_HEADER) or None,
            from_time=parse_datetime(query.get("lastOperationTimeFrom")),
            to_time=parse_datetime(query.get("lastOperationTimeTo")))
        return json_response(200, items, {CONTINUATION_HEADER: token or ""})

    async def _signal(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        name = params.get("name", "")
        if not name:
            return error_body(400, "Invalid entity id: entity name must not be a null or "
                                   "empty string. (Parameter 'entityName')")
        if request.method == "DELETE":
            operation = "delete"
        else:
            operation = QueryValues(request.rel_url.raw_query_string).get("op") or ""
        input_text: str | None = None
        if request.content_length != 0 and request.body_exists:
            text = (await request.read()).decode("utf-8", errors="replace")
            media_type = request.headers.get("Content-Type", "").split(";")[0]
            if media_type.strip().lower() == "application/json":
                try:
                    value = read_json(text, whole=False)
                except ValueError as exc:
                    return error_body(400, f"Could not parse JSON content: {exc}")
                input_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            else:  # any other content: the text itself, as a JSON string
                input_text = json.dumps(text, ensure_ascii=False)
        try:
            await self.client.signal_entity(name, params.get("key", ""), operation, input_text)
        except InvalidArgument as exc:
            return error_body(400, str(exc))
        return web.Response(status=202)


__all__ = ["EntityRoutes"]
