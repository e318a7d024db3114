"""The extension's built-in HTTP activity (`BuiltIn::HttpActivity`), which
`context.call_http` schedules: the host sends the request and the orchestrator gets the
response (TaskHttpActivityShim, DurableHttpResponse).

What SDK 1.x sends and gets, as the extension serves it:
- the request: method, uri, headers (a string or a list of strings each), content (a
  string; its type is the Content-Type header, else text/plain), tokenSource;
- the response: {"statusCode": int, "headers": {...}, "content": str}, where headers
  are the response headers without the content headers, each a string, or a list when
  the header came more than once. Any status is a result, 202 included: SDK 1.x does not
  ask for the asynchronous polling pattern, so the 202 comes back as it is;
- a request that cannot be sent (no such host, connection refused, 240 s timeout) fails
  the task with the error's message.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

TIMEOUT_SECONDS = 240.0  # the extension's HttpClient timeout
# .NET keeps these on HttpContent, not HttpResponseMessage.Headers: they are left out.
CONTENT_HEADERS = frozenset({
    "allow", "content-disposition", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "expires", "last-modified"})


class HttpActivityError(Exception):
    """The request could not be made; the message is the task's failure reason."""


def parse_request(input_text: str | None) -> dict[str, Any]:
    """The DurableHttpRequest in the activity's input (a one-element JSON array)."""
    try:
        value = json.loads(input_text or "null")
    except ValueError as exc:
        raise HttpActivityError(f"The HTTP request is not valid JSON: {exc}") from exc
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict) or not value.get("uri"):
        raise HttpActivityError("The HTTP request has no uri.")
    return value


def _headers(request: dict[str, Any]) -> tuple[list[tuple[str, str]], str]:
    """Request headers (repeated as given) and the content type."""
    content_type = "text/plain"
    found: list[tuple[str, str]] = []
    for name, value in (request.get("headers") or {}).items():
        values = value if isinstance(value, list) else [value]
        if name.lower() == "content-type":
            if values:
                content_type = str(values[0])
            if "multipart" in content_type.lower():
                raise HttpActivityError(
                    "Multipart content is not supported with CallHttpAsync.")
            continue
        found.extend((str(name), str(v)) for v in values)
    return found, content_type


def response_json(status: int, headers: list[tuple[str, str]], body: str) -> dict[str, Any]:
    """DurableHttpResponse as the extension serialises it."""
    merged: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in CONTENT_HEADERS:
            continue
        names.setdefault(key, name)
        merged.setdefault(key, []).append(value)
    shown = {names[k]: (v[0] if len(v) == 1 else v) for k, v in merged.items()}
    return {"statusCode": status, "headers": shown, "content": body}


async def send(session: aiohttp.ClientSession, request: dict[str, Any]) -> dict[str, Any]:
    """Send `request`; the response as the orchestrator gets it. HttpActivityError when
    the request cannot be made."""
    if request.get("tokenSource"):
        raise HttpActivityError(
            "call_http with a token_source needs a managed identity, which a local host does "
            "not have; pass an Authorization header instead when running locally.")
    headers, content_type = _headers(request)
    content = request.get("content")
    data = None
    if content is not None:
        data = str(content).encode("utf-8")
        headers.append(("Content-Type", content_type if "charset" in content_type.lower()
                        else f"{content_type}; charset=utf-8"))
    method = str(request.get("method") or "GET").upper()
    try:
        async with session.request(method, str(request["uri"]), data=data, headers=headers,
                                   allow_redirects=True,
                                   timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
                                   ) as response:
            body = await response.text(errors="replace")
            return response_json(response.status, list(response.headers.items()), body)
    except asyncio.TimeoutError as exc:
        raise HttpActivityError(
            "The request was canceled due to the configured HttpClient.Timeout of "
            f"{TIMEOUT_SECONDS:g} seconds elapsing.") from exc
    except (aiohttp.ClientError, ValueError) as exc:
        raise HttpActivityError(f"{type(exc).__name__}: {exc}") from exc


__all__ = ["HttpActivityError", "parse_request", "response_json", "send"]
