"""Built-in endpoints declared as routes: a method, a path template of literal and
`{name}` segments, and a handler. Literal segments match without regard to case and
values are URL-decoded, as the host's and the extension's routing do; a path that
matches no route, or matches only with another method, is a 404 (HttpApiHandler)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

Handler = Callable[[web.Request, Mapping[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler

    @property
    def segments(self) -> list[str]:
        return [s for s in self.template.strip("/").split("/") if s] if self.template else []

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if method.upper() != self.method.upper():
            return None
        segments = self.segments
        if len(segments) != len(parts):
            return None
        values: dict[str, str] = {}
        for segment, part in zip(segments, parts, strict=True):
            if segment.startswith("{") and segment.endswith("}"):
                if not part:
                    return None
                values[segment[1:-1]] = unquote(part)
            elif segment.lower() != part.lower():
                return None
        return values


def split_path(raw_path: str, prefix: str) -> list[str] | None:
    """The raw (still encoded) segments of `raw_path` below `prefix`, or None when it is
    not below it. A trailing slash adds nothing: `instances/` is `instances`."""
    lowered = raw_path.lower()
    base = prefix.rstrip("/").lower()
    if lowered != base and not lowered.startswith(base + "/"):
        return None
    rest = raw_path[len(base):].strip("/")
    return rest.split("/") if rest else []


class Routes:
    """An ordered table of routes; the first match wins."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def find(self, method: str, parts: list[str]) -> tuple[Handler, dict[str, str]] | None:
        for route in self.routes:
            values = route.match(method, parts)
            if values is not None:
                return route.handler, values
        return None

    async def dispatch(self, request: web.Request, prefix: str) -> web.StreamResponse:
        parts = split_path(request.rel_url.raw_path, prefix)
        found = self.find(request.method, parts) if parts is not None else None
        if found is None:
            return web.Response(status=404)
        handler, values = found
        return await handler(request, values)


__all__ = ["Handler", "Route", "Routes", "split_path"]
