"""Opt-in counting of the storage requests this process sends.

With `FUNCLOCAL_STORAGE_STATS=1` (or `open_storage(count_requests=True)`), every HTTP
request of a counting session is tallied by service, method and operation; the
benchmarks read the tallies through `GET /admin/host/status` to report storage requests
per activity.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp

STATS_ENV = "FUNCLOCAL_STORAGE_STATS"


_TRAILING_NUMBER = re.compile(r"-\d+$")


def counting_enabled() -> bool:
    return os.environ.get(STATS_ENV, "").strip().lower() in ("1", "true", "yes")


def storage_stats() -> dict[str, int] | None:
    """Storage requests sent by this process's counting sessions since it started, keyed
    "service:METHOD target operation[ status]" (the status only when it is 300 or more),
    e.g. "queue:GET hub-control-* messages" or "table:POST $batch". None when counting
    is off."""
    if not _COUNTER.used and not counting_enabled():
        return None
    return dict(sorted(_COUNTER.counts.items()))


def request_operation(service: str, method: str, path: str, query: str) -> str:
    """The counting key of one request, from the URL path below the account."""
    parts = [p for p in path.split("/") if p]
    method = method.upper()
    if service == "table":
        first = parts[0] if parts else ""
        name = first.split("(", 1)[0]
        if name in ("$batch", "Tables") or not name:
            return f"table:{method} {name or '/'}"
        if "PartitionKey=" in first:
            return f"table:{method} {name} entity"
        return f"table:{method} {name} {'query' if method == 'GET' else 'rows'}"
    if service == "queue":
        queue = _TRAILING_NUMBER.sub("-*", parts[0]) if parts else "/"
        if len(parts) >= 3:
            return f"queue:{method} {queue} message"
        if len(parts) == 2:
            return f"queue:{method} {queue} {parts[1]}"
        return f"queue:{method} {queue}"
    fields = dict(p.partition("=")[::2] for p in query.split("&") if p)
    container = parts[0] if parts else "/"
    operation = fields.get("comp") or ("blob" if len(parts) > 1 else "container")
    return f"{service}:{method} {container} {operation}"


class _RequestCounter:
    """Counts requests by operation through aiohttp's request tracing."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.used = False

    def trace_config(self, services: dict[str, tuple[str, str]]) -> aiohttp.TraceConfig:
        """`services` maps an origin to (service, account path prefix)."""
        self.used = True

        def key(url: Any, method: str) -> str:
            return _operation(services, url, method)

        async def on_end(_session: aiohttp.ClientSession, _ctx: SimpleNamespace,
                         params: aiohttp.TraceRequestEndParams) -> None:
            name = key(params.url, params.method)
            status = params.response.status
            self.counts[name if status < 300 else f"{name} {status}"] += 1

        async def on_error(_session: aiohttp.ClientSession, _ctx: SimpleNamespace,
                           params: aiohttp.TraceRequestExceptionParams) -> None:
            self.counts[f"{key(params.url, params.method)} error"] += 1

        config = aiohttp.TraceConfig()
        config.on_request_end.append(on_end)
        config.on_request_exception.append(on_error)
        return config


def services_by_origin(table_url: str, queue_url: str,
                        blob_url: str) -> dict[str, tuple[str, str]]:
    """origin -> (service, account path prefix): emulator URLs carry the account name in
    the path, cloud ones in the host name."""
    found: dict[str, tuple[str, str]] = {}
    for service, url in (("table", table_url), ("queue", queue_url), ("blob", blob_url)):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found[f"{parts.scheme}://{parts.hostname}:{port}".lower()] = (
            service, parts.path.rstrip("/"))
    return found


_COUNTER = _RequestCounter()


def _operation(services: dict[str, tuple[str, str]], url: Any, method: str) -> str:
    """A request's operation name (`request_operation`) from its aiohttp URL."""
    origin = f"{url.scheme}://{url.host}:{url.port}".lower()
    service, base = services.get(origin, ("storage", ""))
    path = url.raw_path
    if base and path.startswith(base):
        path = path[len(base):]
    return request_operation(service, method, path, url.raw_query_string)


def logging_trace_config(services: dict[str, tuple[str, str]],
                         logger: logging.Logger) -> aiohttp.TraceConfig:
    """Logs every request at DEBUG with its status and duration (`--verbose`):
    `Storage request queue:GET hub-control-* messages: 200 in 3.1 ms`."""

    def key(url: Any, method: str) -> str:
        return _operation(services, url, method)

    async def on_start(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       _params: aiohttp.TraceRequestStartParams) -> None:
        ctx.started = time.perf_counter()

    async def on_end(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                     params: aiohttp.TraceRequestEndParams) -> None:
        logger.debug("Storage request %s: %d in %.1f ms", key(params.url, params.method),
                     params.response.status, (time.perf_counter() - ctx.started) * 1000)

    async def on_error(_session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestExceptionParams) -> None:
        logger.debug("Storage request %s: %s after %.1f ms", key(params.url, params.method),
                     type(params.exception).__name__,
                     (time.perf_counter() - ctx.started) * 1000)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_error)
    return config


def trace_configs(services: dict[str, tuple[str, str]]) -> list[aiohttp.TraceConfig]:
    """The tracing to add to a counting session. `services` maps an origin to (service,
    account path prefix) and may be filled in after the session exists."""
    return [_COUNTER.trace_config(services)]


__all__ = ["STATS_ENV", "counting_enabled", "logging_trace_config", "request_operation",
           "services_by_origin", "storage_stats", "trace_configs"]
