"""The Durable Functions HTTP management API.

Served at /runtime/webhooks/durabletask/ on the public port and at the loopback RPC
endpoint (`rpcBaseUrl`) that the SDK's DurableOrchestrationClient calls. Every route
copies the extension's HttpApiHandler (EXT src/WebJobs.Extensions.DurableTask/
HttpApiHandler.cs, v2.13.7): the order of its checks, its defaults, status codes, headers
and JSON. Query strings are read as the extension reads them (`durable_query.py`: bad
values fall back to the defaults silently); a path or method no route takes is a 404 with
an empty body; errors become responses in `http/errors.py`. Entity routes are in
`durable_entities.py`.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from runtime import console
from runtime.durable.client import TERMINAL_STATES, DurableClient, InstanceQuery
from runtime.durable.urls import RPC_PATH, WEBHOOK_PATH, management_urls
from runtime.errors import HostError, InvalidArgument, StorageUnavailable
from runtime.http.builtin import Route, Routes
from runtime.http.durable_entities import EntityRoutes
from runtime.http.durable_query import (
    QueryValues,
    parse_bool,
    parse_datetime,
    parse_double,
    parse_int,
    parse_statuses,
    read_json,
)
from runtime.http.errors import (
    argument_error,
    error_body,
    error_response,
    json_response,
    restart_error,
)

log = console.get("durable.api")

RUNNING_RETRY_AFTER = "5"
MANAGEMENT_SECONDS = 10.0  # the longest a management call waits for storage
MAX_TIMESPAN_SECONDS = 922337203685.4775  # TimeSpan.MaxValue
MIN_POLL_SECONDS = 0.05  # a zero polling interval does not poll storage in a hot loop
START_RETRY_AFTER = "10"
CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE_SIZE = 100  # OrchestrationStatusQueryCondition.PageSize
MAX_BODY = 100 * 1024 * 1024
JSON_READER_EXCEPTION = "Newtonsoft.Json.JsonReaderException"
INVALID_JSON = "Invalid JSON content"
# IsCompletedStatus: terminate, suspend and resume answer 410 for these.
COMPLETED = frozenset({"Completed", "Terminated", "Canceled", "Failed"})
# The Azure Storage backend purges only these statuses (AzureTableTrackingStore).
PURGEABLE = ("Completed", "Terminated", "Canceled", "Failed")
STATUS_FIELDS = ("name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                 "createdTime", "lastUpdatedTime")


def status_payload(status: Mapping[str, Any]) -> dict[str, Any]:
    """StatusResponsePayload: its eight fields in order (null when empty), and
    `historyEvents` only when history was loaded."""
    payload = {field: status.get(field) for field in STATUS_FIELDS}
    if "historyEvents" in status:
        payload["historyEvents"] = status["historyEvents"]
    return payload


def media_type(request: web.BaseRequest) -> str:
    """Content-Type's media type, without parameters, lower-cased ('' when absent)."""
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


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
        self.rpc_prefix = f"/{secrets.token_urlsafe(18)}{RPC_PATH}"
        self.notes = console.AzureNotes(log)
        entities = EntityRoutes(client)
        # HandleRequestAsync's order: orchestrators, entities, instances, raiseEvent.
        self.routes = Routes([
            Route("POST", "orchestrators/{name}", self._start),
            Route("POST", "orchestrators/{name}/{instanceId}", self._start),
            *entities.routes(),
            Route("GET", "instances", self._list),
            Route("DELETE", "instances", self._purge_by),
            Route("GET", "instances/{instanceId}", self._status),
            Route("DELETE", "instances/{instanceId}", self._purge),
            Route("POST", "instances/{instanceId}/terminate", self._terminate),
            Route("POST", "instances/{instanceId}/suspend", self._suspend),
            Route("POST", "instances/{instanceId}/resume", self._resume),
            Route("POST", "instances/{instanceId}/rewind", self._rewind),
            Route("POST", "instances/{instanceId}/restart", self._restart),
            Route("POST", "instances/{instanceId}/raiseEvent/{eventName}", self._raise_event),
        ])

    # -- the loopback RPC endpoint -------------------------------------------------

    async def start_rpc(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on loopback for the SDK's client calls; returns the rpcBaseUrl.

        The listener serves only under a random path segment that is part of the
        rpcBaseUrl, which reaches nothing but the durableClient bindings of this host's
        worker processes: another local process cannot call the API without a key
        through it (every other path is a 404)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", self.rpc_prefix + "/{tail:.*}", self._rpc)
        self.rpc_runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                        shutdown_timeout=5.0)
        await self.rpc_runner.setup()
        site = web.TCPSite(self.rpc_runner, host, port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.rpc_base_url = f"http://{host}:{bound}{self.rpc_prefix}/"
        # The console shows the address, not the secret path segment.
        log.info("Opened local http RPC endpoint: http://%s:%s/…%s/", host, bound, RPC_PATH)
        return self.rpc_base_url

    async def stop_rpc(self) -> None:
        if self.rpc_runner is not None:
            await self.rpc_runner.cleanup()
            self.rpc_runner = None

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, self.rpc_prefix)

    async def public(self, request: web.Request) -> web.StreamResponse:
        """A request under the public webhook path."""
        return await self.handle(request, WEBHOOK_PATH)

    async def handle(self, request: web.Request, prefix: str) -> web.StreamResponse:
        """Dispatch a management request. Everything but a start (which has its own 30 s
        rule and may wait for the instance) is bounded: when storage does not answer
        within MANAGEMENT_SECONDS the answer is 503, not a hang."""
        try:
            if request.path[len(prefix):].lstrip("/").startswith("orchestrators/"):
                return await self.routes.dispatch(request, prefix)
            try:
                return await asyncio.wait_for(self.routes.dispatch(request, prefix),
                                              MANAGEMENT_SECONDS)
            except asyncio.TimeoutError:
                raise StorageUnavailable(MANAGEMENT_SECONDS) from None
        except HostError as exc:
            return error_response(exc)

    # -- shared pieces -------------------------------------------------------------

    @staticmethod
    def _query(request: web.Request) -> QueryValues:
        return QueryValues(request.rel_url.raw_query_string)

    def _check_status_response(self, request: web.Request, instance_id: str) -> web.Response:
        """CreateCheckStatusResponseMessage: 202, the payload without rewindPostUri,
        Location and Retry-After: 10."""
        origin = f"{request.url.scheme}://{request.headers.get('Host') or request.url.host}"
        urls = management_urls(origin, self.hub_name, instance_id, self.key)
        urls.pop("rewindPostUri", None)
        return json_response(202, urls, {"Location": urls["statusQueryGetUri"],
                                         "Retry-After": START_RETRY_AFTER})

    @staticmethod
    async def _text(request: web.Request) -> str:
        """ReadAsStringAsync: UTF-8, undecodable bytes replaced."""
        return (await request.read()).decode("utf-8", errors="replace")

    # -- start and restart -----------------------------------------------------------

    async def _start(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        """HandleStartOrchestratorRequestAsync: the body (read unless Content-Length is 0,
        whatever its type) → the orchestrator exists → the id's rules → not already
        running → 202, or the wait when both `timeout` and `pollingInterval` parse."""
        input_text: str | None = None
        if request.content_length != 0:
            try:
                value = read_json(await self._text(request), whole=True)
            except ValueError as exc:
                return error_body(400, INVALID_JSON, str(exc), JSON_READER_EXCEPTION)
            if value is not None:
                input_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        started = await self.client.start_new(params["name"], params.get("instanceId"),
                                              input_text, self._query(request).get("version"))
        return await self._started(request, started)

    async def _restart(self, request: web.Request,
                       params: Mapping[str, str]) -> web.StreamResponse:
        """HandleRestartInstanceRequestAsync: no 404/410 checks; an ArgumentException (an
        unknown id, an orchestrator no longer in the app) is its own 400."""
        new_id = parse_bool(self._query(request).get("restartWithNewInstanceId"))
        try:
            started = await self.client.restart(params["instanceId"],
                                                new_instance_id=new_id is not False)
        except InvalidArgument as exc:
            return restart_error(str(exc))
        return await self._started(request, started)

    async def _started(self, request: web.Request, instance_id: str) -> web.StreamResponse:
        query = self._query(request)
        timeout = parse_double(query.get("timeout"))
        interval = parse_double(query.get("pollingInterval"))
        if timeout is None or interval is None:
            return self._check_status_response(request, instance_id)
        for value in (timeout, interval):  # TimeSpan.FromSeconds's ArgumentExceptions
            if math.isnan(value):
                return argument_error("TimeSpan does not accept floating point "
                                      "Not-a-Number values.")
            if abs(value) > MAX_TIMESPAN_SECONDS:
                return argument_error("TimeSpan overflowed because the duration is too "
                                      "long.")
        if interval < 0:  # Task.Delay refuses a negative delay
            return argument_error("The value needs to translate in milliseconds to -1 "
                                  "(signifying an infinite timeout), 0, or a positive "
                                  "integer less than or equal to the maximum allowed timer "
                                  "duration. (Parameter 'delay')")
        if interval > timeout:  # checked once the instance has started, as there
            return argument_error(f"Total timeout {_seconds(timeout)} should be bigger than "
                                  f"retry timeout {_seconds(interval)}")
        return await self._wait(request, instance_id, timeout, interval)

    async def _wait(self, request: web.Request, instance_id: str, timeout: float,
                    interval: float) -> web.StreamResponse:
        """WaitForCompletionOrCreateCheckStatusResponseAsync: poll until the instance
        ends or the timeout passes; Completed → 200 with the output; Failed, Canceled,
        Terminated → the status answer (200); otherwise the 202."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            status = await self.client.runtime_status(instance_id)
            if status in TERMINAL_STATES:
                break
            remaining = timeout - (loop.time() - started)
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, max(interval, MIN_POLL_SECONDS)))
        if status == "Completed":
            done = await self.client.get_status(instance_id, show_input=False)
            return json_response(200, done["output"] if done else None)
        if status in TERMINAL_STATES:
            return await self._status_answer(request, instance_id, fail_as_500=False)
        return self._check_status_response(request, instance_id)

    # -- status, list, purge -----------------------------------------------------------

    async def _status(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        return await self._status_answer(request, params["instanceId"], fail_as_500=None)

    async def _status_answer(self, request: web.Request, instance_id: str, *,
                             fail_as_500: bool | None) -> web.StreamResponse:
        """HandleGetStatusRequestAsync(request, id): showHistory and showHistoryOutput
        default to false, showInput to true; 404 empty; 202 with Location (the request's
        own URL) and Retry-After: 5 while running; Failed is 200, or 500 with
        returnInternalServerErrorOnFailure=true."""
        query = self._query(request)
        status = await self.client.get_status(
            instance_id, show_history=parse_bool(query.get("showHistory")) or False,
            show_history_output=parse_bool(query.get("showHistoryOutput")) or False,
            show_input=parse_bool(query.get("showInput")) is not False)
        if status is None:
            return web.Response(status=404)
        if fail_as_500 is None:
            fail_as_500 = parse_bool(query.get("returnInternalServerErrorOnFailure")) or False
        runtime_status = status["runtimeStatus"]
        payload = status_payload(status)
        if runtime_status == "Failed":
            return json_response(500 if fail_as_500 else 200, payload)
        if runtime_status in ("Completed", "Terminated", "Canceled"):
            return json_response(200, payload)
        location = f"{request.url.scheme}://{request.headers.get('Host', '')}" \
                   f"{request.raw_path}"
        return json_response(202, payload, {"Location": location,
                                            "Retry-After": RUNNING_RETRY_AFTER})

    async def _list(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        """HandleGetStatusRequestAsync(request): 200 with a page of at most `top` (100)
        status objects, showInput true by default, filters that do not parse ignored;
        `x-ms-continuation-token` always in the answer, empty on the last page."""
        query = self._query(request)
        top = parse_int(query.get("top"))
        sent_token = request.headers.get(CONTINUATION_HEADER) or None
        items, token = await self.client.list_instances(InstanceQuery(
            created_from=parse_datetime(query.get("createdTimeFrom")),
            created_to=parse_datetime(query.get("createdTimeTo")),
            statuses=parse_statuses(query.get_all("runtimeStatus")) or None,
            prefix=query.get("instanceIdPrefix"),
            top=DEFAULT_PAGE_SIZE if top is None else top,
            continuation=sent_token,
            show_input=parse_bool(query.get("showInput")) is not False))
        if token and sent_token is None and request.path.startswith(self.rpc_prefix):
            self.notes.once(("list-page",), (
                f"the SDK's get_status_all()/get_status_by() received the first "
                f"{len(items)} instances only: the API answers one page (top defaults to "
                f"{DEFAULT_PAGE_SIZE}) with an x-ms-continuation-token the Python SDK does "
                "not follow (azure-functions-durable-python#580); call the HTTP API with "
                "the token to page through all."))
        return json_response(200, [status_payload(item) for item in items],
                             {CONTINUATION_HEADER: token or ""})

    async def _purge(self, request: web.Request,
                     params: Mapping[str, str]) -> web.StreamResponse:
        """HandleDeleteHistoryByIdRequestAsync: 404 empty, or 200 {"instancesDeleted":1}
        for an instance in any state, running ones included."""
        deleted = await self.client.purge(params["instanceId"])
        if not deleted:
            return web.Response(status=404)
        return json_response(200, {"instancesDeleted": deleted})

    async def _purge_by(self, request: web.Request,
                        params: Mapping[str, str]) -> web.StreamResponse:
        """HandleDeleteHistoryWithFiltersRequestAsync: createdTimeFrom is required (400
        with a bare JSON string); createdTimeTo defaults to now; of runtimeStatus the
        Azure Storage backend keeps the finished statuses only, and none left means no
        status filter; 404 when nothing was deleted."""
        query = self._query(request)
        created_from = parse_datetime(query.get("createdTimeFrom"))
        if created_from is None:
            return json_response(400, "Please provide value for 'createdTimeFrom' parameter.")
        asked = [s for s in parse_statuses(query.get_all("runtimeStatus")) if s != "Unknown"]
        statuses = [s for s in asked if s in PURGEABLE]
        if asked != statuses:
            ignored = ", ".join(s for s in asked if s not in PURGEABLE)
            scope = ("the other statuses given" if statuses else
                     "no status at all: every instance created in the time range, running "
                     "ones included")
            self.notes.once(("purge-statuses", *asked), (
                f"DELETE instances/ with runtimeStatus {ignored}: the Azure Storage backend "
                f"purges only Completed, Terminated, Canceled and Failed instances, so it "
                f"ignores {ignored} and purges by {scope}; funclocal does the same."))
        deleted = await self.client.purge_by(
            created_from, parse_datetime(query.get("createdTimeTo")), statuses or None)
        if not deleted:
            return web.Response(status=404)
        return json_response(200, {"instancesDeleted": deleted})

    # -- events and control ------------------------------------------------------------

    async def _raise_event(self, request: web.Request,
                           params: Mapping[str, str]) -> web.StreamResponse:
        """HandleRaiseEventRequestAsync, in its order: 404 unknown → 410 finished (before
        the body is looked at) → 400 `{"Message"}` unless the media type is
        application/json → 400 Invalid JSON content (empty body included) → 202."""
        instance_id = params["instanceId"]
        status = await self.client.runtime_status(instance_id)
        if status is None:
            return web.Response(status=404)
        if status in COMPLETED:
            return web.Response(status=410)
        if media_type(request) != "application/json":
            return error_body(400, "Only application/json request content is supported")
        try:
            value = read_json(await self._text(request), whole=False)
        except ValueError as exc:
            return error_body(400, INVALID_JSON, str(exc), JSON_READER_EXCEPTION)
        await self.client.raise_event(instance_id, params["eventName"],
                                      json.dumps(value, separators=(",", ":"),
                                                 ensure_ascii=False))
        return web.Response(status=202)

    async def _control(self, request: web.Request, instance_id: str,
                       gone: frozenset[str]) -> str | web.Response:
        """The shared checks: 404 unknown, 410 in a `gone` state; else the status."""
        status = await self.client.runtime_status(instance_id)
        if status is None:
            return web.Response(status=404)
        if status in gone:
            return web.Response(status=410)
        return status

    async def _terminate(self, request: web.Request,
                         params: Mapping[str, str]) -> web.StreamResponse:
        checked = await self._control(request, params["instanceId"], COMPLETED)
        if isinstance(checked, web.Response):
            return checked
        await self.client.terminate(params["instanceId"], self._query(request).get("reason"))
        return web.Response(status=202)

    async def _suspend(self, request: web.Request,
                       params: Mapping[str, str]) -> web.StreamResponse:
        checked = await self._control(request, params["instanceId"], COMPLETED)
        if isinstance(checked, web.Response):
            return checked
        await self.client.suspend(params["instanceId"], self._query(request).get("reason"))
        return web.Response(status=202)

    async def _resume(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        checked = await self._control(request, params["instanceId"], COMPLETED)
        if isinstance(checked, web.Response):
            return checked
        await self.client.resume(params["instanceId"], self._query(request).get("reason"))
        return web.Response(status=202)

    async def _rewind(self, request: web.Request,
                      params: Mapping[str, str]) -> web.StreamResponse:
        """410 for Completed, Terminated, Canceled (not Failed: that is what rewinds);
        a running instance is the client's InvalidOperation (500)."""
        checked = await self._control(request, params["instanceId"],
                                      frozenset({"Completed", "Terminated", "Canceled"}))
        if isinstance(checked, web.Response):
            return checked
        await self.client.rewind(params["instanceId"], self._query(request).get("reason"))
        return web.Response(status=202)


def _seconds(value: float) -> str:
    """TimeSpan.TotalSeconds as .NET prints a double: `5`, `0.5`."""
    return str(int(value)) if value == int(value) else repr(value)


__all__ = ["CONTINUATION_HEADER", "DurableApi", "status_payload"]
