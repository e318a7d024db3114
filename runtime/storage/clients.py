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

Request counting (`stats.py`) and retries of what the SDKs do not retry (`retries.py`)
live beside this module; together they are the storage layer that the durable runtime,
triggers and the CLI share.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.blob.aio import LinearRetry as BlobLinearRetry
from azure.storage.queue.aio import QueueServiceClient

from runtime import console
from runtime.errors import StorageError
from runtime.storage import stats
from runtime.storage.leanqueue import LeanQueues
from runtime.storage.queueops import QueueOps, SdkQueues

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



@dataclass(frozen=True)
class StorageClients:
    """The three service clients over one shared HTTP session. Close it once, at shutdown."""

    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    session: aiohttp.ClientSession
    # The hot queue operations: signed plain requests with an account key, else the SDK.
    queue_ops: QueueOps

    def request_counts(self) -> dict[str, int] | None:
        """The process's storage request counts (see `stats.storage_stats`)."""
        return stats.storage_stats()

    async def close(self) -> None:
        # The transport does not own the session, so closing the clients leaves it to us.
        if isinstance(self.queue_ops, SdkQueues):
            await self.queue_ops.close()
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

    `count_requests` adds the session's requests to `stats.storage_stats()`; by default
    it follows the FUNCLOCAL_STORAGE_STATS environment variable. Raises StorageError for
    a connection string the SDKs cannot use.
    """
    if count_requests is None:
        count_requests = stats.counting_enabled()
    services: dict[str, tuple[str, str]] = {}  # filled in once the clients exist
    traces = stats.trace_configs(services) if count_requests else []
    request_log = console.get("storage")
    if request_log.isEnabledFor(logging.DEBUG):  # --verbose: every request and its time
        traces.append(stats.logging_trace_config(services, request_log))
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
    services.update(stats.services_by_origin(tables.url, queues.url, blobs.url))
    lean = _lean_queues(queues, session, read_timeout)
    return StorageClients(tables=tables, queues=queues, blobs=blobs, session=session,
                          queue_ops=lean if lean is not None else SdkQueues(queues))


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


__all__ = ["LEAN_ENV", "SERVICE_API_VERSION", "StorageClients", "open_storage"]
