"""Durable entities as apps write them: a counter and an orchestration that calls it,
driven over HTTP (the SDK client's signal_entity/read_entity_state and the management
API) by tests/integration/test_entities.py."""

import json
import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    current = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        context.set_state(current + context.get_input())
    elif operation == "get":
        context.set_result(current)
    elif operation == "delete":
        context.destruct_on_exit()
    elif operation == "fail":
        context.set_state(-1)
        raise ValueError(f"no, not at {current}")
    elif operation == "exit":  # kills the worker process running it
        os._exit(1)


@app.entity_trigger(context_name="context")
def journal(context: df.DurableEntityContext):
    """Records what it is sent, in order: duplicates and losses show."""
    entries = context.get_state(list)
    if context.operation_name == "append":
        entries.append(context.get_input())
    context.set_state(entries)


@app.route(route="signal/{key}/{operation}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    await client.signal_entity(df.EntityId("counter", req.route_params["key"]),
                               req.route_params["operation"],
                               json.loads(body) if body else None)
    return func.HttpResponse(status_code=202)


@app.route(route="read/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    state = await client.read_entity_state(df.EntityId("counter", req.route_params["key"]))
    return func.HttpResponse(json.dumps({"exists": state.entity_exists,
                                         "state": state.entity_state}),
                             mimetype="application/json")


@app.route(route="call/{key}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def call(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new("calls_counter", None, req.route_params["key"])
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def calls_counter(context: df.DurableOrchestrationContext):
    entity = df.EntityId("counter", context.get_input())
    context.signal_entity(entity, "add", 2)
    before = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "fail")
    except Exception as error:
        failure = str(error)
    after = yield context.call_entity(entity, "get")
    return {"before": before, "failure": failure, "after": after}


@app.orchestration_trigger(context_name="context")
def round_trips(context: df.DurableOrchestrationContext):
    entity = df.EntityId("counter", context.get_input()["key"])
    for _ in range(context.get_input()["count"]):
        yield context.call_entity(entity, "add", 1)
    return (yield context.call_entity(entity, "get"))
