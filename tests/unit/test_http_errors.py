"""runtime/http/errors.py: every error becomes its response by the nearest class of its
hierarchy in HANDLERS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from runtime.errors import (
    BindingError,
    CheckpointConflict,
    DurableError,
    FunctionInvocationError,
    HostError,
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidArgument,
    InvalidInstanceId,
    InvocationTimeout,
    StartTimeout,
    StorageError,
    StorageUnavailable,
    UnknownFunction,
    WorkerDied,
    WorkerError,
)
from runtime.http.errors import (
    INTERNAL_MESSAGE,
    argument_error,
    error_response,
    json_response,
)


def body_of(response: web.Response) -> Any:
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    return json.loads(response.body)


class OddArgument(InvalidArgument):
    """A subclass with no entry of its own answers like InvalidArgument."""


class OddTimeout(InvocationTimeout):
    pass


class NewHostError(HostError):
    pass


@pytest.mark.parametrize("exc", [
    InvalidArgument("'top' must be an integer: 'x'."),
    InvalidInstanceId("Instance ID must not be empty or whitespace."),
    UnknownFunction("The function 'x' doesn't exist."),
    OddArgument("an odd argument"),
])
def test_invalid_arguments_answer_400_with_the_exception_message(exc: Exception) -> None:
    response = error_response(exc)
    assert response.status == 400
    assert body_of(response) == {"Message": "One or more of the arguments submitted is incorrect",
                                 "ExceptionMessage": str(exc),
                                 "ExceptionType": "System.ArgumentException",
                                 "StackTrace": None}


def test_instance_exists_answers_500_with_the_backends_exception() -> None:
    response = error_response(InstanceExists("i1", "Running"))
    assert response.status == 500
    assert body_of(response) == {
        "Message": INTERNAL_MESSAGE,
        "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
        "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
        "StackTrace": None}


@pytest.mark.parametrize(("exc", "status"), [
    (InstanceNotFound("i1"), 404),
    (InstanceNotRunning("i1", "Completed"), 410),
    (FunctionInvocationError("f", "ValueError", "bad", "Traceback"), 500),
])
def test_empty_answers(exc: Exception, status: int) -> None:
    response = error_response(exc)
    assert response.status == status
    assert response.body is None or response.body == b""


@pytest.mark.parametrize(("exc", "status"), [
    (InvocationTimeout("f", 90), 500),
    (OddTimeout("f", 3725), 500),
    (WorkerDied(12, 1), 500),
    (WorkerError("The worker process did not start."), 503),
])
def test_worker_errors_answer_with_their_message_as_text(exc: Exception, status: int) -> None:
    response = error_response(exc)
    assert response.status == status
    assert response.text == str(exc)


def test_timeout_message_wording() -> None:
    assert error_response(InvocationTimeout("f", 3725)).text == \
        "Timeout value of 01:02:05 was exceeded by function: Functions.f"


@pytest.mark.parametrize("exc", [
    NewHostError("something new"),
    CheckpointConflict("i1"),
    StartTimeout(30),
    BindingError("no binding"),
    DurableError("durable trouble"),
    RuntimeError("not even ours"),
])
def test_anything_else_is_a_500_something_went_wrong(exc: Exception) -> None:
    response = error_response(exc)
    assert response.status == 500
    assert body_of(response) == {
        "Message": "Something went wrong while processing your request",
        "ExceptionMessage": str(exc), "ExceptionType": type(exc).__name__,
        "StackTrace": None}
    assert INTERNAL_MESSAGE == "Something went wrong while processing your request"


def test_json_response_keeps_nulls_and_headers() -> None:
    response = json_response(202, {"a": None, "b": [1]}, {"Retry-After": "5"})
    assert response.status == 202
    assert response.headers["Retry-After"] == "5"
    assert body_of(response) == {"a": None, "b": [1]}
    assert body_of(json_response(200, None)) is None


def test_argument_error_with_its_own_type() -> None:
    response = argument_error("Invalid JSON content.", "Newtonsoft.Json.JsonReaderException")
    assert response.status == 400
    assert body_of(response)["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
    assert body_of(response)["ExceptionMessage"] == "Invalid JSON content."


@pytest.mark.parametrize("exc", [StorageError("Azure Storage did not complete x"),
                                 StorageUnavailable(10)])
def test_storage_out_of_reach_is_a_503_saying_so(exc: Exception) -> None:
    response = error_response(exc)
    assert response.status == 503
    assert json.loads(response.text or "") == {"Message": str(exc)}
