"""Turn an invoke message into a call of user code, and its result into a reply value.

Inputs arrive keyed by binding name. Conversions use azure-functions' own converters
for the durable triggers, so user code sees exactly what the Python worker gives it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import (
    ActivityTriggerConverter,
    EnitityTriggerConverter,
    OrchestrationTriggerConverter,
)
from azure.functions.http import HttpRequestConverter

from runtime.worker.child import logs, replay_check
from runtime.worker.child.http_response import encode_http_response
from runtime.worker.child.loader import LoadedFunction
from runtime.worker.child.orchestrations import OrchestratorRunner
from runtime.worker.protocol import HttpRequestData


class _TraceContext(func._abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func._abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` parameter of a user function."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()
        self._trace_context = _TraceContext()
        self._retry_context = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return self._trace_context

    @property
    def retry_context(self) -> Any:
        return self._retry_context


def _binding_type(binding: dict[str, Any]) -> str:
    return str(binding.get("type", "")).lower()


def _is_input(binding: dict[str, Any]) -> bool:
    return str(binding.get("direction", "IN")).upper() in ("IN", "INOUT")


def build_http_request(data: dict[str, Any]) -> func.HttpRequest:
    """The request exactly as the worker builds it: azure-functions'
    HttpRequestConverter.decode over the RpcHttp datum, with the body as bytes (the
    Python worker asks the host for raw body bytes, whatever the content type), so
    `get_json()` raises ValueError('HTTP request does not contain valid JSON data')."""
    request = HttpRequestData.from_json(data)
    value = {
        "method": meta.Datum(type="string", value=request.method),
        "url": meta.Datum(type="string", value=request.url),
        "headers": {k: meta.Datum(type="string", value=v) for k, v in request.headers.items()},
        "query": {k: meta.Datum(type="string", value=v) for k, v in request.params.items()},
        "params": {k: meta.Datum(type="string", value=v)
                   for k, v in request.route_params.items()},
        "body": meta.Datum(type="bytes", value=request.body),
    }
    decoded: func.HttpRequest = HttpRequestConverter.decode(
        meta.Datum(type="http", value=value), trigger_metadata=None)
    return decoded


def convert_input(binding: dict[str, Any], value: Any) -> Any:
    kind = _binding_type(binding)
    if kind == "httptrigger":
        return build_http_request(value)
    if kind == "orchestrationtrigger":
        return OrchestrationTriggerConverter.decode(
            meta.Datum(type="string", value=value), trigger_metadata=None)
    if kind == "activitytrigger":
        return ActivityTriggerConverter.decode(
            meta.Datum(type="json", value=value), trigger_metadata=None)
    if kind == "entitytrigger":
        return EnitityTriggerConverter.decode(
            meta.Datum(type="string", value=value), trigger_metadata=None)
    return value  # durableClient and plain values pass through as given


def trigger_binding(function: LoadedFunction) -> dict[str, Any] | None:
    for binding in function.bindings:
        if _binding_type(binding).endswith("trigger"):
            return binding
    return None


def encode_result(function: LoadedFunction, result: Any) -> dict[str, Any]:
    """Describe a return value for the host: an HTTP response, JSON text, or nothing."""
    trigger = trigger_binding(function)
    kind = _binding_type(trigger) if trigger else ""
    if kind == "httptrigger":
        return encode_http_response(result)
    if kind == "activitytrigger":
        datum = ActivityTriggerConverter.encode(result, expected_type=None)
        return {"kind": "json", "text": datum.value}
    if kind in ("orchestrationtrigger", "entitytrigger"):
        if not isinstance(result, str):
            raise TypeError(f"{kind} function returned {type(result).__name__}, expected str")
        return {"kind": "json", "text": result}
    return {"kind": "none"}


async def run(function: LoadedFunction, message: dict[str, Any],
              executor: concurrent.futures.Executor,
              orchestrations: OrchestratorRunner | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = message.get("inputs") or {}
    kwargs: dict[str, Any] = {}
    for binding in function.bindings:
        name = str(binding.get("name"))
        if name == "$return" or not _is_input(binding):
            continue
        kwargs[name] = convert_input(binding, inputs.get(name))
    if function.wants_context:
        kwargs["context"] = InvocationContext(
            message.get("invocation_id", ""), function.name, message.get("script_root", ""))
    trigger = trigger_binding(function)
    # Log records name the function (each invocation runs in its own task's context;
    # threads run in a copy of it).
    logs.current_function.set(function.name)
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    if message.get("mode") == replay_check.MODE:
        if trigger is None or function.is_async or \
                _binding_type(trigger) != "orchestrationtrigger":
            raise TypeError(f"'{function.name}' is not an orchestrator function; only "
                            "orchestrators can be replayed")
        checked: dict[str, Any] = await loop.run_in_executor(
            executor, context.run, functools.partial(
                replay_check.run, function.user_function, kwargs))
        return checked
    if orchestrations is not None and trigger is not None and not function.is_async \
            and _binding_type(trigger) == "orchestrationtrigger":
        result = await loop.run_in_executor(executor, context.run, functools.partial(
            orchestrations.run, function.user_function, kwargs, str(trigger.get("name"))))
    elif function.is_async:
        result = await function.user_function(**kwargs)
    else:
        result = await loop.run_in_executor(
            executor, context.run, functools.partial(function.user_function, **kwargs))
    return encode_result(function, result)
