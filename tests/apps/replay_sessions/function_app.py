"""Orchestrators that show, from the outside, what the worker's replay speed-ups do."""

import random

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    instance_id = await client.start_new(req.route_params["name"], None, None)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def counted_chain(context: df.DurableOrchestrationContext):
    # Runs once per full replay; once per instance while a worker keeps its session.
    print(f"counted_chain body started for {context.instance_id}")
    results = []
    for step in range(5):
        results.append((yield context.call_activity("double", step)))
    return results


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", 1)
    context.set_custom_status(random.random())  # breaks the replay rules on purpose
    yield context.call_activity("double", 2)
    return "done"


@app.activity_trigger(input_name="n")
def double(n: int) -> int:
    return n * 2
