"""The order workflow (function_app/orders.py): reserve stock, take payment, schedule
shipping, email the customer; a declined card releases the stock and fails the order."""

ORDER = {"orderId": "A-1", "items": [{"sku": "BOOK", "quantity": 2}],
         "card": "4111111111111111", "email": "me@example.test"}


async def test_an_order_ships(durable_env):
    response = await durable_env.http.post("/api/orders", json=ORDER)
    assert response.status == 202

    status = await durable_env.wait_for_completion(response.json()["id"])

    assert status.runtime_status.value == "Completed"
    assert status.output.startswith("TRK-")
    assert status.custom_status == {"stage": "done"}


async def test_a_declined_card_releases_the_stock_and_fails_the_order(durable_env):
    order = dict(ORDER, orderId="A-2", card="4000000000000000")
    release = durable_env.stub_activity("ReleaseInventory", result={"released": "stub"})

    instance_id = await durable_env.client.start_new("PlaceOrder", None, order)
    status = await durable_env.wait_for_completion(instance_id)

    assert status.runtime_status.value == "Failed"
    assert "Payment for order A-2 failed: Activity function 'ProcessPayment' failed: " \
        "PaymentDeclined: card declined" in status.output
    assert status.custom_status["stage"] == "payment-failed"
    assert [r["reservationId"] for r in release.inputs] == \
        [status.custom_status["reservationReleased"]]


async def test_a_payment_outage_is_a_failed_order_too(durable_env):
    # The real ProcessPayment never fails for this card: a stub plays the outage.
    durable_env.stub_activity("ProcessPayment", raises=ConnectionError("gateway down"))

    instance_id = await durable_env.client.start_new("PlaceOrder", None, ORDER)
    status = await durable_env.wait_for_completion(instance_id)

    assert status.runtime_status.value == "Failed"
    assert "ConnectionError: gateway down" in status.output


async def test_a_bad_order_is_refused_at_the_door(durable_env):
    response = await durable_env.http.post("/api/orders", json={"orderId": "A-3"})

    assert response.status == 400
    assert response.json() == {"error": "missing fields: items, card, email"}
