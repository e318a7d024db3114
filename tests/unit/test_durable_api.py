"""The Durable HTTP management API (runtime/http/durable_api.py) served over loopback by
aiohttp's test server, on a DurableClient over the in-memory task hub."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from runtime.clock import VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable import history
from runtime.durable.app import AppFunctions
from runtime.durable.client import DurableClient
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.functions import FunctionIndex
from runtime.http.durable_api import CONTINUATION_HEADER, DurableApi

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
BASE = "/runtime/webhooks/durabletask"
ARGUMENT_MESSAGE = "One or more of the arguments submitted is incorrect"


@dataclass
class Api:
    http: TestClient  # type: ignore[type-arg]
    hub: MemoryTaskHub
    client: DurableClient
    clock: VirtualClock

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.http.port}"

    async def start(self, instance_id: str, body: Any = None) -> None:
        text = None if body is None else json.dumps(body)
        await self.client.start_new("Orch", instance_id, text)

    async def finish(self, instance_id: str, status: str = "Completed",
                     output: str = '"done"') -> None:
        await self.hub.merge_instance(instance_id, {"RuntimeStatus": status, "Output": output})


@asynccontextmanager
async def served(*, key: str | None = None,
                 app: AppFunctions | None = None) -> AsyncIterator[Api]:
    clock = VirtualClock(T0)
    hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 4, clock=clock)
    client = DurableClient(hub, DurableTaskConfig(), app=app, clock=clock)
    api = DurableApi(client, hub_name=hub.hub_name, key=key)
    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", api.public)
    async with TestClient(TestServer(web_app, host="127.0.0.1")) as http:
        yield Api(http, hub, client, clock)


def argument_error(message: str, exc_type: str = "System.ArgumentException") -> dict[str, Any]:
    return {"Message": ARGUMENT_MESSAGE, "ExceptionMessage": message,
            "ExceptionType": exc_type, "StackTrace": None}


def management_payload(origin: str, hub: str, instance_id: str,
                       code: str = "") -> dict[str, str]:
    query = f"taskHub={hub}&connection=Storage{code}"
    instance = f"{origin}{BASE}/instances/{instance_id}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


async def finish_when_started(api: Api, instance_id: str, status: str, output: str) -> None:
    """Play the orchestration's part: finish the instance once its row is written."""
    deadline = time.monotonic() + 5
    while await api.hub.read_instance(instance_id) is None:
        assert time.monotonic() < deadline, "the instance was never started"
        await asyncio.sleep(0.01)
    await api.finish(instance_id, status, output)


# --- start ----------------------------------------------------------------------------


async def test_start_answers_202_with_the_check_status_payload() -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch/order-1",
                                       json={"qty": 2})
        assert response.status == 202
        body = await response.json()
        assert body == management_payload(api.origin, api.hub.hub_name, "order-1")
        assert "rewindPostUri" not in body
        assert response.headers["Location"] == body["statusQueryGetUri"]
        assert response.headers["Retry-After"] == "10"
        assert response.content_type == "application/json"
        status = await api.client.get_status("order-1")
        assert status is not None
        assert (status["name"], status["runtimeStatus"], status["input"]) == (
            "Orch", "Pending", {"qty": 2})


async def test_start_without_an_id_or_body_makes_a_new_id_and_null_input() -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch")
        assert response.status == 202
        instance_id = (await response.json())["id"]
        assert len(instance_id) == 32
        status = await api.client.get_status(instance_id)
        assert status is not None and status["input"] is None


async def test_start_urls_carry_the_key_when_auth_is_on() -> None:
    async with served(key="sekrit") as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch/i1")
        assert response.status == 202
        assert await response.json() == management_payload(
            api.origin, api.hub.hub_name, "i1", "&code=sekrit")


