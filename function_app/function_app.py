"""The sample app: a plain HTTP function, the order workflow, hello-cities chaining, a
fan-out/fan-in example and the patterns of patterns.py (approval with a deadline,
monitor, sub-orchestrations, retries) and the entities of entities.py (a counter and a
shopping cart). It is an unmodified Azure Functions Python v2 app."""

import json
import logging

import azure.durable_functions as df
import azure.functions as func
from entities import entities
from orders import orders
from patterns import patterns

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(orders)
app.register_functions(patterns)
app.register_functions(entities)


@app.route(route="hello", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name") or "world"
    return func.HttpResponse(f"Hello, {name}!")


# -- hello cities: the classic chaining starter ---------------------------------------

@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], None, payload)
    logging.info("Started orchestration with ID = '%s'.", instance_id)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext):
    result1 = yield context.call_activity("hello_activity", "Tokyo")
    result2 = yield context.call_activity("hello_activity", "Seattle")
    result3 = yield context.call_activity("hello_activity", "London")
    return [result1, result2, result3]


@app.activity_trigger(input_name="city")
def hello_activity(city: str) -> str:
    return f"Hello {city}!"


# -- fan-out/fan-in ---------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    count = context.get_input() or 10
    tasks = [context.call_activity("square", n) for n in range(1, int(count) + 1)]
    squares = yield context.task_all(tasks)
    return {"count": len(squares), "sum": sum(squares)}


@app.activity_trigger(input_name="n")
def square(n: int) -> int:
    return n * n
