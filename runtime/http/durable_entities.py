"""The entity routes of the Durable HTTP API: `entities/{name?}/{key?}`.

funclocal does not run entity functions yet (the index skips them), so every entity is
one the extension does not know: reading one is a 404 and listing gives an empty page,
as the extension answers for an app without entities; signalling one is the extension's
400 for an unknown entity function, after the same checks in the same order
(EXT HttpApiHandler.HandleRequestAsync's entity block, HandlePostEntityOperationRequest-
Async, DurableClient.SignalEntityAsyncInternal, EntityId's constructor). Every
ArgumentException there answers 400 with `{"Message"}` only.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from runtime import console
from runtime.durable.app import ORCHESTRATION_TRIGGER
from runtime.durable.client import DurableClient
from runtime.durable.engine import wording
from runtime.http.builtin import Route
from runtime.http.durable_query import read_json
from runtime.http.errors import error_body, json_response

log = console.get("durable.api")

CONTINUATION_HEADER = "x-ms-continuation-token"
NO_NAME = ("Invalid entity id: entity name must not be a null or empty string. "
           "(Parameter 'entityName')")
NO_KEY = "Invalid entity id: entity key must not be null. (Parameter 'entityKey')"
BAD_KEY = ("entityKey (Parameter 'Entity keys must not contain /, \\, #, ?, or control "
           "characters.')")


class EntityRoutes:
    def __init__(self, client: DurableClient) -> None:
        self.client = client
        self._warned = False

    def routes(self) -> list[Route]:
        return [
            Route("GET", "entities", self._list),
            Route("GET", "entities/{name}", self._list),
            Route("GET", "entities/{name}/{key}", self._get),
            *(Route(method, template, handler) for method in ("POST", "DELETE")
              for template, handler in (("entities", self._no_name),
                                        ("entities/{name}", self._no_key),
                                        ("entities/{name}/{key}", self._signal))),
        ]

    async def _list(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        """HandleListEntitiesRequestAsync: 200 with the page (none here) and the
        continuation header, empty on the last page."""
        return json_response(200, [], {CONTINUATION_HEADER: ""})

    async def _get(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        """HandleGetEntityRequestAsync: 404 for an entity that does not exist (every
        entity here); the entity function need not exist."""
        return web.Response(status=404)

    async def _no_name(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        return error_body(400, NO_NAME)

    async def _no_key(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        return error_body(400, NO_KEY)

    async def _signal(self, request: web.Request, params: Mapping[str, str]) -> web.Response:
        """The body (JSON when the media type is application/json: a parse error is a
        400), then the key's characters, then the entity function must exist."""
        if request.content_length != 0:
            text = (await request.read()).decode("utf-8", errors="replace")
            content_type = request.headers.get("Content-Type", "").split(";")[0]
            if content_type.strip().lower() == "application/json":
                try:
                    read_json(text, whole=False)
                except ValueError as exc:
                    return error_body(400, f"Could not parse JSON content: {exc}")
        key = params["key"]
        if any(c in "/\\?#" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key):
            return error_body(400, BAD_KEY)
        if not self._warned:
            self._warned = True
            log.warning("An entity operation was signalled over the HTTP API; funclocal "
                        "does not run entity functions yet, so it answers as the extension "
                        "does for an entity function it does not know (400).")
        app = self.client.app
        known = app.names(ORCHESTRATION_TRIGGER) if app is not None else []
        return error_body(400, wording.unknown_entity_message(params["name"].lower(), known))


__all__ = ["EntityRoutes"]
