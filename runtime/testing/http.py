"""A client for the app's HTTP functions in a test environment.

Each request opens its own connection, so the client works from whatever event loop the
test runs in. With auth on (`enable_auth=True`) requests carry the master key unless the
test says otherwise (`key=None` sends none, to see the 401).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from runtime.http.auth import KEY_HEADER, KeyStore

_DEFAULT: Any = object()


@dataclass(frozen=True)
class HttpResponse:
    """An answer of the app: status, headers (case-insensitive) and body."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return json.loads(self.body)


class HttpClient:
    """Requests to the environment's host: `base_url` is where it listens; paths are
    taken as they are (`/api/hello`), so the route prefix is part of them."""

    def __init__(self, base_url: str, keys: KeyStore | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.timeout = timeout

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this host."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    async def request(self, method: str, path: str, *, json: Any = _DEFAULT,
                      data: bytes | str | None = None,
                      params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None,
                      key: str | None = _DEFAULT) -> HttpResponse:
        """Send one request. `json=` sends a JSON body (Content-Type application/json),
        `data=` a raw one; `key` is the function key to present (default: the master key
        when auth is on)."""
        sent = dict(headers or {})
        if key is _DEFAULT:
            key = self.keys.master_key if self.keys else None
        if key is not None:
            sent.setdefault(KEY_HEADER, key)
        body: Any = data
        if json is not _DEFAULT:
            body = _dumps(json)
            sent.setdefault("Content-Type", "application/json")
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                method, self.url(path), data=body, params=params, headers=sent) as answer:
            return HttpResponse(answer.status, CIMultiDict(answer.headers),
                                await answer.read())

    async def get(self, path: str, **kwargs: Any) -> HttpResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> HttpResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> HttpResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> HttpResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> HttpResponse:
        return await self.request("DELETE", path, **kwargs)


def _dumps(value: Any) -> str:
    return json.dumps(value)


__all__ = ["HttpClient", "HttpResponse"]
