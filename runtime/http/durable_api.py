"""The Durable Functions HTTP management API.

Served at /runtime/webhooks/durabletask/ on the public port and at the loopback RPC
endpoint (`rpcBaseUrl`) that the SDK's DurableOrchestrationClient calls. Routes,
status codes, headers and JSON field names follow the extension's HttpApiHandler;
errors become responses in `http/errors.py`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from aiohttp import web

from runtime import console
from runtime.durable.client import TERMINAL_STATES, DurableClient, InstanceQuery
from runtime.durable.urls import RPC_PATH, WEBHOOK_PATH, management_urls
from runtime.errors import HostError, InvalidArgument
from runtime.http.builtin import Route, Routes
from runtime.http.entity_api import EntityApi
from runtime.http.errors import argument_error, error_response, json_response
from runtime.http.params import flag, param, parse_time

log = console.get("durable.api")

RUNNING_RETRY_AFTER = "5"
START_RETRY_AFTER = "10"
CONTINUATION_HEADER = "x-ms-continuation-token"
MAX_BODY = 100 * 1024 * 1024


def _wait_options(request: web.Request) -> tuple[float, float] | None:
    """(timeout, pollingInterval) in seconds when the start should wait; InvalidArgument
    for values that are not numbers."""
    timeout = param(request, "timeout")
    if not timeout:
        return None
    try:
        return float(timeout), float(param(request, "pollingInterval") or 1)
    except ValueError:
        raise InvalidArgument("'timeout' and 'pollingInterval' must be numbers.") from None


def _statuses(request: web.Request) -> list[str] | None:
    statuses = param(request, "runtimeStatus")
    return [s.strip() for s in statuses.split(",") if s.strip()] if statuses else None


class DurableApi:
    """The management routes over one DurableClient; `key` is the host key put in the
    URLs handed to clients when auth is on."""

    def __init__(self, client: DurableClient, *, hub_name: str,
                 key: str | None = None) -> None:
        self.client = client
        self.hub_name = hub_name
        self.key = key
        self.rpc_runner: web.AppRunner | None = None
        self.rpc_base_url = ""
        self.routes = Routes([
            Route("POST", "orchestrators/{name}", self._start),
            Route("POST", "orchestrators/{name}/{instanceId}", self._start),
            Route("GET", "instances", self._list),
            Route("DELETE", "instances", self._purge_by),
            Route("GET", "instances/{instanceId}", self._status),
            Route("DELETE", "instances/{instanceId}", self._purge),
            Route("POST", "instances/{instanceId}/raiseEvent/{eventName}", self._raise_event),
            Route("POST", "instances/{instanceId}/terminate", self._terminate),
            Route("POST", "instances/{instanceId}/suspend", self._suspend),
            Route("POST", "instances/{instanceId}/resume", self._resume),
            Route("POST", "instances/{instanceId}/rewind", self._rewind),
            Route("POST", "instances/{instanceId}/restart", self._restart),
            *EntityApi(client).routes(),
        ])

    # -- the loopback RPC endpoint -------------------------------------------------

    async def start_rpc(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on loopback for the SDK's client calls; returns the rpcBaseUrl."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", RPC_PATH + "/{tail:.*}", self._rpc)
        self.rpc_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.rpc_runner.setup()
        site = web.TCPSite(self.rpc_runner, host, port, shutdown_timeout=5.0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.rpc_base_url = f"http://{host}:{bound}{RPC_PATH}/"
        log.info("Opened local http RPC endpoint: %s", self.rpc_base_url)
        return self.rpc_base_url

    async def stop_rpc(self) -> None:
        if self.rpc_runner is not None:
            await self.rpc_runner.cleanup()
            self.rpc_runner = None

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, RPC_PATH)

    async def public(self, request: web.Request) -> web.StreamResponse:
        """A request under the public webhook path."""
        return await self.handle(request, WEBHOOK_PATH)

    async def handle(self, request: web.Request, prefix: str) -> web.StreamResponse:
        try:
            return await self.routes.dispatch(request, prefix)
        except HostError as exc:
            return error_response(exc)

    # -- operations ----------------------------------------------------------------

    def _check_status_payload(self, request: web.Request, instance_id: str) -> dict[str, str]:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if request.headers.get("Host"):
            origin = f"{request.url.scheme}://{request.headers['Host']}"
        urls = management_urls(origin, self.hub_name, instance_id, self.key)
        urls.pop("rewindPostUri", None)  # the start API's payload has no rewind URL
        return urls

    async def _start(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        body = await request.read()
        input_text: str | None = None
        if body.strip():
            try:
                input_text = json.dumps(json.loads(body), separators=(",", ":"),
                                        ensure_ascii=False)
            except (ValueError, UnicodeDecodeError) as exc:
                return argument_error(f"Invalid JSON content: {exc}",
                                      "Newtonsoft.Json.JsonReaderException")
        wait = _wait_options(request)  # checked before anything is started
        started = await self.client.start_new(params["name"], params.get("instanceId"),
                                              input_text, param(request, "version"))
        return await self._started(request, started, wait)

    async def _started(self, request: web.Request, instance_id: str,
                       wait: tuple[float, float] | None) -> web.StreamResponse:
        """The check-status response for a new instance, or its result when asked to
        wait and it finished in time (CreateCheckStatusResponse, WaitForCompletion...)."""
        payload = self._check_status_payload(request, instance_id)
        if wait is not None:
            waited = await self._wait(instance_id, *wait)
            if waited is not None:
                return waited
        return json_response(202, payload, {"Location": payload["statusQueryGetUri"],
                                            "Retry-After": START_RETRY_AFTER})

    async def _wait(self, instance_id: str, timeout: float,
                    interval: float) -> web.StreamResponse | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = await self.client.get_status(instance_id)
            if status is not None and status["runtimeStatus"] == "Completed":
                return json_response(200, status["output"])
            if status is not None and status["runtimeStatus"] in TERMINAL_STATES:
                return json_response(200, status)
            if loop.time() + interval > deadline:
                return None
            await asyncio.sleep(max(0.05, interval))

    async def _status(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        status = await self.client.get_status(
            params["instanceId"], show_history=flag(request, "showHistory", False),
            show_history_output=flag(request, "showHistoryOutput", False),
            show_input=flag(request, "showInput", True))
        if status is None:
            return web.Response(status=404)
        runtime_status = status["runtimeStatus"]
        if runtime_status == "Failed" and flag(request, "returnInternalServerErrorOnFailure",
                                                False):
            return json_response(500, status)
        if runtime_status in ("Completed", "Failed", "Terminated", "Canceled"):
            return json_response(200, status)
        return json_response(202, status, {"Location": str(request.url),
                                           "Retry-After": RUNNING_RETRY_AFTER})

    async def _list(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        top = param(request, "top")
        try:
            top_value = int(top) if top else None
        except ValueError:
            raise InvalidArgument(f"'top' must be an integer: '{top}'.") from None
        query = InstanceQuery(
            created_from=parse_time(param(request, "createdTimeFrom"), "createdTimeFrom"),
            created_to=parse_time(param(request, "createdTimeTo"), "createdTimeTo"),
            statuses=_statuses(request),
            prefix=param(request, "instanceIdPrefix"),
            top=top_value,
            continuation=request.headers.get(CONTINUATION_HEADER) or None,
            show_input=flag(request, "showInput", False))
        items, token = await self.client.list_instances(query)
        headers = {CONTINUATION_HEADER: token} if token else None
        return json_response(200, items, headers)

    async def _purge(self, request: web.Request,
                     params: Mapping[str, str]) -> web.StreamResponse:
        deleted = await self.client.purge(params["instanceId"])
        if not deleted:
            return web.Response(status=404)
        return json_response(200, {"instancesDeleted": deleted})

    async def _purge_by(self, request: web.Request,
                        params: Mapping[str, str]) -> web.StreamResponse:
        created_from = parse_time(param(request, "createdTimeFrom"), "createdTimeFrom")
        if created_from is None:
            return argument_error("Please provide value for 'createdTimeFrom' parameter.")
        deleted = await self.client.purge_by(
            created_from, parse_time(param(request, "createdTimeTo"), "createdTimeTo"),
            _statuses(request))
        if not deleted:
            return web.Response(status=404)
        return json_response(200, {"instancesDeleted": deleted})

    async def _raise_event(self, request: web.Request,
                           params: Mapping[str, str]) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        if body and "json" not in content_type.lower():
            return argument_error("Only application/json request content is supported")
        try:
            data = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            return argument_error("Invalid JSON content.")
        await self.client.raise_event(params["instanceId"], params["eventName"],
                                      json.dumps(data, separators=(",", ":"), ensure_ascii=False))
        return web.Response(status=202)

    async def _terminate(self, request: web.Request,
                         params: Mapping[str, str]) -> web.StreamResponse:
        await self.client.terminate(params["instanceId"], param(request, "reason") or "")
        return web.Response(status=202)

    async def _suspend(self, request: web.Request,
                       params: Mapping[str, str]) -> web.StreamResponse:
        await self.client.suspend(params["instanceId"], param(request, "reason"))
        return web.Response(status=202)

    async def _resume(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        await self.client.resume(params["instanceId"], param(request, "reason"))
        return web.Response(status=202)

    async def _rewind(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        await self.client.rewind(params["instanceId"], param(request, "reason"))
        return web.Response(status=202)

    async def _restart(self, request: web.Request,
                       params: Mapping[str, str]) -> web.StreamResponse:
        value = (param(request, "restartWithNewInstanceId") or "").strip().lower()
        new_id = value != "false"  # bool.TryParse: anything else keeps the default, true
        wait = _wait_options(request)
        started = await self.client.restart(params["instanceId"], new_instance_id=new_id)
        return await self._started(request, started, wait)


__all__ = ["CONTINUATION_HEADER", "DurableApi"]
