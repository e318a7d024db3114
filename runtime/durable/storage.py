"""The Azure Storage clients of the host, and the engine-level retry of storage operations.

All three service clients share one aiohttp session (one connection pool) through one
`AioHttpTransport`:
- `trust_env=False` / `use_env_settings=False`: the default transport looks up proxy and
  netrc settings in a thread on every request (~1 ms of CPU each).
- keep-alive below Azurite's 5 s idle close, so a pooled connection is never reused just as
  Azurite closes it.
- short, bounded SDK retries: the storage SDKs default to a 15 s first backoff, which turns
  an Azurite stall (queue garbage collection) into 15-40 s requests. Operations that the
  SDK does not retry (table MERGE and batch POST) go through `with_retries`.

Opt-in request counting (`FUNCLOCAL_STORAGE_STATS=1`, or `count_requests=True`) tallies
every HTTP request the session sends by service, method and operation; `storage_stats()`
returns the tallies. The benchmarks read them through the host status endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.blob.aio import LinearRetry as BlobLinearRetry
from azure.storage.queue.aio import QueueServiceClient

from runtime.durable.leanqueue import LeanQueues
from runtime.errors import StorageError

_QueueRetry: Any
try:  # the queue package keeps its async retry policies in a private module
    from azure.storage.queue._shared.policies_async import LinearRetry as _QueueRetry
except ImportError:  # pragma: no cover - depends on the installed SDK layout
    _QueueRetry = None

log = logging.getLogger(__name__)

T = TypeVar("T")

# The newest service version Azurite 3.37 accepts (newer SDKs send a newer one, which
# Azurite rejects unless started with --skipApiVersionCheck). Real accounts accept it too.
SERVICE_API_VERSION = "2026-06-06"
LEAN_ENV = "FUNCLOCAL_LEAN_QUEUES"  # "0" sends every queue request through the SDK

SDK_RETRY_TOTAL = 3
SDK_BACKOFF = 0.5  # seconds, +- jitter below
SDK_JITTER = 0.3
CONNECT_TIMEOUT = 5.0
# Longer than an Azurite GC stall of a few seconds, short enough to surface a dead server.
READ_TIMEOUT = 30.0
KEEPALIVE_SECONDS = 3.0

_TRANSIENT_STATUS = frozenset({408, 429})

STATS_ENV = "FUNCLOCAL_STORAGE_STATS"


@dataclass(frozen=True)
class StorageClients:
    """The three service clients over one shared HTTP session. Close it once, at shutdown."""

    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    session: aiohttp.ClientSession
    # Signed requests for the hot queue operations; None when there is no account key.
    lean_queues: LeanQueues | None = None

    def request_counts(self) -> dict[str, int] | None:
        """The process's storage request counts (see `storage_stats`)."""
        return storage_stats()

    async def close(self) -> None:
        # The transport does not own the session, so closing the clients leaves it to us.
        for client in (self.tables, self.queues, self.blobs):
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("closing a storage client failed", exc_info=True)
        await self.session.close()

    async def __aenter__(self) -> StorageClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_storage(connection_string: str, *, max_connections: int = 100,
                       read_timeout: float = READ_TIMEOUT,
                       count_requests: bool | None = None) -> StorageClients:
    """Clients for the account in `connection_string` (must run inside the event loop).

    `count_requests` adds the session's requests to `storage_stats()`; by default it
    follows the FUNCLOCAL_STORAGE_STATS environment variable.
    """
    if count_requests is None:
        count_requests = counting_enabled()
    services: dict[str, tuple[str, str]] = {}  # filled in once the clients exist
    traces = [_COUNTER.trace_config(services)] if count_requests else []
    connector = aiohttp.TCPConnector(limit=max_connections,
                                     keepalive_timeout=KEEPALIVE_SECONDS)
    session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                    auto_decompress=False,
                                    cookie_jar=aiohttp.DummyCookieJar(),
                                    trace_configs=traces or None)
    try:
        transport = AioHttpTransport(session=session, session_owner=False,
                                     use_env_settings=False,
                                     connection_timeout=CONNECT_TIMEOUT,
                                     read_timeout=read_timeout)
        common: dict[str, Any] = {
            "transport": transport,
            "connection_timeout": CONNECT_TIMEOUT,
            "read_timeout": read_timeout,
        }
        tables = TableServiceClient.from_connection_string(
            connection_string, retry_total=SDK_RETRY_TOTAL, retry_backoff_factor=0.2,
            retry_backoff_max=1.0, **common)
        # The storage policies annotate these as int, but any number works.
        linear: dict[str, Any] = {"backoff": SDK_BACKOFF, "retry_total": SDK_RETRY_TOTAL,
                                  "random_jitter_range": SDK_JITTER}
        blobs = _with_api_version(BlobServiceClient.from_connection_string,
                                  connection_string, retry_policy=BlobLinearRetry(**linear),
                                  **common)
        queue_kwargs: dict[str, Any] = dict(common)
        if _QueueRetry is not None:
            queue_kwargs["retry_policy"] = _QueueRetry(**linear)
        else:  # pragma: no cover
            queue_kwargs.update(initial_backoff=0.0, increment_base=1,
                                retry_total=SDK_RETRY_TOTAL, random_jitter_range=SDK_JITTER)
        queues = _with_api_version(QueueServiceClient.from_connection_string,
                                   connection_string, **queue_kwargs)
    except ValueError as exc:
        await session.close()
        raise StorageError(f"Invalid storage connection string: {exc}") from exc
    except BaseException:
        await session.close()
        raise
    services.update(_services_by_origin(tables.url, queues.url, blobs.url))
    return StorageClients(tables=tables, queues=queues, blobs=blobs, session=session,
                          lean_queues=_lean_queues(queues, session, read_timeout))


