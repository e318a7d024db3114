"""The Durable SDK's client in a test process.

`azure-functions-durable` 1.x keeps one aiohttp session for the whole process
(`models/utils/http_utils.py`), created in the event loop of its first request. In a
worker process there is one loop, so that is fine; in a test process each test may run
in a new loop (pytest-asyncio's default), and the next test's client call fails with
"Event loop is closed" on the session of the previous loop. The SDK's earlier versions
opened a session per request (`async with aiohttp.ClientSession()`); `install` gives the
clients made in this process that behaviour back: the request functions the SDK's
client calls are replaced by ones that open a session per request, send the same
request and read the answer the same way. Loopback requests cost a connection each,
about a millisecond.
"""

from __future__ import annotations

import importlib
from typing import Any

import aiohttp

_TIMEOUT = aiohttp.ClientTimeout(total=240, sock_connect=10)  # the SDK's own limits
_installed = False


def _headers(trace_parent: str | None, trace_state: str | None,
             function_invocation_id: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if trace_parent:
        headers["traceparent"] = trace_parent
    if trace_state:
        headers["tracestate"] = trace_state
    if function_invocation_id:
        headers["X-Azure-Functions-InvocationId"] = function_invocation_id
    return headers


async def post_async_request(url: str, data: Any = None, trace_parent: str | None = None,
                             trace_state: str | None = None,
                             function_invocation_id: str | None = None) -> list[Any]:
    """POST `data` as JSON; [status, the answer's JSON] (the SDK's contract)."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.post(
            url, json=data, headers=_headers(trace_parent, trace_state,
                                             function_invocation_id)) as response:
        return [response.status, await response.json(content_type=None)]


async def get_async_request(url: str, function_invocation_id: str | None = None) -> list[Any]:
    """GET; [status, the answer's JSON, or "" for an empty answer]."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.get(
            url, headers=_headers(None, None, function_invocation_id)) as response:
        data = await response.json(content_type=None)
        return [response.status, "" if data is None else data]


async def delete_async_request(url: str,
                               function_invocation_id: str | None = None) -> list[Any]:
    """DELETE; [status, the answer's JSON]."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.delete(
            url, headers=_headers(None, None, function_invocation_id)) as response:
        return [response.status, await response.json(content_type=None)]


def install() -> None:
    """Make the SDK's clients created from now on in this process open a session per
    request (idempotent; a no-op for SDK versions without the shared session)."""
    global _installed
    if _installed:
        return
    try:
        # The module, not the class of the same name that the package re-exports.
        client = importlib.import_module(
            "azure.durable_functions.models.DurableOrchestrationClient")
        http_utils = importlib.import_module(
            "azure.durable_functions.models.utils.http_utils")
    except ImportError:
        return
    _installed = True
    if not hasattr(http_utils, "_get_session"):
        return  # this SDK opens a session per request already
    for module in (http_utils, client):
        setattr(module, "post_async_request", post_async_request)  # noqa: B010
        setattr(module, "get_async_request", get_async_request)  # noqa: B010
        setattr(module, "delete_async_request", delete_async_request)  # noqa: B010


def new_client(binding_json: str) -> Any:
    """The SDK's DurableOrchestrationClient for a durableClient binding's JSON."""
    install()
    from azure.durable_functions import DurableOrchestrationClient

    return DurableOrchestrationClient(binding_json)


__all__ = ["install", "new_client"]
