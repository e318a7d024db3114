"""Every storage operation of the Azure task hub goes through `Operations.run`: fault
injection (tests), retries of transient errors until a deadline, and one error type
(StorageError) for what is left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import AzureError

from runtime.clock import Clock
from runtime.errors import StorageError
from runtime.storage import faults
from runtime.storage.retries import describe_error, with_retries

T = TypeVar("T")

# Longer than an Azurite stall (queue garbage collection can freeze it for seconds).
OPERATION_TIMEOUT = 60.0


class Operations:
    def __init__(self, clock: Clock, timeout: float = OPERATION_TIMEOUT) -> None:
        self.clock = clock
        self.timeout = timeout

    async def run(self, op: Callable[[], Awaitable[T]], what: str, *,
                  keep: tuple[type[Exception], ...] = ()) -> T:
        """`op` with retries until the deadline; unexpected storage errors become
        StorageError ("Azure Storage failed <what>: ..."); `keep` passes through."""
        faults.active.before_request(what)
        try:
            return await with_retries(op, what=what,
                                      deadline=self.clock.monotonic() + self.timeout)
        except keep:
            raise
        except AzureError as exc:
            raise as_storage_error(what, exc) from exc


def as_storage_error(what: str, exc: BaseException) -> StorageError:
    return StorageError(f"Azure Storage failed {what}: {describe_error(exc)}")


__all__ = ["OPERATION_TIMEOUT", "Operations", "as_storage_error"]
