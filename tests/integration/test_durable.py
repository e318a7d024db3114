"""Durable Functions end to end: the real SDK in real workers, state in real Azurite."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from support.durable import (
    WEBHOOK,
    api,
    durable_host_for_test,
    start,
    wait_done,
    wait_status,
)
from support.host import HostProcess, request

from runtime.storage.connection import StorageEndpoints


@pytest.fixture
def host(azurite: StorageEndpoints, task_hub_name: str) -> Iterator[HostProcess]:
    yield from durable_host_for_test(azurite, task_hub_name)


# -- the client binding and the check-status response ------------------------------------

def test_chaining_via_the_sdk_client_and_check_status_urls(host: HostProcess) -> None:
    response = host.post("/api/start/chaining")
    assert response.status == 202
    payload = response.json()
    instance_id = payload["id"]
    assert set(payload) >= {"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                            "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri",
                            "resumePostUri"}
    assert response.headers["location"] == payload["statusQueryGetUri"]
    assert response.headers["retry-after"] == "10"
    assert payload["statusQueryGetUri"].startswith(
        f"http://127.0.0.1:{host.port}{WEBHOOK}/instances/{instance_id}?taskHub=")
    deadline = time.monotonic() + 60
    while True:
        status = request("GET", payload["statusQueryGetUri"])
        if status.status == 200:
            break
        assert status.status == 202
        assert time.monotonic() < deadline
        time.sleep(0.05)
    body = status.json()
    assert body["runtimeStatus"] == "Completed"
    assert body["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert body["name"] == "chaining"
    assert body["instanceId"] == instance_id
    assert body["input"] is None
    assert body["customStatus"] is None
    assert len(body["createdTime"]) == 20 and body["createdTime"].endswith("Z")
    host.wait_for_log("Executed 'Functions.hello' (Succeeded")


def test_status_of_a_running_instance_is_202_with_location(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event")
    status = wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    assert status["runtimeStatus"] == "Running"
    response = api(host, "GET", f"/instances/{instance_id}")
    assert response.status == 202
    assert response.headers["retry-after"] == "5"
    assert response.headers["location"].endswith(f"/instances/{instance_id}")


def test_unknown_instance_is_404_with_empty_body(host: HostProcess) -> None:
    response = api(host, "GET", "/instances/does-not-exist")
    assert response.status == 404
    assert response.body == b""
    assert host.get("/api/status/does-not-exist").json() == {"found": False}


def test_status_with_history(host: HostProcess) -> None:
    instance_id = start(host, "chaining")
    wait_done(host, instance_id)
    # Through the SDK: the 1.x client drops the history (Azure behaves the same).
    assert host.get(f"/api/status/{instance_id}?history=1&output=1").json()[
        "runtimeStatus"] == "Completed"
    status = api(host, "GET", f"/instances/{instance_id}?showHistory=true"
                 "&showHistoryOutput=true").json()
    events = status["historyEvents"]
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted"
    assert types[-1] == "ExecutionCompleted"
    assert types.count("TaskCompleted") == 3
    completed = [e for e in events if e["EventType"] == "TaskCompleted"]
    assert completed[0]["FunctionName"] == "hello"
    assert completed[0]["Result"] == "Hello Tokyo!"
    without_output = api(host, "GET", f"/instances/{instance_id}?showHistory=true").json()
    assert all("Result" not in e for e in without_output["historyEvents"]
               if e["EventType"] == "TaskCompleted")


def test_create_http_management_payload(host: HostProcess) -> None:
    payload = host.get("/api/payload/abc123").json()
    assert payload["id"] == "abc123"
    assert "/instances/abc123?" in payload["statusQueryGetUri"]
    assert "/instances/abc123/raiseEvent/{eventName}?" in payload["sendEventPostUri"]


def test_wait_for_completion_returns_the_output(host: HostProcess) -> None:
    response = host.post("/api/wait/chaining")
    assert response.status == 200
    assert response.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


# -- orchestration shapes ------------------------------------------------------------

def test_fan_out_fan_in_of_200_activities(host: HostProcess) -> None:
    instance_id = start(host, "fan_out", 200)
    status = wait_done(host, instance_id, timeout=120)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"count": 200, "sum": 2 * sum(range(200))}


def test_task_any(host: HostProcess) -> None:
    status = wait_done(host, start(host, "first_of_two"))
    assert status["output"] in ("Hello A!", "Hello B!")


def test_custom_status(host: HostProcess) -> None:
    status = wait_done(host, start(host, "with_status"))
    assert status["output"] == "done"
    assert status["customStatus"] == {"step": 2}


def test_custom_class_input_and_activity_result(host: HostProcess) -> None:
    instance_id = start(host, "point_sum", [1, 2], query="point=1")
    status = wait_done(host, instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"type": "Point", "x": 2, "y": 3}


def test_input_of_every_json_type(host: HostProcess) -> None:
    for value in ({"a": [1, 2, {"b": None}]}, [1, "two"], "text", 42, 2.5, True):
        status = wait_done(host, start(host, "echo_input", value))
        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == value
        # The Python SDK's start_new posts df_dumps(input) as a JSON string, so the
        # status shows the input as that JSON text, exactly as the extension does.
        assert status["input"] == json.dumps(value)


# -- failures ------------------------------------------------------------------------

def test_orchestrator_exception_fails_the_instance(host: HostProcess) -> None:
    status = wait_done(host, start(host, "fails"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'fails' failed: the orchestrator gave up")


def test_activity_failure_caught_and_compensated(host: HostProcess) -> None:
    status = wait_done(host, start(host, "catches"))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["caught"].startswith(
        "Activity function 'explode' failed: RuntimeError: activity exploded on x")
    assert status["output"]["then"] == "Hello cleanup!"


def test_activity_failure_not_caught(host: HostProcess) -> None:
    status = wait_done(host, start(host, "does_not_catch"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Orchestrator function 'does_not_catch' failed:")
    assert "Activity function 'explode' failed: RuntimeError: activity exploded on y" in \
        status["output"]


def test_unknown_activity_fails_naming_the_known_ones(host: HostProcess) -> None:
    status = wait_done(host, start(host, "calls_unknown"))
    assert status["runtimeStatus"] == "Failed"
    assert ("The function 'no_such_activity' doesn't exist, is disabled, or is not an "
            "activity function. Additional info: The following are the known activity "
            "functions: ") in status["output"]
    assert "'hello'" in status["output"]


def test_non_serialisable_orchestrator_output(host: HostProcess) -> None:
    status = wait_done(host, start(host, "bad_output"))
    assert status["runtimeStatus"] == "Failed"
    assert "Orchestrator function 'bad_output' failed" in status["output"]
    assert "serializable" in status["output"].lower()


def test_non_serialisable_activity_result(host: HostProcess) -> None:
    status = wait_done(host, start(host, "bad_activity_output"))
    assert status["runtimeStatus"] == "Failed"
    assert "Activity function 'unserialisable' failed" in status["output"]
    assert "json serializable" in status["output"]


# -- the management API ----------------------------------------------------------------

def test_start_through_the_api_with_an_instance_id(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/echo_input/my-id-1", json.dumps({"k": 1}),
                   {"Content-Type": "application/json"})
    assert response.status == 202
    assert response.json()["id"] == "my-id-1"
    assert "rewindPostUri" not in response.json()
    assert response.headers["location"] == response.json()["statusQueryGetUri"]
    status = wait_done(host, "my-id-1")
    assert status["output"] == {"k": 1}


def test_start_unknown_orchestrator_is_400(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/nope")
    assert response.status == 400
    body = response.json()
    assert body["Message"] == "One or more of the arguments submitted is incorrect"
    assert body["ExceptionMessage"].startswith(
        "The function 'nope' doesn't exist, is disabled, or is not an orchestrator function.")
    assert "'chaining'" in body["ExceptionMessage"]


@pytest.mark.parametrize("bad_id", ["@entity", "a%2Fb", "a%5Cb", "a%3Fb", "a%23b", "a%01b",
                                    "x" * 257])
def test_invalid_instance_ids_are_400(host: HostProcess, bad_id: str) -> None:
    response = api(host, "POST", f"/orchestrators/chaining/{bad_id}")
    assert response.status == 400, bad_id
    assert "ExceptionMessage" in response.json()


def test_malformed_json_body_is_400(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/chaining", "{not json",
                   {"Content-Type": "application/json"})
    assert response.status == 400


def test_starting_a_running_id_does_not_overwrite_it(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event", instance_id="keep-me")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    response = api(host, "POST", "/orchestrators/chaining/keep-me")
    assert response.status == 500  # the storage backend's exception, not an argument error
    assert "already exists" in response.json()["ExceptionMessage"]
    status = api(host, "GET", "/instances/keep-me").json()
    assert status["name"] == "waits_for_event"
    assert status["runtimeStatus"] == "Running"


def test_raise_event_through_the_api(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    response = api(host, "POST", f"/instances/{instance_id}/raiseEvent/Approval",
                   json.dumps("Ann"), {"Content-Type": "application/json"})
    assert response.status == 202
    status = wait_done(host, instance_id)
    assert status["output"] == "Hello Ann!"
    gone = api(host, "POST", f"/instances/{instance_id}/raiseEvent/Approval", "1",
               {"Content-Type": "application/json"})
    assert gone.status == 410


def test_raise_event_errors(host: HostProcess) -> None:
    assert api(host, "POST", "/instances/nobody/raiseEvent/X", "1",
               {"Content-Type": "application/json"}).status == 404
    instance_id = start(host, "waits_for_event")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    assert api(host, "POST", f"/instances/{instance_id}/raiseEvent/X", "plain",
               {"Content-Type": "text/plain"}).status == 400
    assert api(host, "POST", f"/instances/{instance_id}/raiseEvent/X", "{bad",
               {"Content-Type": "application/json"}).status == 400


def test_raise_event_via_the_sdk_client(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    assert host.post(f"/api/raise/{instance_id}/Approval", json.dumps("Bo")).status == 202
    status = wait_done(host, instance_id)
    assert status["runtimeStatus"] == "Completed"
    # The Python SDK JSON-encodes event data before posting it (a known quirk of the 1.x
    # client), so the orchestrator receives the JSON text of the value, as on Azure.
    assert status["output"] == 'Hello "Bo"!'
    missing = host.post("/api/raise/nobody/Approval", json.dumps(1))
    assert missing.status == 400
    assert "No instance with ID nobody found" in missing.json()["error"]


def test_terminate(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    response = api(host, "POST", f"/instances/{instance_id}/terminate?reason=no%20longer")
    assert response.status == 202
    status = wait_done(host, instance_id)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "no longer"
    assert api(host, "POST", f"/instances/{instance_id}/terminate").status == 410
    assert api(host, "POST", "/instances/nobody/terminate").status == 404


def test_terminate_via_the_sdk_client(host: HostProcess) -> None:
    instance_id = start(host, "waits_for_event")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    assert host.post(f"/api/terminate/{instance_id}?reason=bye").status == 202
    status = wait_done(host, instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "bye")


def test_purge_one(host: HostProcess) -> None:
    instance_id = start(host, "chaining")
    wait_done(host, instance_id)
    response = api(host, "DELETE", f"/instances/{instance_id}")
    assert response.status == 200
    assert response.json() == {"instancesDeleted": 1}
    assert api(host, "GET", f"/instances/{instance_id}").status == 404
    assert api(host, "DELETE", f"/instances/{instance_id}").status == 404
    other = start(host, "chaining")
    wait_done(host, other)
    assert host.request_json("DELETE", f"/api/purge/{other}") == {"deleted": 1}


def test_purge_by_filter(host: HostProcess) -> None:
    done = [start(host, "chaining") for _ in range(3)]
    running = start(host, "waits_for_event")
    for instance_id in done:
        wait_done(host, instance_id)
    missing_from = api(host, "DELETE", "/instances/")
    assert missing_from.status == 400
    assert missing_from.json() == "Please provide value for 'createdTimeFrom' parameter."
    assert host.request_json("DELETE", "/api/purge-all") == {"deleted": 3}
    assert api(host, "GET", f"/instances/{running}").status == 202
    assert api(host, "DELETE", "/instances/?createdTimeFrom=2020-01-01T00:00:00Z"
               "&runtimeStatus=Completed").status == 404


def test_list_with_filters_and_paging(host: HostProcess) -> None:
    ids = sorted(start(host, "chaining", instance_id=f"page-{n}") for n in range(5))
    waiting = start(host, "waits_for_event", instance_id="other-1")
    for instance_id in ids:
        wait_done(host, instance_id)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        response = api(host, "GET", "/instances/?top=2&instanceIdPrefix=page-", None, headers)
        assert response.status == 200
        seen += [item["instanceId"] for item in response.json()]
        pages += 1
        token = response.headers.get("x-ms-continuation-token")
        if not token:
            break
    assert sorted(seen) == ids
    assert pages >= 3
    completed = api(host, "GET", "/instances/?runtimeStatus=Completed").json()
    assert sorted(i["instanceId"] for i in completed) == ids
    assert host.get("/api/list").json() == sorted([*ids, waiting])
    assert host.get("/api/list?status=Running").json() == [waiting]


def test_large_input_and_output_round_trip_through_blobs(host: HostProcess) -> None:
    value = {"blob": "x" * (1024 * 1024 + 17), "n": 1}
    instance_id = start(host, "echo_input", value)
    status = wait_done(host, instance_id, timeout=90)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == value
    assert status["input"] == json.dumps(value)


def test_durable_timer(host: HostProcess) -> None:
    started = time.monotonic()
    status = wait_done(host, start(host, "sleeps"))
    assert status["output"] == {"slept_at_least_a_second": True}
    assert time.monotonic() - started >= 1


def test_event_or_timeout(host: HostProcess) -> None:
    timed_out = start(host, "approval_or_timeout")
    approved = start(host, "approval_or_timeout")
    assert api(host, "POST", f"/instances/{approved}/raiseEvent/Approval", "true",
               {"Content-Type": "application/json"}).status == 202
    assert wait_done(host, approved)["output"] == "approved"
    assert wait_done(host, timed_out)["output"] == "timed out"
