"""A durable app the reload tests edit while orchestrations are waiting."""

import os
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

VERSION = "v1"
SLOW_SECONDS = 3600


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new(req.route_params["name"], None, None)
    return client.create_check_status_response(req, instance_id)


@app.route(route="version")
def version(req: func.HttpRequest) -> str:
    return VERSION


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("greet", "before")
    context.set_custom_status("waiting")
    name = yield context.wait_for_external_event("Approval")
    second = yield context.call_activity("greet", name)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext):
    context.set_custom_status("started")
    result = yield context.call_activity("slow_step", "x")
    return result


@app.orchestration_trigger(context_name="context")
def slow_replay(context: df.DurableOrchestrationContext):
    # Each run takes SLOW_REPLAY_SECONDS (from the environment, so setting it is no
    # reload): an episode still replaying when the host stops.
    time.sleep(float(os.environ.get("SLOW_REPLAY_SECONDS", "0")))
    result = yield context.call_activity("greet", "slowly")
    return result


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="value")
def slow_step(value: str) -> str:
    time.sleep(SLOW_SECONDS)
    return f"slow step on {VERSION}"
