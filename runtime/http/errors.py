"""The one place where errors become HTTP responses.

`error_response` walks the exception's class hierarchy over `HANDLERS` (as Starlette's
exception middleware does), so a subclass answers like its base unless it has an entry
of its own. The durable API's shapes are the extension's HttpApiHandler: 404 and 410
with an empty body, 400 with the ArgumentException JSON, 500 "Something went wrong".
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
    WorkerDied,
    WorkerError,
)

log = console.get("http")

ARGUMENT_MESSAGE = "One or more of the arguments submitted is incorrect"
INTERNAL_MESSAGE = "Something went wrong while processing your request"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON body as the extension writes it (nulls kept)."""
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


def argument_error(message: str, exc_type: str = "System.ArgumentException") -> web.Response:
    """The extension's 400 for an ArgumentException."""
    return json_response(400, {"Message": ARGUMENT_MESSAGE, "ExceptionMessage": message,
                               "ExceptionType": exc_type, "StackTrace": None})


def _invalid_operation(exc: Exception) -> web.Response:
    return json_response(500, {"Message": INTERNAL_MESSAGE, "ExceptionMessage": str(exc),
                               "ExceptionType": "System.InvalidOperationException",
                               "StackTrace": None})


def _restart_unknown(exc: Exception) -> web.Response:
    return json_response(400, {"Message": "InstanceId does not match a valid orchestration "
                                          "instance.",
                               "ExceptionMessage": str(exc),
                               "ExceptionType": "System.ArgumentException", "StackTrace": None})


def _empty(status: int) -> Callable[[Exception], web.Response]:
    return lambda exc: web.Response(status=status)


def _internal(exc: Exception) -> web.Response:
    log.error("Request failed: %s", exc)
    return json_response(500, {"Message": INTERNAL_MESSAGE, "ExceptionMessage": str(exc),
                               "ExceptionType": type(exc).__name__, "StackTrace": None})


def _text(status: int) -> Callable[[Exception], web.Response]:
    return lambda exc: web.Response(status=status, text=str(exc))


HANDLERS: dict[type[Exception], Callable[[Exception], web.Response]] = {
    InstanceNotFound: _empty(404),
    InstanceNotRunning: _empty(410),
    InstanceExists: lambda exc: argument_error(str(exc), "System.InvalidOperationException"),
    RestartUnknown: _restart_unknown,
    InvalidArgument: lambda exc: argument_error(str(exc)),
    InvalidOperation: _invalid_operation,
    # A function that raised: its traceback is already in the console (the pool logs it).
    FunctionInvocationError: _empty(500),
    InvocationTimeout: _text(500),
    WorkerDied: _text(500),
    WorkerError: _text(503),
    HostError: _internal,
}


def error_response(exc: Exception) -> web.Response:
    """The response for `exc`, by the nearest class in HANDLERS (500 otherwise)."""
    for cls in type(exc).__mro__:
        handler = HANDLERS.get(cls)
        if handler is not None:
            return handler(exc)
    return _internal(exc)


__all__ = ["HANDLERS", "argument_error", "error_response", "json_response"]
