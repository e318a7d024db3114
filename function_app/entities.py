"""Durable entities: a counter and a shopping cart, driven over HTTP (the SDK client's
signal_entity and read_entity_state) and from an orchestration (call_entity and
signal_entity). The README's "Durable entities" section shows the curl commands."""

import json

import azure.durable_functions as df
import azure.functions as func

entities = df.Blueprint()


# -- the counter: the documentation's first entity --------------------------------------

@entities.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "reset":
        value = 0
    elif operation == "get":
        context.set_result(value)
    elif operation == "delete":
        context.destruct_on_exit()
        return
    context.set_state(value)


@entities.route(route="counter/{key}/{operation}", methods=["POST"])
@entities.durable_client_input(client_name="client")
async def signal_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    await client.signal_entity(df.EntityId("counter", req.route_params["key"]),
                               req.route_params["operation"],
                               json.loads(body) if body else None)
    return func.HttpResponse(status_code=202)


@entities.route(route="counter/{key}", methods=["GET"])
@entities.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    state = await client.read_entity_state(df.EntityId("counter", req.route_params["key"]))
    if not state.entity_exists:
        return func.HttpResponse("No such counter.", status_code=404)
    return func.HttpResponse(json.dumps(state.entity_state), mimetype="application/json")


# -- the shopping cart: items and a checkout that must not take a bad cart ------------

@entities.entity_trigger(context_name="context")
def cart(context: df.DurableEntityContext):
    items = context.get_state(dict)
    operation = context.operation_name
    if operation == "add":
        item = context.get_input()
        if item.get("quantity", 1) <= 0:
            raise ValueError(f"quantity must be positive, not {item.get('quantity')}")
        items[item["sku"]] = items.get(item["sku"], 0) + item.get("quantity", 1)
    elif operation == "remove":
        items.pop(context.get_input(), None)
    elif operation == "get":
        context.set_result(items)
    elif operation == "empty":
        context.destruct_on_exit()
        return
    context.set_state(items)


@entities.route(route="carts/{cart}/items", methods=["POST"])
@entities.durable_client_input(client_name="client")
async def add_to_cart(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    await client.signal_entity(df.EntityId("cart", req.route_params["cart"]), "add",
                               req.get_json())
    return func.HttpResponse(status_code=202)


@entities.route(route="carts/{cart}/checkout", methods=["POST"])
@entities.durable_client_input(client_name="client")
async def start_checkout(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new("checkout", None, req.route_params["cart"])
    return client.create_check_status_response(req, instance_id)


PRICES = {"apple": 0.5, "bread": 2.25, "coffee": 7.0}


@entities.orchestration_trigger(context_name="context")
def checkout(context: df.DurableOrchestrationContext):
    cart_id = df.EntityId("cart", context.get_input())
    items = yield context.call_entity(cart_id, "get")
    if not items:
        return {"status": "empty cart"}
    total = yield context.call_activity("price_items", items)
    # Each checkout counts in the "checkouts" counter; the cart is emptied once paid.
    context.signal_entity(df.EntityId("counter", "checkouts"), "add", 1)
    context.signal_entity(cart_id, "empty")
    return {"status": "paid", "items": items, "total": total}


@entities.activity_trigger(input_name="items")
def price_items(items: dict) -> float:
    return round(sum(PRICES.get(sku, 1.0) * quantity for sku, quantity in items.items()), 2)