async def test_start_with_a_bad_json_body_is_a_400_and_starts_nothing() -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch/i1", data=b"{bad",
                                       headers={"Content-Type": "application/json"})
        assert response.status == 400
        body = await response.json()
        assert body["Message"] == "Invalid JSON content"
        assert body["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
        assert body["ExceptionMessage"] == (
            "Unexpected character encountered while parsing value: b. Path '', line 1, "
            "position 1.")
        assert body["StackTrace"] is None
        assert await api.client.get_status("i1") is None


@pytest.mark.parametrize(("raw_id", "message"), [
    ("%40entity", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
    ("a%2Fb", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, "
              "?, or control characters.')"),
    ("a%23b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, "
              "?, or control characters.')"),
])
async def test_start_with_a_bad_instance_id_is_a_400(raw_id: str, message: str) -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch/{raw_id}")
        assert response.status == 400
        assert await response.json() == argument_error(message)


async def test_start_of_an_unknown_orchestrator_is_a_400_with_the_known_names() -> None:
    app = AppFunctions()
    app.index = FunctionIndex.build([{"name": "Hello", "bindings": [
        {"type": "orchestrationTrigger", "name": "context"}]}])
    async with served(app=app) as api:
        response = await api.http.post(f"{BASE}/orchestrators/Nope")
        assert response.status == 400
        assert await response.json() == argument_error(
            "The function 'Nope' doesn't exist, is disabled, or is not an orchestrator "
            "function. Additional info: The following are the known orchestrator functions: "
            "'Hello'.")
        response = await api.http.post(f"{BASE}/orchestrators/hello/i1")
        assert response.status == 202


async def test_start_of_a_running_instance_id_is_a_500_from_the_backend() -> None:
    async with served() as api:
        await api.start("dup")
        response = await api.http.post(f"{BASE}/orchestrators/Orch/dup")
        assert response.status == 500
        assert await response.json() == {
            "Message": "Something went wrong while processing your request",
            "ExceptionMessage": "An Orchestration instance with the status Pending already "
                                "exists.",
            "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
            "StackTrace": None}


async def test_start_and_wait_returns_the_output_once_completed() -> None:
    async with served() as api:
        completer = asyncio.create_task(finish_when_started(api, "w1", "Completed",
                                                            '{"sum":6}'))
        response = await api.http.post(
            f"{BASE}/orchestrators/Orch/w1?timeout=5&pollingInterval=0.05")
        await completer
        assert response.status == 200
        assert await response.json() == {"sum": 6}


async def test_start_and_wait_gives_the_status_of_a_failed_instance() -> None:
    async with served() as api:
        failer = asyncio.create_task(finish_when_started(api, "w2", "Failed", '"boom"'))
        response = await api.http.post(
            f"{BASE}/orchestrators/Orch/w2?timeout=5&pollingInterval=0.05")
        await failer
        assert response.status == 200
        body = await response.json()
        assert (body["runtimeStatus"], body["output"]) == ("Failed", "boom")


async def test_start_and_wait_past_its_timeout_answers_202() -> None:
    async with served() as api:
        response = await api.http.post(
            f"{BASE}/orchestrators/Orch/w3?timeout=0&pollingInterval=0")
        assert response.status == 202
        assert (await response.json())["id"] == "w3"


@pytest.mark.parametrize("query", ["timeout=soon&pollingInterval=1", "timeout=5",
                                   "pollingInterval=1"])
async def test_start_waits_only_when_both_wait_values_are_numbers(query: str) -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/orchestrators/Orch/w4?{query}")
        assert response.status == 202
        assert (await response.json())["id"] == "w4"


async def test_a_polling_interval_above_the_timeout_is_a_400_after_the_start() -> None:
    async with served() as api:
        response = await api.http.post(
            f"{BASE}/orchestrators/Orch/w5?timeout=1&pollingInterval=2.5")
        assert response.status == 400
        assert await response.json() == argument_error(
            "Total timeout 1 should be bigger than retry timeout 2.5")
        assert await api.client.get_status("w5") is not None


# --- status ---------------------------------------------------------------------------


async def test_status_of_an_unknown_instance_is_an_empty_404() -> None:
    async with served() as api:
        response = await api.http.get(f"{BASE}/instances/ghost")
        assert response.status == 404
        assert await response.read() == b""


async def test_status_of_a_running_instance_is_202_with_location() -> None:
    async with served() as api:
        await api.start("i1", {"a": 1})
        url = f"{BASE}/instances/i1?taskHub=x&connection=Storage"
        response = await api.http.get(url)
        assert response.status == 202
        assert response.headers["Retry-After"] == "5"
        assert response.headers["Location"] == f"{api.origin}{url}"
        assert await response.json() == {
            "name": "Orch", "instanceId": "i1", "runtimeStatus": "Pending",
            "input": {"a": 1}, "customStatus": None, "output": None,
            "createdTime": "2024-01-02T03:04:05Z", "lastUpdatedTime": "2024-01-02T03:04:05Z"}


async def test_status_of_finished_instances_is_200_and_failure_may_be_500() -> None:
    async with served() as api:
        await api.start("done")
        await api.finish("done")
        await api.start("failed")
        await api.finish("failed", "Failed", '"it broke"')
        response = await api.http.get(f"{BASE}/instances/done")
        assert response.status == 200
        assert (await response.json())["output"] == "done"
        response = await api.http.get(f"{BASE}/instances/failed")
        assert response.status == 200
        response = await api.http.get(
            f"{BASE}/instances/failed?returnInternalServerErrorOnFailure=TRUE")
        assert response.status == 500
        assert (await response.json())["output"] == "it broke"
        response = await api.http.get(
            f"{BASE}/instances/done?returnInternalServerErrorOnFailure=true")
        assert response.status == 200


async def test_status_query_flags_show_input_and_history() -> None:
    async with served() as api:
        await api.start("i1", "in")
        row = await api.hub.read_instance("i1")
        assert row is not None
        await api.hub.append_history("i1", row["ExecutionId"], 0, [
            history.orchestrator_started(T0),
            history.execution_started("i1", row["ExecutionId"], "Orch", '"in"', T0),
            history.orchestrator_completed(T0)], None)
        response = await api.http.get(f"{BASE}/instances/i1?showInput=false")
        body = await response.json()
        assert body["input"] is None and "historyEvents" not in body
        response = await api.http.get(f"{BASE}/instances/i1?SHOWHISTORY=true")
        body = await response.json()
        assert [e["EventType"] for e in body["historyEvents"]] == ["ExecutionStarted"]
        assert body["historyEvents"][0]["FunctionName"] == "Orch"


async def test_an_encoded_instance_id_is_decoded() -> None:
    async with served() as api:
        await api.start("a b")
        response = await api.http.get(f"{BASE}/instances/a%20b")
        assert response.status == 202
        assert (await response.json())["instanceId"] == "a b"


# --- list -----------------------------------------------------------------------------


async def test_list_pages_with_the_continuation_header() -> None:
    async with served() as api:
        for n in range(5):
            await api.start(f"i{n}", n)
        response = await api.http.get(f"{BASE}/instances?top=2")
        assert response.status == 200
        first = await response.json()
        assert [i["instanceId"] for i in first] == ["i0", "i1"]
        assert first[0]["input"] == 0  # showInput defaults to true when listing too
        token = response.headers[CONTINUATION_HEADER]

        seen = [i["instanceId"] for i in first]
        while token:
            response = await api.http.get(f"{BASE}/instances?top=2",
                                          headers={CONTINUATION_HEADER: token})
            assert response.status == 200
            seen += [i["instanceId"] for i in await response.json()]
            token = response.headers.get(CONTINUATION_HEADER, "")
        assert seen == [f"i{n}" for n in range(5)]

        response = await api.http.get(f"{BASE}/instances?showInput=false")
        assert [i["input"] for i in await response.json()] == [None] * 5
        assert response.headers[CONTINUATION_HEADER] == ""  # always there, empty at the end


async def test_list_filters() -> None:
    async with served() as api:
        for n in range(4):
            await api.start(f"order-{n}")
            await api.clock.advance(timedelta(minutes=1))
        await api.start("other")
        await api.finish("order-1")
        await api.finish("order-2", "Failed")

        async def listed(query: str) -> list[str]:
            response = await api.http.get(f"{BASE}/instances?{query}")
            assert response.status == 200
            return [i["instanceId"] for i in await response.json()]

        assert await listed("runtimeStatus=Completed,Failed") == ["order-1", "order-2"]
        assert await listed("instanceIdPrefix=order-&runtimeStatus=Pending") == [
            "order-0", "order-3"]
        assert await listed("createdTimeFrom=2024-01-02T03:05:05Z"
                            "&createdTimeTo=2024-01-02T03:06:05Z") == ["order-1", "order-2"]
        assert await listed("createdTimeFrom=2024-01-02T03:08:00") == ["other"]


@pytest.mark.parametrize("query", ["top=many", "createdTimeFrom=yesterday",
                                   "createdTimeTo=2024-13-01", "runtimeStatus=running,Nope",
                                   "showInput=yes"])
async def test_list_ignores_arguments_that_do_not_parse(query: str) -> None:
    async with served() as api:
        await api.start("i1", "in")
        response = await api.http.get(f"{BASE}/instances?{query}")
        assert response.status == 200
        assert [(i["instanceId"], i["input"]) for i in await response.json()] == [("i1", "in")]


async def test_list_with_a_bad_continuation_token_is_a_400() -> None:
    async with served() as api:
        response = await api.http.get(f"{BASE}/instances",
                                      headers={CONTINUATION_HEADER: "not-a-token"})
        assert response.status == 400
        assert await response.json() == argument_error("The continuation token is not valid.")


# --- purge ----------------------------------------------------------------------------


async def test_purge_one_instance() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.delete(f"{BASE}/instances/i1")
        assert response.status == 200
        assert await response.json() == {"instancesDeleted": 1}
        response = await api.http.delete(f"{BASE}/instances/i1")
        assert response.status == 404
        assert await response.read() == b""


async def test_purge_by_filter_requires_created_time_from() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.delete(f"{BASE}/instances?runtimeStatus=Pending")
        assert response.status == 400
        assert await response.json() == "Please provide value for 'createdTimeFrom' parameter."
        assert await api.client.get_status("i1") is not None


async def test_purge_by_filter() -> None:
    async with served() as api:
        for n in range(3):
            await api.start(f"i{n}")
        await api.finish("i0")
        await api.finish("i2")
        url = f"{BASE}/instances?createdTimeFrom=2024-01-01T00:00:00Z&runtimeStatus=Completed"
        response = await api.http.delete(url)
        assert response.status == 200
        assert await response.json() == {"instancesDeleted": 2}
        response = await api.http.delete(url)
        assert response.status == 404
        assert await api.client.get_status("i1") is not None


# --- raise event and terminate --------------------------------------------------------


async def test_raise_event_is_202_and_queues_the_event() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.post(f"{BASE}/instances/i1/raiseEvent/Approval",
                                       json={"ok": True})
        assert response.status == 202
        assert await response.read() == b""
        queue = api.hub.control_queue(api.hub.partition_of("i1"))
        event = api.hub.queues[queue][-1].body["TaskMessage"]["Event"]
        assert (event["Name"], event["Input"]) == ("Approval", '{"ok":true}')

        response = await api.http.post(f"{BASE}/instances/i1/raiseEvent/Empty", data=b" null",
                                       headers={"Content-Type": "Application/JSON; charset=x"})
        assert response.status == 202
        event = api.hub.queues[queue][-1].body["TaskMessage"]["Event"]
        assert (event["Name"], event["Input"]) == ("Empty", "null")


async def test_raise_event_refuses_content_that_is_not_json() -> None:
    async with served() as api:
        await api.start("i1")
        for content_type in ("text/plain", "text/json", None):
            response = await api.http.post(
                f"{BASE}/instances/i1/raiseEvent/e", data=b"1",
                headers={"Content-Type": content_type} if content_type else {})
            assert response.status == 400
            assert await response.json() == {
                "Message": "Only application/json request content is supported"}
        for body in (b"{nope", b""):
            response = await api.http.post(f"{BASE}/instances/i1/raiseEvent/e", data=body,
                                           headers={"Content-Type": "application/json"})
            assert response.status == 400
            answer = await response.json()
            assert (answer["Message"], answer["ExceptionType"]) == (
                "Invalid JSON content", "Newtonsoft.Json.JsonReaderException")


async def test_raise_event_on_unknown_and_finished_instances() -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/instances/ghost/raiseEvent/e", json=1)
        assert response.status == 404
        assert await response.read() == b""
        await api.start("i1")
        await api.finish("i1")
        response = await api.http.post(f"{BASE}/instances/i1/raiseEvent/e", json=1)
        assert response.status == 410
        assert await response.read() == b""


async def test_terminate() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.post(f"{BASE}/instances/i1/terminate?reason=too%20slow")
        assert response.status == 202
        queue = api.hub.control_queue(api.hub.partition_of("i1"))
        event = api.hub.queues[queue][-1].body["TaskMessage"]["Event"]
        assert event["Input"] == "too slow"

        response = await api.http.post(f"{BASE}/instances/ghost/terminate")
        assert response.status == 404
        await api.finish("i1")
        response = await api.http.post(f"{BASE}/instances/i1/terminate?reason=x")
        assert response.status == 410
        assert await response.read() == b""


@pytest.mark.parametrize("operation", ["suspend", "resume", "rewind", "restart"])
async def test_control_of_an_unknown_instance(operation: str) -> None:
    async with served() as api:
        response = await api.http.post(f"{BASE}/instances/nobody/{operation.upper()}?reason=x")
        if operation == "restart":
            assert response.status == 400
            assert await response.json() == {
                "Message": "InstanceId does not match a valid orchestration instance.",
                "ExceptionMessage": "An orchestrastion with the instanceId nobody was not "
                                    "found.",
                "ExceptionType": "System.ArgumentException", "StackTrace": None}
        else:
            assert (response.status, await response.read()) == (404, b"")


@pytest.mark.parametrize("operation", ["suspend", "resume", "terminate", "rewind"])
@pytest.mark.parametrize("status", ["Completed", "Terminated"])
async def test_control_of_a_finished_instance_is_gone(operation: str, status: str) -> None:
    async with served() as api:
        await api.start("i1")
        await api.finish("i1", status)
        response = await api.http.post(f"{BASE}/instances/i1/{operation}?reason=x")
        assert (response.status, await response.read()) == (410, b"")


async def test_suspend_and_resume_send_their_events_with_the_reason() -> None:
    async with served() as api:
        await api.start("i1")
        await api.hub.merge_instance("i1", {"RuntimeStatus": "Running"})
        assert (await api.http.post(f"{BASE}/instances/i1/suspend?reason=wait")).status == 202
        queue = api.hub.control_queue(api.hub.partition_of("i1"))
        events = [m.event for m in await api.hub.receive(queue, 32, 30)]
        assert [(e["EventType"], e.get("Reason")) for e in events][-1] == (
            history.EventType.ExecutionSuspended, "wait")
        response = await api.http.post(f"{BASE}/instances/i1/resume")
        assert response.status == 500
        assert await response.json() == {
            "Message": "Something went wrong while processing your request",
            "ExceptionMessage": "Cannot resume the orchestration instance i1 because instance "
                                "is in the Running state.",
            "ExceptionType": "System.InvalidOperationException", "StackTrace": None}
        await api.hub.merge_instance("i1", {"RuntimeStatus": "Suspended"})
        response = await api.http.post(f"{BASE}/instances/i1/suspend")
        assert response.status == 500
        assert (await response.json())["ExceptionMessage"] == (
            "Cannot suspend the orchestration instance i1 because instance is in the "
            "Suspended state.")
        assert (await api.http.post(f"{BASE}/instances/i1/resume?reason=go")).status == 202


async def test_rewind_only_applies_to_failed_instances() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.post(f"{BASE}/instances/i1/rewind?reason=again")
        assert response.status == 500
        assert (await response.json())["ExceptionMessage"] == (
            "The rewind operation is only supported on failed orchestration instances.")


async def test_restart_starts_the_same_orchestrator_with_the_same_input() -> None:
    async with served() as api:
        await api.start("i1", {"n": 1})
        await api.finish("i1", "Failed")
        response = await api.http.post(f"{BASE}/instances/i1/restart")
        assert response.status == 202
        body = await response.json()
        assert body["id"] != "i1" and "rewindPostUri" not in body
        assert response.headers["Location"] == body["statusQueryGetUri"]
        restarted = await api.client.get_status(body["id"])
        assert restarted is not None
        assert (restarted["name"], restarted["input"]) == ("Orch", {"n": 1})
        response = await api.http.post(f"{BASE}/instances/i1/restart"
                                       "?restartWithNewInstanceId=false")
        assert (response.status, (await response.json())["id"]) == (202, "i1")


# --- routing --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"{BASE}/nothing"),
    ("GET", f"{BASE}"),
    ("GET", f"{BASE}/instances/i1/history"),
    ("POST", f"{BASE}/instances/i1/raiseEvent"),
    ("GET", "/elsewhere/instances"),
    ("GET", f"{BASE}x/instances"),
    ("GET", f"{BASE}/instances//terminate"),
    # a known route with another method
    ("GET", f"{BASE}/orchestrators/Orch"),
    ("PUT", f"{BASE}/instances/i1"),
    ("GET", f"{BASE}/instances/i1/terminate"),
    ("POST", f"{BASE}/instances"),
])
async def test_paths_and_methods_that_match_no_route_are_an_empty_404(
        method: str, path: str) -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.request(method, path)
        assert response.status == 404
        assert await response.read() == b""


async def test_route_segments_are_case_insensitive_and_ids_keep_their_case() -> None:
    async with served() as api:
        response = await api.http.post(
            "/Runtime/WebHooks/DurableTask/ORCHESTRATORS/Orch/MixedCase")
        assert response.status == 202
        response = await api.http.get("/RUNTIME/webhooks/durabletask/Instances/MixedCase")
        assert response.status == 202
        assert (await response.json())["instanceId"] == "MixedCase"
        response = await api.http.get(f"{BASE}/instances/mixedcase")
        assert response.status == 404


async def test_a_trailing_slash_adds_nothing() -> None:
    async with served() as api:
        await api.start("i1")
        response = await api.http.get(f"{BASE}/instances/")
        assert response.status == 200
        assert [i["instanceId"] for i in await response.json()] == ["i1"]
        response = await api.http.get(f"{BASE}/instances/i1/")
        assert response.status == 202
