"""The sample app in function_app/, driven the way the README shows it with curl."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.host import REPO, HostProcess, request, start_host

from runtime.storage.connection import StorageEndpoints


@pytest.fixture
def host(azurite: StorageEndpoints, task_hub_name: str, tmp_path: Path) -> Iterator[HostProcess]:
    config = json.loads((REPO / "host.json").read_text())
    config["extensions"]["durableTask"]["hubName"] = task_hub_name
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(config))
    process = start_host(REPO / "function_app", env={
        "AzureWebJobsStorage": azurite.connection_string},
        args=["--no-azurite", "--host-json", str(host_json),
              "--settings", str(REPO / "local.settings.json")])
    yield process
    process.stop()


def follow(status_url: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = request("GET", status_url)
        if response.status == 200:
            return dict(response.json())
        assert response.status == 202, response.text
        time.sleep(0.05)
    raise AssertionError(f"{status_url} did not finish")


ORDER = {"orderId": "A-1001", "items": [{"sku": "BOOK-1", "quantity": 2}],
         "card": "4111111111111111", "email": "buyer@example.test"}


def test_order_happy_path(host: HostProcess) -> None:
    response = host.post("/api/orders", json.dumps(ORDER),
                         headers={"Content-Type": "application/json"})
    assert response.status == 202
    status = follow(response.json()["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Completed"
    assert status["name"] == "PlaceOrder"
    assert str(status["output"]).startswith("TRK-")
    assert status["customStatus"] == {"stage": "done"}
    host.wait_for_log("Emailed buyer@example.test")


def test_order_with_declined_payment_releases_stock_and_fails(host: HostProcess) -> None:
    order = dict(ORDER, orderId="A-1002", card="4000000000000000")
    response = host.post("/api/orders", json.dumps(order),
                         headers={"Content-Type": "application/json"})
    status = follow(response.json()["statusQueryGetUri"])
    assert status["runtimeStatus"] == "Failed"
    assert "Payment for order A-1002 failed" in status["output"]
    assert "card declined" in status["output"]
    assert status["customStatus"]["stage"] == "payment-failed"
    assert status["customStatus"]["reservationReleased"].startswith("RES-")
    host.wait_for_log("Released reservation RES-")


def test_order_input_errors(host: HostProcess) -> None:
    assert host.post("/api/orders", "not json").status == 400
    missing = host.post("/api/orders", json.dumps({"orderId": "x"}))
    assert missing.status == 400
    assert "missing fields" in missing.json()["error"]


def test_hello_cities(host: HostProcess) -> None:
    response = host.post("/api/orchestrators/hello_orchestrator")
    assert response.status == 202
    status = follow(response.json()["statusQueryGetUri"])
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_out_fan_in(host: HostProcess) -> None:
    response = host.post("/api/orchestrators/fan_out_fan_in", "20")
    status = follow(response.json()["statusQueryGetUri"])
    assert status["output"] == {"count": 20, "sum": sum(n * n for n in range(1, 21))}


def test_plain_http_function(host: HostProcess) -> None:
    assert host.get("/api/hello?name=Ann").text == "Hello, Ann!"


def test_approval_before_the_deadline_and_escalation_after_it(host: HostProcess) -> None:
    approved = host.post("/api/orchestrators/expense_approval",
                         json.dumps({"amount": 120, "deadlineSeconds": 60})).json()
    late = host.post("/api/orchestrators/expense_approval",
                     json.dumps({"amount": 99, "deadlineSeconds": 1})).json()
    deadline = time.monotonic() + 30
    while request("GET", approved["statusQueryGetUri"]).json()["customStatus"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    event = approved["sendEventPostUri"].replace("{eventName}", "Approval")
    assert request("POST", event, '"Ann"', {"Content-Type": "application/json"}).status == 202
    assert follow(approved["statusQueryGetUri"])["output"] == "approved by Ann"
    assert follow(late["statusQueryGetUri"])["output"] == "escalated"


def test_monitor_continues_as_new_until_the_job_is_done(host: HostProcess) -> None:
    started = host.post("/api/orchestrators/job_monitor",
                        json.dumps({"jobId": "job-7", "intervalSeconds": 0.2})).json()
    status = follow(started["statusQueryGetUri"])
    assert status["output"] == {"jobId": "job-7", "status": "done", "checks": 3}


def test_sub_orchestrations_and_retries(host: HostProcess) -> None:
    report = host.post("/api/orchestrators/sales_report").json()
    assert follow(report["statusQueryGetUri"])["output"] == {
        "regions": {"north": 550, "south": 550, "east": 440, "west": 440}, "total": 1980}
    download = host.post("/api/orchestrators/download_with_retries", '"reports.zip"').json()
    assert follow(download["statusQueryGetUri"])["output"] == \
        "downloaded reports.zip on attempt 3"


def poll(path_get: Any, expected: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = path_get()
        if seen == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"saw {seen!r}, not {expected!r}")


def test_counter_entity_over_http(host: HostProcess) -> None:
    assert host.get("/api/counter/visits").status == 404
    for amount in ("5", "7"):
        assert host.post("/api/counter/visits/add", amount).status == 202

    def visits() -> Any:
        response = host.get("/api/counter/visits")
        return response.json() if response.status == 200 else response.status
    poll(visits, 12)
    assert host.post("/api/counter/visits/delete").status == 202
    poll(visits, 404)


def test_cart_entity_and_checkout_orchestration(host: HostProcess) -> None:
    json_body = {"Content-Type": "application/json"}
    for item in ({"sku": "apple", "quantity": 4}, {"sku": "coffee", "quantity": 1},
                 {"sku": "apple", "quantity": -1}, {"sku": "apple", "quantity": 2}):
        assert host.post("/api/carts/c1/items", json.dumps(item), headers=json_body).status == 202
    entity = "/runtime/webhooks/durabletask/entities/cart/c1"

    def cart() -> Any:
        response = host.get(entity)
        return response.json() if response.status == 200 else response.status
    poll(cart, {"apple": 6, "coffee": 1})  # the negative quantity failed and changed nothing
    host.wait_for_log("Entity '@cart@c1': operation 'add' failed and was rolled back: "
                      "quantity must be positive, not -1")
    checkout = host.post("/api/carts/c1/checkout").json()
    assert follow(checkout["statusQueryGetUri"])["output"] == {
        "status": "paid", "items": {"apple": 6, "coffee": 1}, "total": 10.0}
    poll(cart, 404)  # emptied once paid
    # The orchestration signals the counter (fire and forget): 404 until it is applied.
    def checkouts() -> Any:
        response = host.get("/api/counter/checkouts")
        return response.json() if response.status == 200 else response.status
    poll(checkouts, 1)
    again = host.post("/api/carts/c1/checkout").json()
    assert follow(again["statusQueryGetUri"])["output"] == {"status": "empty cart"}