def _lean_queues(queues: QueueServiceClient, session: aiohttp.ClientSession,
                 timeout: float) -> LeanQueues | None:
    credential = getattr(queues, "credential", None)
    account = getattr(credential, "account_name", None)
    key = getattr(credential, "account_key", None)
    if not account or not key or os.environ.get(LEAN_ENV, "1") == "0":
        return None
    return LeanQueues(session, queues.url.split("?")[0], account, key, timeout=timeout)


def _with_api_version(factory: Callable[..., T], connection_string: str, **kwargs: Any) -> T:
    try:
        return factory(connection_string, api_version=SERVICE_API_VERSION, **kwargs)
    except ValueError as exc:
        if "api_version" not in str(exc).lower() and "api version" not in str(exc).lower():
            raise
        # An SDK that does not know this version: let it use its own default.
        return factory(connection_string, **kwargs)


# -- request counting ---------------------------------------------------------------------

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
            origin = f"{url.scheme}://{url.host}:{url.port}".lower()
            service, base = services.get(origin, ("storage", ""))
            path = url.raw_path
            if base and path.startswith(base):
                path = path[len(base):]
            return request_operation(service, method, path, url.raw_query_string)

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


def _services_by_origin(table_url: str, queue_url: str,
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


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: the request may succeed if sent again."""
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        return status is not None and (status >= 500 or status in _TRANSIENT_STATUS)
    return isinstance(exc, (ServiceRequestError, ServiceResponseError, aiohttp.ClientError,
                            asyncio.TimeoutError, ConnectionError))


async def with_retries(op: Callable[[], Awaitable[T]], *, what: str, deadline: float) -> T:
    """Run `op` until it succeeds, retrying transient errors until `deadline`.

    `deadline` is an instant on the `time.monotonic()` clock. `op` runs at least once.
    Errors that carry meaning (4xx such as 404, 409, 412) are raised at once, unchanged;
    transient ones turn into `StorageError` once the deadline leaves no time to retry.
    """
    start = time.monotonic()
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        try:
            return await op()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            pause = delay * random.uniform(0.75, 1.25)
            if now + pause > deadline:
                raise StorageError(
                    f"Azure Storage did not complete {what} within {now - start:.1f} s "
                    f"({attempt} attempt{'s' if attempt > 1 else ''}); last error: "
                    f"{describe_error(exc)}") from exc
            log.debug("%s failed (attempt %d), retrying in %.2f s: %s", what, attempt,
                      pause, describe_error(exc))
            await asyncio.sleep(pause)
            delay = min(delay * 2, 1.0)


def describe_error(exc: BaseException) -> str:
    """One line about a storage error, for logs and error messages."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None)
        first = (exc.message or str(exc)).strip().splitlines()
        text = first[0] if first else ""
        return f"HTTP {exc.status_code} {code or ''} {text}".replace("  ", " ").strip()
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
