"""The benchmark app: the workflow shapes of bench/durable.py as an ordinary Azure Functions
Python v2 app (no HTTP functions: instances start through the durable HTTP API).

Inputs are objects: the SDK's get_input() decodes a bare number started through the
HTTP API as a non-string and fails."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def hello_cities(context: df.DurableOrchestrationContext):
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield context.call_activity("say_hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    total = 0
    for n in range(int(context.get_input()["count"])):
        total += yield context.call_activity("step", n)
    return total


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = int(context.get_input()["count"])
    values = yield context.task_all([context.call_activity("step", n) for n in range(count)])
    return sum(values)


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


@app.activity_trigger(input_name="n")
def step(n: int) -> int:
    return n + 1
