"""The Durable Functions HTTP management API.

Served at /runtime/webhooks/durabletask/ on the public port and at the loopback RPC
endpoint (`rpcBaseUrl`) that the SDK's DurableOrchestrationClient calls. Status codes,
headers and JSON field names follow the extension's HttpApiHandler.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from runtime import logs
from runtime.durable.client import (
    TERMINAL_STATES,
    DurableClient,
    InstanceQuery,
    management_urls,
)
from runtime.errors import (
    DurableError,
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidArgument,
    StorageError,
)

log = logs.get("durable.api")

RUNNING_RETRY_AFTER = "5"
START_RETRY_AFTER = "10"
CONTINUATION_HEADER = "x-ms-continuation-token"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


def _argument_error(message: str, exc_type: str = "System.ArgumentException") -> web.Response:
    return _json(400, {"Message": "One or more of the arguments submitted is incorrect",
                       "ExceptionMessage": message, "ExceptionType": exc_type,
                       "StackTrace": None})


def error_response(exc: Exception) -> web.Response:
    """The one place that maps durable errors to HTTP."""
    if isinstance(exc, InstanceNotFound):
        return web.Response(status=404)
    if isinstance(exc, InstanceNotRunning):
        return web.Response(status=410)
    if isinstance(exc, InstanceExists):
        return _argument_error(str(exc), "System.InvalidOperationException")
    if isinstance(exc, InvalidArgument):
        return _argument_error(str(exc))
    log.error("Durable HTTP API request failed: %s", exc)
    return _json(500, {"Message": "Something went wrong while processing your request",
                       "ExceptionMessage": str(exc), "ExceptionType": type(exc).__name__,
                       "StackTrace": None})


def _flag(request: web.Request, name: str, default: bool) -> bool:
    for key, value in request.query.items():
        if key.lower() == name.lower():
            return value.strip().lower() == "true"
    return default


def _param(request: web.Request, name: str) -> str | None:
    for key, value in request.query.items():
        if key.lower() == name.lower():
            return value
    return None


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"'{name}' is not a valid date and time: '{value}'.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _segments(request: web.Request, prefix: str) -> list[str]:
    raw = request.rel_url.raw_path
    lowered = raw.lower()
    index = lowered.find(prefix.lower())
    rest = raw[index + len(prefix):] if index >= 0 else raw
    parts = rest.split("/")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    return [unquote(p) for p in parts]


class DurableApi:
    def __init__(self, client: DurableClient, *, hub_name: str,
                 key: str | None = None) -> None:
        self.client = client
        self.hub_name = hub_name
        self.key = key
        self.rpc_runner: web.AppRunner | None = None
        self.rpc_base_url = ""

    # -- the loopback RPC endpoint -------------------------------------------------

    async def start_rpc(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/durabletask/{tail:.*}", self._rpc)
        self.rpc_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.rpc_runner.setup()
        site = web.TCPSite(self.rpc_runner, host, port, shutdown_timeout=5.0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.rpc_base_url = f"http://{host}:{bound}/durabletask/"
        log.info("Opened local http RPC endpoint: %s", self.rpc_base_url)
        return self.rpc_base_url

    async def stop_rpc(self) -> None:
        if self.rpc_runner is not None:
            await self.rpc_runner.cleanup()
            self.rpc_runner = None

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, "/durabletask/")

    async def public(self, request: web.Request, _subpath: str) -> web.StreamResponse:
        return await self.handle(request, "/runtime/webhooks/durabletask/")

    # -- routing -------------------------------------------------------------------

    async def handle(self, request: web.Request, prefix: str) -> web.StreamResponse:
        parts = _segments(request, prefix)
        method = request.method.upper()
        try:
            if parts and parts[0].lower() == "orchestrators" and len(parts) in (2, 3):
                if method != "POST":
                    return web.Response(status=404)
                return await self._start(request, parts[1], parts[2] if len(parts) == 3 else None)
            if parts and parts[0].lower() == "instances":
                return await self._instances(request, method, parts[1:])
        except DurableError as exc:
            return error_response(exc)
        except StorageError as exc:
            return error_response(exc)
        return web.Response(status=404)

    async def _instances(self, request: web.Request, method: str,
                         rest: list[str]) -> web.StreamResponse:
        if not rest or rest == [""]:
            if method == "GET":
                return await self._list(request)
            if method == "DELETE":
                return await self._purge_by(request)
            return web.Response(status=404)
        instance_id = rest[0]
        if len(rest) == 1:
            if method == "GET":
                return await self._status(request, instance_id)
            if method == "DELETE":
                deleted = await self.client.purge(instance_id)
                if not deleted:
                    return web.Response(status=404)
                return _json(200, {"instancesDeleted": deleted})
            return web.Response(status=404)
        operation = rest[1].lower()
        if method != "POST":
            return web.Response(status=404)
        if operation == "raiseevent" and len(rest) == 3:
            return await self._raise_event(request, instance_id, rest[2])
        if operation == "terminate" and len(rest) == 2:
            await self.client.terminate(instance_id, _param(request, "reason") or "")
            return web.Response(status=202)
        if operation in ("suspend", "resume", "rewind", "restart") and len(rest) == 2:
            return _json(501, {"Message": f"The '{operation}' operation is not supported by "
                               "funclocal yet."})
        return web.Response(status=404)

    # -- operations ----------------------------------------------------------------

    def _check_status_payload(self, request: web.Request, instance_id: str) -> dict[str, str]:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if request.headers.get("Host"):
            origin = f"{request.url.scheme}://{request.headers['Host']}"
        urls = management_urls(origin, self.hub_name, instance_id, self.key)
        urls.pop("rewindPostUri", None)  # the start API's payload has no rewind URL
        return urls

    async def _start(self, request: web.Request, name: str,
                     instance_id: str | None) -> web.StreamResponse:
        body = await request.read()
        input_text: str | None = None
        if body.strip():
            try:
                input_text = json.dumps(json.loads(body), separators=(",", ":"),
                                        ensure_ascii=False)
            except (ValueError, UnicodeDecodeError) as exc:
                return _argument_error(f"Invalid JSON content: {exc}",
                                       "Newtonsoft.Json.JsonReaderException")
        started = await self.client.start_new(name, instance_id, input_text)
        payload = self._check_status_payload(request, started)
        timeout = _param(request, "timeout")
        if timeout:
            waited = await self._wait(request, started, timeout)
            if waited is not None:
                return waited
        return _json(202, payload, {"Location": payload["statusQueryGetUri"],
                                    "Retry-After": START_RETRY_AFTER})

    async def _wait(self, request: web.Request, instance_id: str,
                    timeout_text: str) -> web.StreamResponse | None:
        try:
            timeout = float(timeout_text)
            interval = float(_param(request, "pollingInterval") or 1)
        except ValueError:
            raise InvalidArgument("'timeout' and 'pollingInterval' must be numbers.") from None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.client.get_status(instance_id)
            if status is not None and status["runtimeStatus"] == "Completed":
                return _json(200, status["output"])
            if status is not None and status["runtimeStatus"] in TERMINAL_STATES:
                return _json(200, status)
            if asyncio.get_running_loop().time() + interval > deadline:
                return None
            await asyncio.sleep(max(0.05, interval))

    async def _status(self, request: web.Request, instance_id: str) -> web.StreamResponse:
        status = await self.client.get_status(
            instance_id, show_history=_flag(request, "showHistory", False),
            show_history_output=_flag(request, "showHistoryOutput", False),
            show_input=_flag(request, "showInput", True))
        if status is None:
            return web.Response(status=404)
        runtime_status = status["runtimeStatus"]
        if runtime_status == "Failed" and _flag(request, "returnInternalServerErrorOnFailure",
                                                False):
            return _json(500, status)
        if runtime_status in ("Completed", "Failed", "Terminated", "Canceled"):
            return _json(200, status)
        return _json(202, status, {"Location": str(request.url),
                                   "Retry-After": RUNNING_RETRY_AFTER})

    async def _list(self, request: web.Request) -> web.StreamResponse:
        statuses = _param(request, "runtimeStatus")
        top = _param(request, "top")
        try:
            top_value = int(top) if top else None
        except ValueError:
            raise InvalidArgument(f"'top' must be an integer: '{top}'.") from None
        query = InstanceQuery(
            created_from=_parse_time(_param(request, "createdTimeFrom"), "createdTimeFrom"),
            created_to=_parse_time(_param(request, "createdTimeTo"), "createdTimeTo"),
            statuses=[s.strip() for s in statuses.split(",") if s.strip()] if statuses else None,
            prefix=_param(request, "instanceIdPrefix"),
            top=top_value,
            continuation=request.headers.get(CONTINUATION_HEADER) or None,
            show_input=_flag(request, "showInput", False))
        items, token = await self.client.list_instances(query)
        headers = {CONTINUATION_HEADER: token} if token else None
        return _json(200, items, headers)

    async def _purge_by(self, request: web.Request) -> web.StreamResponse:
        created_from = _parse_time(_param(request, "createdTimeFrom"), "createdTimeFrom")
        if created_from is None:
            return _argument_error("Please provide value for 'createdTimeFrom' parameter.")
        statuses = _param(request, "runtimeStatus")
        deleted = await self.client.purge_by(
            created_from, _parse_time(_param(request, "createdTimeTo"), "createdTimeTo"),
            [s.strip() for s in statuses.split(",") if s.strip()] if statuses else None)
        if not deleted:
            return web.Response(status=404)
        return _json(200, {"instancesDeleted": deleted})

    async def _raise_event(self, request: web.Request, instance_id: str,
                           event_name: str) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        if body and "json" not in content_type.lower():
            return _argument_error("Only application/json request content is supported")
        try:
            data = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            return _argument_error("Invalid JSON content.")
        await self.client.raise_event(instance_id, event_name,
                                      json.dumps(data, separators=(",", ":"), ensure_ascii=False))
        return web.Response(status=202)
