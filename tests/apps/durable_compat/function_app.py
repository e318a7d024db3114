"""Small orchestrations for the Durable HTTP API rows of docs/compatibility.md: one that
finishes at once, one that waits for an event, one that fails, and an HTTP function
that lists instances through the SDK's client."""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def noop(context: df.DurableOrchestrationContext):
    value = context.get_input()
    if False:  # an orchestrator is a generator
        yield
    return value


@app.orchestration_trigger(context_name="context")
def waits(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "before failing")
    raise ValueError("it broke")


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}!"


@app.route(route="sdk/list", methods=["GET"])
@app.durable_client_input(client_name="client")
async def sdk_list(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    found = await client.get_status_by(instance_id_prefix=req.params.get("prefix"))
    return func.HttpResponse(json.dumps(len(found)), mimetype="application/json")
