"""The one place where errors become HTTP responses.

`error_response` walks the exception's class hierarchy over `HANDLERS` (as Starlette's
exception middleware does), so a subclass answers like its base unless it has an entry
of its own. The durable API's shapes are the extension's HttpApiHandler: 404 and 410
with an empty body, 400 with the ArgumentException JSON, 500 "Something went wrong" (an
instance that already exists is a 500 too: the storage backend's exception).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from runtime import console
from runtime.errors import (
    FunctionInvocationError,
    HostError,
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidArgument,
    InvalidOperation,
    InvocationTimeout,
    RestartUnknown,
    StorageError,
    WorkerDied,
    WorkerError,
)

log = console.get("http")

ARGUMENT_MESSAGE = "One or more of the arguments submitted is incorrect"
INTERNAL_MESSAGE = "Something went wrong while processing your request"
RESTART_MESSAGE = "InstanceId does not match a valid orchestration instance."


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON body as the extension writes it (HttpRequestMessageExtensions.CreateResponse:
    `JsonConvert.SerializeObject`, compact, nulls kept, non-ASCII as is) with
    `Content-Type: application/json; charset=utf-8`."""
    return web.Response(status=status,
                        text=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                        content_type="application/json", headers=headers)


def error_body(status: int, message: str, exception_message: str | None = None,
               exc_type: str = "System.ArgumentException") -> web.Response:
    """CreateErrorResponse: `{"Message"}` alone (two arguments), or with the exception's
    `ExceptionMessage`, `ExceptionType` and `StackTrace` (three; no stack trace here)."""
    if exception_message is None:
        return json_response(status, {"Message": message})
    return json_response(status, {"Message": message, "ExceptionMessage": exception_message,
                                  "ExceptionType": exc_type, "StackTrace": None})


def argument_error(message: str, exc_type: str = "System.ArgumentException") -> web.Response:
    """HandleRequestAsync's 400 for an ArgumentException that reached it."""
    return error_body(400, ARGUMENT_MESSAGE, message, exc_type)


def internal_error(message: str, exc_type: str) -> web.Response:
    """HandleRequestAsync's 500 for any other exception."""
    return error_body(500, INTERNAL_MESSAGE, message, exc_type)


def restart_error(message: str) -> web.Response:
    """HandleRestartInstanceRequestAsync's own 400 for an ArgumentException."""
    return error_body(400, RESTART_MESSAGE, message)


def _invalid_operation(exc: Exception) -> web.Response:
    return internal_error(str(exc), "System.InvalidOperationException")


def _instance_exists(exc: Exception) -> web.Response:
    # AzureStorageOrchestrationService.CreateTaskOrchestrationAsync throws it (the
    # extension sets ThrowExceptionOnInvalidDedupeStatus); not an ArgumentException.
    return internal_error(str(exc),
                          "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")


def _empty(status: int) -> Callable[[Exception], web.Response]:
    return lambda exc: web.Response(status=status)


def _internal(exc: Exception) -> web.Response:
    log.error("Request failed: %s", exc)
    return internal_error(str(exc), type(exc).__name__)


def _text(status: int) -> Callable[[Exception], web.Response]:
    return lambda exc: web.Response(status=status, text=str(exc))


HANDLERS: dict[type[Exception], Callable[[Exception], web.Response]] = {
    InstanceNotFound: _empty(404),
    InstanceNotRunning: _empty(410),
    InstanceExists: _instance_exists,
    RestartUnknown: lambda exc: restart_error(str(exc)),
    InvalidArgument: lambda exc: argument_error(str(exc)),
    InvalidOperation: _invalid_operation,
    # A function that raised: its traceback is already in the console (the pool logs it).
    FunctionInvocationError: _empty(500),
    InvocationTimeout: _text(500),
    WorkerDied: _text(500),
    WorkerError: _text(503),
    # Storage unreachable (an outage): the management call fails fast and says so.
    StorageError: lambda exc: json_response(503, {"Message": str(exc)}),
    HostError: _internal,
}


def error_response(exc: Exception) -> web.Response:
    """The response for `exc`, by the nearest class in HANDLERS (500 otherwise)."""
    for cls in type(exc).__mro__:
        handler = HANDLERS.get(cls)
        if handler is not None:
            return handler(exc)
    return _internal(exc)


__all__ = ["HANDLERS", "argument_error", "error_body", "error_response", "internal_error",
           "json_response", "restart_error"]
