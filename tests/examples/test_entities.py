"""Durable entities (function_app/entities.py): a counter and a shopping cart."""

import azure.durable_functions as df


async def test_the_counter_adds_what_it_is_sent(durable_env):
    for amount in (5, 7):
        response = await durable_env.http.post("/api/counter/visits/add", json=amount)
        assert response.status == 202
    await durable_env.wait_until_idle()

    response = await durable_env.http.get("/api/counter/visits")

    assert response.json() == 12
    state = await durable_env.client.read_entity_state(df.EntityId("counter", "visits"))
    assert state.entity_exists and state.entity_state == 12


async def test_checkout_empties_the_cart_and_counts_it(durable_env):
    cart = df.EntityId("cart", "c1")
    await durable_env.client.signal_entity(cart, "add", {"sku": "apple", "quantity": 4})
    await durable_env.client.signal_entity(cart, "add", {"sku": "coffee"})
    await durable_env.client.signal_entity(cart, "add", {"sku": "apple", "quantity": -1})
    await durable_env.wait_until_idle()

    instance_id = await durable_env.client.start_new("checkout", None, "c1")
    status = await durable_env.wait_for_completion(instance_id)
    await durable_env.wait_until_idle()

    assert status.output == {"status": "paid", "items": {"apple": 4, "coffee": 1},
                             "total": 9.0}
    assert not (await durable_env.client.read_entity_state(cart)).entity_exists
    checkouts = await durable_env.client.read_entity_state(df.EntityId("counter",
                                                                       "checkouts"))
    assert checkouts.entity_state == 1
    assert "quantity must be positive, not -1" in durable_env.console.text
