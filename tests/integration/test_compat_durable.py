"""The Durable HTTP API rows of docs/compatibility.md: each test id is a row's id, and each
test asserts what a client sees from the host serving tests/apps/durable_compat, with its
state in Azurite (one host and one task hub per module)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.azurite import unique_hub_name
from support.durable import WEBHOOK
from support.host import APPS, HostProcess, RawResponse, raw_request, start_host

from runtime.storage.connection import StorageEndpoints

APP = APPS / "durable_compat"
JSON = [("Content-Type", "application/json")]
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
STATUS_FIELDS = ["name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                 "createdTime", "lastUpdatedTime"]
CHECK_STATUS_FIELDS = ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                       "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri",
                       "resumePostUri"]
GENERIC_400 = "One or more of the arguments submitted is incorrect"
GENERIC_500 = "Something went wrong while processing your request"
ERROR_FIELDS = ["Message", "ExceptionMessage", "ExceptionType", "StackTrace"]


@pytest.fixture(scope="module")
def host(azurite: StorageEndpoints) -> Iterator[HostProcess]:
    process = start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                   "TEST_HUB_NAME": unique_hub_name("compat_durable")},
                         args=["--no-azurite"])
    yield process
    process.stop()


def api(host: HostProcess, method: str, path: str, body: bytes | str | None = None,
        headers: list[tuple[str, str]] | None = None) -> RawResponse:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return raw_request(host.url(WEBHOOK + path), method, headers=headers, body=data)


def start(host: HostProcess, name: str, instance_id: str, value: Any = None) -> str:
    body = None if value is None else json.dumps(value)
    response = api(host, "POST", f"/orchestrators/{name}/{instance_id}", body, JSON)
    assert response.status == 202, response.body
    return instance_id


def status_of(host: HostProcess, instance_id: str, until: Any = None,
              timeout: float = 60.0) -> dict[str, Any]:
    """The status once `until(status)` holds (default: the instance has finished)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api(host, "GET", f"/instances/{instance_id}")
        if response.status in (200, 202):
            status = dict(response.json())
            done = until(status) if until else response.status == 200
            if done:
                return status
        assert time.monotonic() < deadline, f"{instance_id}: {response.body!r}"
        time.sleep(0.05)


def running(host: HostProcess, instance_id: str) -> str:
    start(host, "waits", instance_id)
    status_of(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    return instance_id


def finished(host: HostProcess, instance_id: str, value: Any = None) -> str:
    """Start `noop` (which returns its input) and wait for it. The Python SDK reads a
    JSON string or number input as JSON text (so `"v"` would fail the orchestrator, on
    Azure too): inputs here are objects."""
    start(host, "noop", instance_id, value)
    status_of(host, instance_id)
    return instance_id


def assert_empty(response: RawResponse, status: int) -> None:
    assert (response.status, response.body) == (status, b"")
    assert response.header("content-type") is None


def log_lines(host: HostProcess, fragment: str) -> list[str]:
    return [line for line in host.output if "On Azure: " in line and fragment in line]


# -- D.0 routing and format --------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/orchestrators/noop"),
    ("PUT", "/orchestrators/noop/x"),
    ("PUT", "/instances/x"),
    ("PATCH", "/instances"),
    ("HEAD", "/instances"),
    ("POST", "/instances"),
    ("POST", "/instances/x/nope"),
    ("GET", "/instances/x/terminate"),
    ("GET", "/instances/x/raiseEvent/e"),
    ("GET", ""),
    ("GET", "/nothing"),
])
def test_api_unknown_route_or_method(host: HostProcess, method: str, path: str) -> None:
    assert_empty(api(host, method, path), 404)


