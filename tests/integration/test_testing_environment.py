"""runtime.testing.DurableEnvironment used directly (`async with`), without the pytest
plugin: auth, the real clock, idle waits, the console, stubs that wait for the test,
history of failures, and the SDK client across event loops."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

from runtime.storage.connection import StorageEndpoints
from runtime.testing import DurableEnvironment, EventType, HarnessError, WaitTimeout

APP = Path(__file__).resolve().parents[2] / "function_app"
ORDER = {"orderId": "C-1", "items": [{"sku": "INK", "quantity": 3}], "card": "4111",
         "email": "c@example.test"}


async def test_with_auth_on_requests_carry_the_master_key_unless_told_otherwise() -> None:
    async with DurableEnvironment.in_memory(APP, enable_auth=True) as env:
        assert env.master_key
        started = await env.http.post("/api/orchestrators/hello_orchestrator")
        assert started.status == 202
        status_url = started.json()["statusQueryGetUri"]
        assert "code=" in status_url  # the management URLs carry the host key, as on Azure
        await env.wait_for_completion(started.json()["id"])
        path = "/runtime/webhooks/durabletask/instances/" + started.json()["id"]
        assert (await env.http.get(path, key=None)).status == 401
        answer = await env.http.get(path)
        assert answer.status == 200 and answer.json()["runtimeStatus"] == "Completed"


async def test_on_the_real_clock_time_cannot_be_moved() -> None:
    async with DurableEnvironment.in_memory(APP, virtual_time=False) as env:
        assert not env.virtual_time
        instance_id = await env.client.start_new("download_with_retries", None, "x")
        # The real one-second retry timers run their course.
        status = await env.wait_for_completion(instance_id, timeout=20)
        assert status.output == "downloaded x on attempt 3"
        with pytest.raises(HarnessError, match="real clock"):
            await env.fast_forward(timedelta(days=1))


async def test_a_coroutine_stub_runs_in_the_tests_loop_and_holds_the_activity() -> None:
    async with DurableEnvironment.in_memory(APP) as env:
        gate = asyncio.Event()  # of the test's loop

        async def ship(request: dict) -> dict:
            await gate.wait()
            return {"trackingNumber": "TRK-TEST"}
        shipping = env.stub_activity("ScheduleShipping", call=ship)
        instance_id = await env.client.start_new("PlaceOrder", None, ORDER)
        await env.wait_for_custom_status(instance_id, {"stage": "shipping"})
        assert shipping.call_count == 0  # recorded when answered
        gate.set()
        status = await env.wait_for_completion(instance_id)
        assert status.output == "TRK-TEST"
        assert shipping.inputs[0]["order"]["orderId"] == "C-1"
        shipping.remove()
        second = await env.client.start_new("PlaceOrder", None, dict(ORDER, orderId="C-2"))
        assert (await env.wait_for_completion(second)).output.startswith("TRK-")


async def test_failures_in_the_history_and_the_console(azurite: StorageEndpoints) -> None:
    async with DurableEnvironment.on_azurite(
            APP, connection_string=azurite.connection_string) as env:
        assert env.storage == "azurite"
        instance_id = await env.client.start_new(
            "PlaceOrder", None, dict(ORDER, card="4000000000000000"))
        status = await env.wait_for_completion(instance_id)
        assert status.runtime_status == df.OrchestrationRuntimeStatus.Failed
        events = await env.history(instance_id)
        failed = next(e for e in events if e.type == EventType.TaskFailed)
        assert failed.reason == ("Activity function 'ProcessPayment' failed: PaymentDeclined: "
                                 "card declined")
        assert "PaymentDeclined" in (failed.details or "")
        end = events[-2]
        assert (end.type, end.status) == (EventType.ExecutionCompleted, "Failed")
        assert "Executing 'Functions.process_payment'" in env.console
        assert (f"Orchestration 'PlaceOrder' ({instance_id}) failed: Payment for order C-1 "
                "failed: Activity function 'ProcessPayment' failed: PaymentDeclined: card "
                "declined") in env.console.text
        assert any("[worker" in line and "Released reservation" in line
                   for line in env.console.lines)
        described = await env.describe()
        assert f"Instance '{instance_id}' (PlaceOrder): Failed" in described


async def test_wait_until_idle_and_its_timeout() -> None:
    async with DurableEnvironment.in_memory(APP) as env:
        release = threading.Event()
        env.stub_activity("hello_activity", call=lambda city: release.wait(10) and city)
        instance_id = await env.client.start_new("hello_orchestrator")
        with pytest.raises(WaitTimeout, match=r"still busy after 0.3 s: .*1 activity"):
            await env.wait_until_idle(timeout=0.3)
        release.set()
        await env.wait_until_idle()
        status = await env.client.get_status(instance_id)
        assert status.output == ["Tokyo", "Seattle", "London"]


async def test_a_wait_for_an_unknown_instance_says_so() -> None:
    async with DurableEnvironment.in_memory(APP) as env:
        with pytest.raises(WaitTimeout, match=f"task hub {env.hub_name} has no such instance"):
            await env.wait_for_completion("nobody", timeout=0.2)


def test_the_sdk_client_works_in_one_event_loop_after_another() -> None:
    # Each asyncio.run is a new loop, as pytest-asyncio gives each test by default.
    env = DurableEnvironment.in_memory(APP).open()
    try:
        async def one_round() -> object:
            client = df.DurableOrchestrationClient(env.client_binding)
            instance_id = await client.start_new("hello_orchestrator")
            return (await env.wait_for_completion(instance_id)).output

        results = [asyncio.run(one_round()) for _ in range(3)]
    finally:
        env.close()
    assert results == [["Hello Tokyo!", "Hello Seattle!", "Hello London!"]] * 3
