"""The benchmark app: the workflow shapes of bench/durable.py as an ordinary Azure Functions
Python v2 app (no HTTP functions: instances start and entities are signalled and read
through the durable HTTP API).

Inputs are objects: the SDK's get_input() decodes a bare number started through the
HTTP API as a non-string and fails.

`flaky_step` fails the first RETRY_FAILURES attempts of every call, counted per
(instance, step) in this worker process: the host runs one worker for this app (the
benchmark starts it without FUNCTIONS_WORKER_PROCESS_COUNT), so every attempt of a call
lands here. The peers count attempts the same way (bench/peers/)."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

RETRY_FAILURES = 2  # as bench/shapes.py; the app does not import the bench package
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=100,
                        max_number_of_attempts=RETRY_FAILURES + 1)
ATTEMPTS: dict[str, int] = {}  # attempts so far of each unfinished flaky_step call


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


@app.orchestration_trigger(context_name="context")
def retry_chain(context: df.DurableOrchestrationContext):
    attempts = 0
    for n in range(int(context.get_input()["count"])):
        attempts += yield context.call_activity_with_retry(
            "flaky_step", RETRY, [context.instance_id, n])
    return attempts


@app.orchestration_trigger(context_name="context")
def sub_orchestrations(context: df.DurableOrchestrationContext):
    count = int(context.get_input()["count"])
    values = yield context.task_all([context.call_sub_orchestrator("one_step", {"n": n})
                                     for n in range(count)])
    return sum(values)


@app.orchestration_trigger(context_name="context")
def one_step(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("step", context.get_input()["n"]))


@app.orchestration_trigger(context_name="context")
def generations(context: df.DurableOrchestrationContext):
    state = context.get_input()
    count, n = int(state["count"]), int(state.get("n", 0))
    n = yield context.call_activity("step", n)
    if n >= count:
        return n
    context.continue_as_new({"count": count, "n": n})
    return None


@app.orchestration_trigger(context_name="context")
def entity_calls(context: df.DurableOrchestrationContext):
    """Sequential round trips to a counter of its own (keyed by the instance id, so fresh
    each run): the counter's final value, one per call."""
    counter_id = df.EntityId("counter", context.instance_id)
    value = 0
    for _ in range(int(context.get_input()["count"])):
        value = yield context.call_entity(counter_id, "add", 1)
    return value


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    """The documentation's counter; "add" also answers the new value (for call_entity)."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
        context.set_result(value)
    elif operation == "reset":
        value = 0
    elif operation == "get":
        context.set_result(value)
    context.set_state(value)


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


@app.activity_trigger(input_name="n")
def step(n: int) -> int:
    return n + 1


@app.activity_trigger(input_name="call")
def flaky_step(call: list) -> int:
    """Fails the first RETRY_FAILURES attempts of a call; returns the attempts it took."""
    key = f"{call[0]}/{call[1]}"
    attempt = ATTEMPTS.get(key, 0) + 1
    if attempt <= RETRY_FAILURES:
        ATTEMPTS[key] = attempt
        raise RuntimeError(f"step {call[1]} fails on attempt {attempt}, as planned")
    ATTEMPTS.pop(key, None)
    return attempt
