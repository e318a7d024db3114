"""Retrying storage operations through Azurite's stalls (and a real account's throttling).

The storage SDKs retry idempotent requests themselves, with short backoffs set in
`clients.py`; what they do not retry (table MERGE and batch POST, which are not
idempotent) and what outlasts their retries goes through `with_retries`, bounded by a
deadline on the `time.monotonic()` clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from runtime.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_STATUS = frozenset({408, 429})
FIRST_PAUSE = 0.2  # seconds, +- 25 % jitter
MAX_PAUSE = 1.0


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: the request may succeed if sent again (5xx, 408,
    429, connection resets and timeouts)."""
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
    delay = FIRST_PAUSE
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
            delay = min(delay * 2, MAX_PAUSE)


def describe_error(exc: BaseException) -> str:
    """One line about a storage error, for logs and error messages."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None)
        first = (exc.message or str(exc)).strip().splitlines()
        text = first[0] if first else ""
        return f"HTTP {exc.status_code} {code or ''} {text}".replace("  ", " ").strip()
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


__all__ = ["describe_error", "is_transient", "with_retries"]
