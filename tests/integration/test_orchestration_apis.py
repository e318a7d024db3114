"""The orchestration APIs real apps use, end to end: the real SDK in real workers, state
in Azurite, driven as a user drives them (their HTTP starters, the SDK client, the
management API, curl-style requests)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables import TableClient
from support.azurite import unique_hub_name
from support.durable import api, wait_done, wait_status
from support.host import APPS, HostProcess, start_host

from runtime.storage.connection import StorageEndpoints

APP = APPS / "orchestration_apis"
HUB = unique_hub_name("orchestrationapis")


@pytest.fixture(scope="module")
def host(azurite: StorageEndpoints) -> Iterator[HostProcess]:
    process = start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                   "TEST_HUB_NAME": HUB},
                         args=["--no-azurite"])
    yield process
    process.stop()


def instance_row(azurite: StorageEndpoints, instance_id: str) -> dict[str, Any]:
    """The instance's row in the Instances table: where the version and the parent are
    kept (the status API's eight fields do not show them, as on Azure)."""
    with TableClient.from_connection_string(azurite.connection_string,
                                            f"{HUB}Instances") as table:
        return dict(table.get_entity(instance_id, ""))


def start(host: HostProcess, name: str, payload: Any = None, query: str = "") -> str:
    response = host.post(f"/api/start/{name}{'?' + query if query else ''}",
                         None if payload is None else json.dumps(payload))
    assert response.status == 202, response.text
    return str(response.json()["id"])


def control(host: HostProcess, operation: str, instance_id: str,
            query: str = "") -> dict[str, Any]:
    response = host.post(f"/api/control/{operation}/{instance_id}{query}")
    return dict(response.json())


def history_of(host: HostProcess, instance_id: str, output: bool = False) -> list[dict[str, Any]]:
    query = "?showHistory=true" + ("&showHistoryOutput=true" if output else "")
    response = api(host, "GET", f"/instances/{instance_id}{query}")
    return list(response.json()["historyEvents"])


def test_retries_and_retried_sub_orchestrations_succeed_on_the_third_attempt(
        host: HostProcess) -> None:
    key = f"r{time.monotonic_ns()}"
    instance_id = start(host, "with_retries", [key, 2])
    status = wait_done(host, instance_id)
    assert status["output"] == [f"{key} succeeded on attempt 3",
                                f"{key}-child child succeeded on attempt 3"]
    events = history_of(host, instance_id)
    kinds = [e["EventType"] for e in events]
    # showHistory merges each attempt with its scheduling: one TaskFailed per failed
    # attempt, each followed by its retry timer.
    assert kinds[:7] == ["ExecutionStarted", "TaskFailed", "TimerCreated", "TimerFired",
                         "TaskFailed", "TimerCreated", "TimerFired"]
    assert [e.get("FunctionName") for e in events if e["EventType"] == "TaskFailed"] == [
        "flaky", "flaky"]
    children = [e for e in events if e["EventType"].startswith("SubOrchestration")]
    assert [e["EventType"] for e in children] == [
        "SubOrchestrationInstanceFailed", "SubOrchestrationInstanceFailed",
        "SubOrchestrationInstanceCompleted"]
    assert {e["FunctionName"] for e in children} == {"flaky_child"}


def test_a_hundred_sub_orchestrations_fan_in(host: HostProcess,
                                             azurite: StorageEndpoints) -> None:
    instance_id = start(host, "parent", 100)
    status = wait_done(host, instance_id, timeout=120)
    assert status["output"] == 2 * sum(range(100))
    # Children without an id get "<parent execution id>:<n>" and name their parent.
    execution = next(e for e in history_of(host, instance_id)
                     if e["EventType"] == "ExecutionStarted")
    assert execution["FunctionName"] == "parent"
    listing = api(host, "GET", "/instances/?top=1000&showInput=false").json()
    children = [i for i in listing if i["name"] == "child"]
    assert len(children) >= 100
    assert all(i["instanceId"].endswith(tuple(f":{n}" for n in range(100)))
               for i in children)
    one = instance_row(azurite, children[0]["instanceId"])
    assert one["ParentInstanceId"] == instance_id


def test_an_eternal_orchestration_keeps_only_its_last_generation(host: HostProcess) -> None:
    instance_id = start(host, "eternal")
    status = wait_done(host, instance_id, timeout=120)
    assert status["output"] == {"n": 25, "events": []}
    assert status["input"] == '{"n": 25, "events": []}'  # the SDK's JSON text, as any input
    assert [e["EventType"] for e in history_of(host, instance_id)] == [
        "ExecutionStarted", "ExecutionCompleted"]


def test_suspend_holds_events_until_resume_through_the_sdk_client(host: HostProcess) -> None:
    instance_id = start(host, "waits")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    assert control(host, "suspend", instance_id) == {"result": None}
    status = wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    assert status["output"] == "paused by the test"
    # Suspending again: the extension's InvalidOperationException, a 500 with its message.
    response = api(host, "POST", f"/instances/{instance_id}/suspend")
    assert response.status == 500
    assert response.json()["ExceptionMessage"] == (
        f"Cannot suspend the orchestration instance {instance_id} because instance is in the "
        "Suspended state.")
    raised = api(host, "POST", f"/instances/{instance_id}/raiseEvent/go", '"Ann"',
                 {"Content-Type": "application/json"})
    assert raised.status == 202
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    assert "TaskCompleted" not in [e["EventType"] for e in history_of(host, instance_id)]
    assert control(host, "resume", instance_id) == {"result": None}
    assert wait_done(host, instance_id)["output"] == "Hello Ann!"
    # The console says each change once (the event held while suspended says nothing).
    log = host.log_text()
    assert [log.count(f"Orchestration 'waits' ({instance_id}) {change}.")
            for change in ("suspended", "resumed", "completed")] == [1, 1, 1], log[-3000:]
    # Resuming a finished instance: 410, which the SDK takes as done.
    assert api(host, "POST", f"/instances/{instance_id}/resume").status == 410
    assert control(host, "resume", instance_id) == {"result": None}


def test_terminate_a_suspended_instance_and_restart_it(host: HostProcess) -> None:
    instance_id = start(host, "waits", "input")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    control(host, "suspend", instance_id)
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    control(host, "terminate", instance_id)
    status = wait_done(host, instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "stopped by the test")
    # The SDK's restart returns the management payload of the new instance.
    restarted = control(host, "restart", instance_id)["result"]
    assert restarted["id"] != instance_id and "statusQueryGetUri" in restarted
    status = wait_status(host, restarted["id"], lambda s: s["customStatus"] == "waiting")
    original = api(host, "GET", f"/instances/{instance_id}").json()
    # The same input, shown as the SDK's client encoded it (JSON text).
    assert (status["name"], status["input"]) == ("waits", original["input"]) == \
        ("waits", '"input"')
    same = api(host, "POST", f"/instances/{instance_id}/restart"
                             "?restartWithNewInstanceId=false")
    assert (same.status, same.json()["id"]) == (202, instance_id)
    assert same.headers["location"] == same.json()["statusQueryGetUri"]
    unknown = api(host, "POST", "/instances/nobody/restart")
    assert unknown.status == 400
    assert unknown.json()["Message"] == \
        "InstanceId does not match a valid orchestration instance."


def test_rewind_reruns_only_what_failed(host: HostProcess) -> None:
    instance_id = start(host, "fails_once")
    status = wait_done(host, instance_id)
    assert status["runtimeStatus"] == "Failed"
    not_failed = start(host, "waits")
    wait_status(host, not_failed, lambda s: s["customStatus"] == "waiting")
    response = api(host, "POST", f"/instances/{not_failed}/rewind?reason=x")
    assert response.status == 500
    assert response.json()["ExceptionMessage"] == \
        "The rewind operation is only supported on failed orchestration instances."
    assert control(host, "rewind", instance_id) == {"result": None}
    status = wait_done(host, instance_id)
    assert (status["runtimeStatus"], status["output"]) == (
        "Completed", ["Hello before!", f"{instance_id} succeeded on attempt 2"])
    # The activity that had succeeded was replayed, not run again: one TaskCompleted
    # for it in history, and the failed one rescheduled after the rewound rows.
    kinds = [e["EventType"] for e in history_of(host, instance_id)]
    assert kinds.count("TaskCompleted") == 2 and kinds.count("GenericEvent") >= 3


def test_call_http_reaches_the_apps_own_trigger(host: HostProcess) -> None:
    instance_id = start(host, "fetches", host.url("/api/echo"))
    response = wait_done(host, instance_id)["output"]
    assert response["statusCode"] == 202  # returned as is: SDK 1.x does not poll
    assert response["headers"]["Location"] == "/api/echo"
    assert json.loads(response["content"]) == {"body": '{"q": 1}', "header": "yes"}


def test_new_uuid_and_version_are_what_the_sdk_gives(host: HostProcess,
                                                     azurite: StorageEndpoints) -> None:
    plain = start(host, "replay_safe")
    versioned = start(host, "replay_safe", query="version=1.2")
    first = wait_done(host, plain)["output"]
    assert len(set(first["uuids"])) == 2 and first["version"] == ""
    status = wait_done(host, versioned)
    assert status["output"]["version"] == "1.2"
    assert instance_row(azurite, versioned)["Version"] == "1.2"
    started = api(host, "POST", "/orchestrators/replay_safe?version=2.0")
    assert started.status == 202
    assert wait_done(host, started.json()["id"])["output"]["version"] == "2.0"


def test_control_of_unknown_and_finished_instances(host: HostProcess) -> None:
    for operation in ("suspend", "resume", "terminate", "rewind"):
        assert api(host, "POST", f"/instances/nobody/{operation}").status == 404
    done = start(host, "parent", 1)
    wait_done(host, done)
    for operation in ("suspend", "resume", "terminate", "rewind"):
        response = api(host, "POST", f"/instances/{done}/{operation}?reason=x")
        assert (response.status, response.body) == (410, b"")
    assert control(host, "suspend", "nobody") == {
        "error": "No instance with ID 'nobody' found."}