def test_api_json_format(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/noop/fmt-1", '{"s": "é"}', JSON)
    assert response.header("content-type") == JSON_CONTENT_TYPE
    assert b", " not in response.body and b'": ' not in response.body
    done = status_of(host, "fmt-1")
    assert done["output"] == {"s": "é"}
    assert "é".encode() in api(host, "GET", "/instances/fmt-1").body


def test_api_query_names_and_values(host: HostProcess) -> None:
    finished(host, "query-1", {"k": 1})
    assert api(host, "GET", "/instances/query-1?SHOWINPUT=false").json()["input"] is None
    assert api(host, "GET", "/instances/query-1?showInput=FALSE").json()["input"] is None
    assert api(host, "GET", "/instances/query-1?showInput=yes").json()["input"] == {"k": 1}
    assert api(host, "GET", "/instances/query-1?showInput=true,false").json()["input"] == \
        {"k": 1}


# -- D.1 start ---------------------------------------------------------------------------

def test_start_check_status_response(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/noop/start-1", "{}", JSON)
    assert response.status == 202
    body = response.json()
    assert list(body) == CHECK_STATUS_FIELDS
    assert body["id"] == "start-1"
    assert re.fullmatch(rf"{host.base}{WEBHOOK}/instances/start-1\?taskHub=\w+"
                        r"&connection=Storage", body["statusQueryGetUri"])
    assert body["terminatePostUri"].startswith(
        f"{host.base}{WEBHOOK}/instances/start-1/terminate?reason={{text}}&taskHub=")
    assert response.header("location") == body["statusQueryGetUri"]
    assert response.header("retry-after") == "10"
    assert response.header("content-type") == JSON_CONTENT_TYPE


def test_start_id_encoded_in_urls(host: HostProcess) -> None:
    body = api(host, "POST", "/orchestrators/noop/a:b(c)~d").json()
    assert body["id"] == "a:b(c)~d"
    assert "/instances/a%3Ab(c)%7Ed?" in body["statusQueryGetUri"]


def test_start_new_id(host: HostProcess) -> None:
    body = api(host, "POST", "/orchestrators/noop").json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])


@pytest.mark.parametrize("body", ["{bad", "1 2", "[1,"])
def test_start_bad_json(host: HostProcess, body: str) -> None:
    response = api(host, "POST", "/orchestrators/noop/bad-json", body, JSON)
    assert response.status == 400
    answer = response.json()
    assert list(answer) == ERROR_FIELDS
    assert (answer["Message"], answer["ExceptionType"]) == (
        "Invalid JSON content", "Newtonsoft.Json.JsonReaderException")
    assert api(host, "GET", "/instances/bad-json").status == 404


def test_start_body_any_type(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/noop/any-type", '{"a": 1}',
                   [("Content-Type", "text/plain")])
    assert response.status == 202
    assert status_of(host, "any-type")["output"] == {"a": 1}
    assert api(host, "POST", "/orchestrators/noop/no-body", b"").status == 202
    assert status_of(host, "no-body")["input"] is None


def test_start_unknown_orchestrator(host: HostProcess) -> None:
    answer = api(host, "POST", "/orchestrators/nope/x").json()
    assert (answer["Message"], answer["ExceptionType"]) == (GENERIC_400,
                                                            "System.ArgumentException")
    assert answer["ExceptionMessage"].startswith(
        "The function 'nope' doesn't exist, is disabled, or is not an orchestrator function. "
        "Additional info: The following are the known orchestrator functions: '")
    for name in ("noop", "waits", "fails"):
        assert f"'{name}'" in answer["ExceptionMessage"]


