"""An app for the instance CLI tests: instances that complete, fail, wait for an event,
a timer or a slow activity, and an entity."""

import json
import os
import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

SLOW_SECONDS = 3600


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"],
                                         req.params.get("instance_id"),
                                         json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="counter/{key}/add", methods=["POST"])
@app.durable_client_input(client_name="client")
async def add(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    entity = df.EntityId("counter", req.route_params["key"])
    await client.signal_entity(entity, "add", int(req.get_body() or b"1"))
    return func.HttpResponse(status_code=202)


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("greet", "before")
    context.set_custom_status("waiting")
    name = yield context.wait_for_external_event("Approval")
    second = yield context.call_activity("greet", name)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    one = yield context.call_activity("greet", "one")
    two = yield context.call_activity("greet", "two")
    return [one, two]


@app.orchestration_trigger(context_name="context")
def deadline(context: df.DurableOrchestrationContext):
    due = context.current_utc_datetime + timedelta(hours=1)
    yield context.create_timer(due)
    return "late"


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext):
    context.set_custom_status("started")
    return (yield context.call_activity("slow_step", "x"))


@app.orchestration_trigger(context_name="context")
def flaky(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("fail_unless", context.get_input()))


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def slow_step(value: str) -> str:
    time.sleep(SLOW_SECONDS)
    return "slow"


@app.activity_trigger(input_name="path")
def fail_unless(path: str) -> str:
    if not os.path.exists(path):
        raise ValueError(f"{path} is missing")
    return "found"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    context.set_state(value)
