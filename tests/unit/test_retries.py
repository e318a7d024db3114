"""runtime/storage/retries.py: which storage errors are retried, until when, and how a
failure is described."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from runtime.errors import StorageError
from runtime.storage.retries import FIRST_PAUSE, describe_error, is_transient, with_retries


def http_error(status: int | None, message: str = "The server is busy.",
               code: str | None = None) -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = status
    if code is not None:
        error.error_code = code  # type: ignore[attr-defined]
    return error


class Flaky:
    """An operation that fails with the given errors, in turn, then returns 'done'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


@pytest.mark.parametrize("error", [
    ServiceRequestError("Cannot connect to host 127.0.0.1:10001"),
    http_error(503),
])
async def test_a_transient_error_is_retried_until_success(error: Exception) -> None:
    op = Flaky(error)
    started = time.monotonic()
    assert await with_retries(op, what="the queue receive", deadline=soon(10)) == "done"
    assert op.calls == 2
    assert time.monotonic() - started >= FIRST_PAUSE * 0.75 - 0.01


async def test_several_transient_errors_in_a_row() -> None:
    op = Flaky(http_error(500), ServiceResponseError("reset"))
    assert await with_retries(op, what="x", deadline=soon(10)) == "done"
    assert op.calls == 3


async def test_success_at_once_is_not_delayed() -> None:
    op = Flaky()
    started = time.monotonic()
    assert await with_retries(op, what="x", deadline=soon(10)) == "done"
    assert op.calls == 1
    assert time.monotonic() - started < FIRST_PAUSE / 2


async def test_an_operation_runs_once_even_past_its_deadline() -> None:
    op = Flaky()
    assert await with_retries(op, what="x", deadline=time.monotonic() - 5) == "done"
    assert op.calls == 1


@pytest.mark.parametrize("error", [
    http_error(404, "The specified queue does not exist."),
    http_error(409), http_error(412), http_error(400),
    ResourceNotFoundError("gone"),
    ValueError("not storage at all"),
])
async def test_a_meaningful_error_is_raised_at_once_unchanged(error: Exception) -> None:
    op = Flaky(error)
    with pytest.raises(type(error)) as caught:
        await with_retries(op, what="x", deadline=soon(10))
    assert caught.value is error
    assert op.calls == 1


async def test_a_deadline_too_close_to_retry_gives_a_storage_error() -> None:
    error = http_error(503, "The server is busy.\nRequestId: 123", code="ServerBusy")
    op = Flaky(error, error, error)
    with pytest.raises(StorageError) as caught:
        await with_retries(op, what="the history transaction", deadline=soon(0.05))
    assert op.calls == 1
    message = str(caught.value)
    assert message.startswith("Azure Storage did not complete the history transaction within ")
    assert "(1 attempt); last error: HTTP 503 ServerBusy The server is busy." in message
    assert message.endswith("The server is busy.")
    assert caught.value.__cause__ is error


async def test_a_deadline_reached_after_retries_counts_the_attempts() -> None:
    op = Flaky(*(ServiceRequestError(f"refused {n}") for n in range(10)))
    with pytest.raises(StorageError) as caught:
        await with_retries(op, what="the Instances merge", deadline=soon(FIRST_PAUSE * 1.3))
    assert op.calls == 2
    assert "(2 attempts); last error: ServiceRequestError: refused 1" in str(caught.value)


@pytest.mark.parametrize(("error", "transient"), [
    (http_error(500), True),
    (http_error(502), True),
    (http_error(503), True),
    (http_error(504), True),
    (http_error(408), True),
    (http_error(429), True),
    (http_error(400), False),
    (http_error(403), False),
    (http_error(404), False),
    (http_error(409), False),
    (http_error(412), False),
    (http_error(None), False),
    (ResourceExistsError("exists"), False),
    (ServiceRequestError("no connection"), True),
    (ServiceResponseError("reset"), True),
    (aiohttp.ClientConnectionError("refused"), True),
    (aiohttp.ServerDisconnectedError(), True),
    (asyncio.TimeoutError(), True),
    (ConnectionResetError("reset by peer"), True),
    (ConnectionRefusedError(), True),
    (ValueError("x"), False),
    (StorageError("already ours"), False),
    (KeyError("x"), False),
])
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: http_error(404, "The specified queue does not exist.\nRequestId:abc\nTime:x",
                        code="QueueNotFound"),
     "HTTP 404 QueueNotFound The specified queue does not exist."),
    (lambda: http_error(503, "Busy"), "HTTP 503 Busy"),
    (lambda: ConnectionResetError("Connection reset by peer\nmore"),
     "ConnectionResetError: Connection reset by peer"),
    (lambda: asyncio.TimeoutError(), "TimeoutError"),
    (lambda: ServiceRequestError("Cannot connect"), "ServiceRequestError: Cannot connect"),
])
def test_describe_error_is_one_line(make: Callable[[], BaseException], expected: str) -> None:
    text = describe_error(make())
    assert text == expected
    assert "\n" not in text