@pytest.mark.parametrize(("raw_id", "message"), [
    ("@x", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
    ("a%23b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, "
              "?, or control characters.')"),
    ("x" * 257, "Instance ID lengths must not exceed 256 characters."),
])
def test_start_bad_instance_id(host: HostProcess, raw_id: str, message: str) -> None:
    response = api(host, "POST", f"/orchestrators/noop/{raw_id}")
    assert response.status == 400
    assert response.json() == {"Message": GENERIC_400, "ExceptionMessage": message,
                               "ExceptionType": "System.ArgumentException",
                               "StackTrace": None}


def test_start_running_id(host: HostProcess) -> None:
    running(host, "dup-1")
    response = api(host, "POST", "/orchestrators/noop/dup-1")
    assert response.status == 500
    assert response.json() == {
        "Message": GENERIC_500,
        "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
        "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
        "StackTrace": None}
    assert status_of(host, "dup-1", lambda s: True)["name"] == "waits"


def test_start_over_finished_id(host: HostProcess) -> None:
    finished(host, "again-1", {"run": 1})
    assert api(host, "POST", "/orchestrators/noop/again-1", '{"run": 2}', JSON).status == 202
    assert status_of(host, "again-1", lambda s: s["output"] == {"run": 2})["input"] == \
        {"run": 2}


def test_start_and_wait(host: HostProcess) -> None:
    done = api(host, "POST", "/orchestrators/noop/wait-1?timeout=30&pollingInterval=0.1",
               '{"x": [1]}', JSON)
    assert (done.status, done.body) == (200, b'{"x":[1]}')
    assert done.header("location") is None
    failed = api(host, "POST", "/orchestrators/fails/wait-2?timeout=30&pollingInterval=0.1")
    assert failed.status == 200
    assert list(failed.json()) == STATUS_FIELDS
    assert failed.json()["runtimeStatus"] == "Failed"
    pending = api(host, "POST", "/orchestrators/waits/wait-3?timeout=30")
    assert pending.status == 202  # a timeout alone does not wait
    assert list(pending.json()) == CHECK_STATUS_FIELDS


def test_start_wait_interval_above_timeout(host: HostProcess) -> None:
    response = api(host, "POST", "/orchestrators/noop/wait-4?timeout=1&pollingInterval=2")
    assert response.status == 400
    assert response.json()["ExceptionMessage"] == \
        "Total timeout 1 should be bigger than retry timeout 2"
    assert status_of(host, "wait-4")["runtimeStatus"] == "Completed"  # it was started


@pytest.mark.parametrize(("query", "message"), [
    ("timeout=nan&pollingInterval=1",
     "TimeSpan does not accept floating point Not-a-Number values."),
    ("timeout=10&pollingInterval=Infinity",
     "TimeSpan overflowed because the duration is too long."),
    ("timeout=10&pollingInterval=-1",
     "The value needs to translate in milliseconds to -1 (signifying an infinite timeout), "
     "0, or a positive integer less than or equal to the maximum allowed timer duration. "
     "(Parameter 'delay')"),
])
def test_start_wait_with_values_timespan_refuses(host: HostProcess, query: str,
                                                 message: str) -> None:
    """NaN and infinities parse as numbers (.NET Core 3.0+), then TimeSpan and Task.Delay
    refuse them with an ArgumentException: a 400 at once, not a hot polling loop."""
    started = time.monotonic()
    response = api(host, "POST", f"/orchestrators/noop?{query}")
    assert response.status == 400
    assert response.json()["ExceptionMessage"] == message
    assert time.monotonic() - started < 5


# -- D.2 status ----------------------------------------------------------------------------

def test_status_unknown(host: HostProcess) -> None:
    assert_empty(api(host, "GET", "/instances/nobody-here"), 404)


def test_status_running(host: HostProcess) -> None:
    running(host, "run-1")
    path = f"{WEBHOOK}/instances/run-1?taskHub=x&showInput=false"
    response = raw_request(host.url(path))
    assert response.status == 202
    assert response.header("location") == host.url(path)
    assert response.header("retry-after") == "5"
    assert list(response.json()) == STATUS_FIELDS


def test_status_completed(host: HostProcess) -> None:
    finished(host, "done-1", {"n": [1, "two"]})
    response = api(host, "GET", "/instances/done-1")
    assert response.status == 200
    assert response.header("location") is None
    body = response.json()
    assert list(body) == STATUS_FIELDS
    assert (body["name"], body["runtimeStatus"], body["input"], body["output"],
            body["customStatus"]) == ("noop", "Completed", {"n": [1, "two"]},
                                      {"n": [1, "two"]}, None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["createdTime"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["lastUpdatedTime"])


def test_status_failed(host: HostProcess) -> None:
    start(host, "fails", "fail-1")
    status = status_of(host, "fail-1")
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith("Orchestrator function 'fails' failed: it broke")
    assert api(host, "GET", "/instances/fail-1").status == 200
    flagged = api(host, "GET", "/instances/fail-1?returnInternalServerErrorOnFailure=true")
    assert flagged.status == 500
    assert flagged.json()["runtimeStatus"] == "Failed"


def test_status_history(host: HostProcess) -> None:
    finished(host, "hist-1")
    body = api(host, "GET", "/instances/hist-1?showHistory=true").json()
    assert list(body) == [*STATUS_FIELDS, "historyEvents"]
    assert [e["EventType"] for e in body["historyEvents"]] == [
        "ExecutionStarted", "ExecutionCompleted"]
    assert "Result" not in body["historyEvents"][-1]


# -- D.3 list ------------------------------------------------------------------------------

def test_list_default_page(host: HostProcess) -> None:
    ids = [start(host, "noop", f"many-{n:03d}") for n in range(105)]
    first = api(host, "GET", "/instances?instanceIdPrefix=many-")
    assert first.status == 200
    assert len(first.json()) == 100
    token = first.header("x-ms-continuation-token")
    assert token
    rest = api(host, "GET", "/instances?instanceIdPrefix=many-",
               headers=[("x-ms-continuation-token", token)])
    assert rest.header("x-ms-continuation-token") == ""
    seen = [item["instanceId"] for item in first.json() + rest.json()]
    assert sorted(seen) == ids
    assert all(list(item) == STATUS_FIELDS for item in first.json())


def test_list_sdk_first_page_only(host: HostProcess) -> None:
    for _ in range(2):
        response = raw_request(host.url("/api/sdk/list?prefix=many-"))
        assert (response.status, response.json()) == (200, 100)
    lines = log_lines(host, "get_status_all()/get_status_by() received the first 100")
    assert len(lines) == 1


def test_list_paging(host: HostProcess) -> None:
    pages: list[list[str]] = []
    token = None
    while token != "":
        headers = [("x-ms-continuation-token", token)] if token else []
        response = api(host, "GET", "/instances?instanceIdPrefix=many-0&top=4", None, headers)
        pages.append([item["instanceId"] for item in response.json()])
        token = response.header("x-ms-continuation-token")
    assert sum(pages, []) == [f"many-{n:03d}" for n in range(100)]
    assert all(len(page) <= 4 for page in pages)


def test_list_filters(host: HostProcess) -> None:
    finished(host, "flt-done", {"n": 1})
    running(host, "flt-run")

    def listed(query: str) -> list[str]:
        response = api(host, "GET", f"/instances?instanceIdPrefix=flt-&{query}")
        assert response.status == 200
        return sorted(item["instanceId"] for item in response.json())

    assert listed("runtimeStatus=Running") == ["flt-run"]
    assert listed("runtimeStatus=Completed,Bogus") == ["flt-done"]
    assert listed("runtimeStatus=running") == ["flt-done", "flt-run"]  # case-sensitive: no filter
    assert listed("runtimeStatus=0") == ["flt-run"]  # enum numbers parse
    assert listed("top=many&createdTimeFrom=yesterday") == ["flt-done", "flt-run"]
    assert listed("createdTimeFrom=2999-01-01T00:00:00Z") == []
    item = api(host, "GET", "/instances?instanceIdPrefix=flt-done").json()[0]
    assert item["input"] == {"n": 1}  # showInput defaults to true


# -- D.4 raise event ---------------------------------------------------------------------------

def test_raise_unknown(host: HostProcess) -> None:
    assert_empty(api(host, "POST", "/instances/nobody-here/raiseEvent/Go", "1", JSON), 404)
    assert_empty(api(host, "POST", "/instances/nobody-here/raiseEvent/Go", "x",
                     [("Content-Type", "text/plain")]), 404)


@pytest.mark.parametrize(("body", "headers"), [
    ("plain words", [("Content-Type", "text/plain")]),
    ("{not json", JSON),
    ('"fine"', JSON),
])
def test_raise_finished(host: HostProcess, body: str, headers: list[tuple[str, str]]) -> None:
    finished(host, "raise-done")
    assert_empty(api(host, "POST", "/instances/raise-done/raiseEvent/Go", body, headers), 410)


def test_raise_content_type(host: HostProcess) -> None:
    running(host, "raise-ct")
    for headers in ([("Content-Type", "text/plain")], [("Content-Type", "text/json")], []):
        response = api(host, "POST", "/instances/raise-ct/raiseEvent/Go", '"x"', headers)
        assert response.status == 400
        assert response.json() == {"Message": "Only application/json request content is "
                                              "supported"}


@pytest.mark.parametrize("body", ["{not json", ""])
def test_raise_bad_json(host: HostProcess, body: str) -> None:
    instance_id = running(host, f"raise-json-{len(body)}")
    response = api(host, "POST", f"/instances/{instance_id}/raiseEvent/Go", body, JSON)
    assert response.status == 400
    answer = response.json()
    assert list(answer) == ERROR_FIELDS
    assert (answer["Message"], answer["ExceptionType"]) == (
        "Invalid JSON content", "Newtonsoft.Json.JsonReaderException")


def test_raise_accepted(host: HostProcess) -> None:
    running(host, "raise-ok")
    response = api(host, "POST", "/instances/raise-ok/raiseEvent/Go", '{"ok": true}',
                   [("Content-Type", "application/json; charset=utf-8")])
    assert_empty(response, 202)
    assert status_of(host, "raise-ok")["output"] == {"ok": True}


# -- D.5 terminate, suspend, resume, rewind, restart -------------------------------------------

def test_terminate(host: HostProcess) -> None:
    running(host, "term-1")
    assert_empty(api(host, "POST", "/instances/term-1/terminate?reason=no%20longer"), 202)
    status = status_of(host, "term-1")
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "no longer")
    assert_empty(api(host, "POST", "/instances/term-1/terminate"), 410)
    assert_empty(api(host, "POST", "/instances/nobody-here/terminate"), 404)


@pytest.mark.parametrize(("query", "output"), [("", None), ("?reason=42", 42)])
def test_terminate_reason(host: HostProcess, query: str, output: Any) -> None:
    instance_id = running(host, f"term-r{len(query)}")
    assert api(host, "POST", f"/instances/{instance_id}/terminate{query}").status == 202
    assert status_of(host, instance_id)["output"] == output


def test_suspend_and_resume(host: HostProcess) -> None:
    running(host, "susp-1")
    assert_empty(api(host, "POST", "/instances/susp-1/suspend?reason=wait"), 202)
    status_of(host, "susp-1", lambda s: s["runtimeStatus"] == "Suspended")
    assert api(host, "GET", "/instances/susp-1").status == 202
    again = api(host, "POST", "/instances/susp-1/suspend")
    assert again.status == 500
    assert again.json()["ExceptionMessage"] == ("Cannot suspend the orchestration instance "
                                                "susp-1 because instance is in the Suspended "
                                                "state.")
    assert_empty(api(host, "POST", "/instances/susp-1/RESUME"), 202)
    status_of(host, "susp-1", lambda s: s["runtimeStatus"] == "Running")
    resumed = api(host, "POST", "/instances/susp-1/resume")
    assert resumed.status == 500
    assert resumed.json()["ExceptionType"] == "System.InvalidOperationException"
    finished(host, "susp-done")
    assert_empty(api(host, "POST", "/instances/susp-done/suspend"), 410)
    assert_empty(api(host, "POST", "/instances/susp-done/resume"), 410)


def test_rewind(host: HostProcess) -> None:
    finished(host, "rew-done")
    assert_empty(api(host, "POST", "/instances/rew-done/rewind?reason=x"), 410)
    running(host, "rew-run")
    response = api(host, "POST", "/instances/rew-run/rewind")
    assert response.status == 500
    assert response.json()["ExceptionMessage"] == (
        "The rewind operation is only supported on failed orchestration instances.")
    assert_empty(api(host, "POST", "/instances/nobody-here/rewind"), 404)


def test_restart(host: HostProcess) -> None:
    unknown = api(host, "POST", "/instances/nobody-here/restart")
    assert unknown.status == 400
    assert unknown.json() == {
        "Message": "InstanceId does not match a valid orchestration instance.",
        "ExceptionMessage": "An orchestrastion with the instanceId nobody-here was not found.",
        "ExceptionType": "System.ArgumentException", "StackTrace": None}
    finished(host, "rst-1", {"n": 1})
    fresh = api(host, "POST", "/instances/rst-1/restart")
    assert fresh.status == 202
    new_id = fresh.json()["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    assert status_of(host, new_id)["output"] == {"n": 1}
    same = api(host, "POST", "/instances/rst-1/restart?restartWithNewInstanceId=false")
    assert (same.status, same.json()["id"]) == (202, "rst-1")


# -- D.6 purge one --------------------------------------------------------------------------

def test_purge_one(host: HostProcess) -> None:
    finished(host, "purge-1")
    response = api(host, "DELETE", "/instances/purge-1")
    assert (response.status, response.json()) == (200, {"instancesDeleted": 1})
    assert_empty(api(host, "DELETE", "/instances/purge-1"), 404)
    running(host, "purge-run")
    assert api(host, "DELETE", "/instances/purge-run").json() == {"instancesDeleted": 1}


# -- D.8 entities ----------------------------------------------------------------------------

def test_entities(host: HostProcess) -> None:
    listed = api(host, "GET", "/entities")
    assert (listed.status, listed.json()) == (200, [])
    assert listed.header("x-ms-continuation-token") == ""
    assert api(host, "GET", "/entities/counter").json() == []
    assert_empty(api(host, "GET", "/entities/counter/k1"), 404)
    assert_empty(api(host, "PUT", "/entities/counter/k1"), 404)
    signal = api(host, "POST", "/entities/Counter/k1?op=add", "1", JSON)
    assert signal.status == 400
    assert signal.json() == {"Message": (
        "The function 'counter' doesn't exist, is disabled, or is not an entity function. "
        "Additional info: The following are the known entity functions: ''.")}
    assert api(host, "POST", "/entities").json() == {"Message": (
        "Invalid entity id: entity name must not be a null or empty string. "
        "(Parameter 'entityName')")}
    # entities/{name} is the empty key (the extension's SignalEntity_Is_Success test)
    assert api(host, "DELETE", "/entities/counter").json() == signal.json()
    bad = api(host, "POST", "/entities/counter/k1", "{nope", JSON)
    assert bad.status == 400
    assert bad.json()["Message"].startswith("Could not parse JSON content: ")


# -- D.7 purge by filter (last: it purges every instance in its time range) ---------------

def test_purge_by_filter(host: HostProcess) -> None:
    for query in ("", "?createdTimeFrom=yesterday"):
        response = api(host, "DELETE", f"/instances{query}")
        assert response.status == 400
        assert response.json() == "Please provide value for 'createdTimeFrom' parameter."
        assert response.header("content-type") == JSON_CONTENT_TYPE
    assert_empty(api(host, "DELETE", "/instances?createdTimeFrom=2999-01-01T00:00:00Z"), 404)
    since = status_of(host, running(host, "pf-run"), lambda s: True)["createdTime"]
    finished(host, "pf-done")
    response = api(host, "DELETE", f"/instances?createdTimeFrom={since}&runtimeStatus=Running")
    assert response.status == 200
    assert response.json()["instancesDeleted"] >= 2
    assert api(host, "GET", "/instances/pf-run").status == 404  # running, and purged
    assert api(host, "GET", "/instances/pf-done").status == 404
    host.wait_for_log("DELETE instances/ with runtimeStatus Running: the Azure Storage backend")
