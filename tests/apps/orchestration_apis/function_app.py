"""An app using the orchestration APIs real apps use: retries, sub-orchestrations,
continue-as-new, instance control through the SDK client, call_http, new_uuid,
versioning; driven over HTTP by tests/integration/test_orchestration_apis.py."""

import json
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
ATTEMPTS: dict[str, int] = {}  # per key, in this worker process


def _json(value, status_code=200):
    return func.HttpResponse(json.dumps(value), status_code=status_code,
                             mimetype="application/json")


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"],
                                         req.params.get("instance_id"),
                                         json.loads(body) if body else None,
                                         version=req.params.get("version"))
    return client.create_check_status_response(req, instance_id)


@app.route(route="control/{operation}/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def control(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """The SDK client's instance control, as an app's own endpoint would call it."""
    operation, instance_id = req.route_params["operation"], req.route_params["id"]
    try:
        if operation == "suspend":
            result = await client.suspend(instance_id, "paused by the test")
        elif operation == "resume":
            result = await client.resume(instance_id, "resumed by the test")
        elif operation == "terminate":
            result = await client.terminate(instance_id, "stopped by the test")
        elif operation == "rewind":
            result = await client.rewind(instance_id, "rewound by the test")
        elif operation == "restart":
            result = await client.restart(instance_id,
                                          req.params.get("new", "true") == "true")
        else:
            return _json({"error": f"no operation {operation}"}, 404)
    except Exception as error:  # the SDK raises with the API's meaning in the message
        return _json({"error": str(error)}, 400)
    return _json({"result": result})


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"body": req.get_body().decode(), "header": req.headers.get("x-test")}),
        status_code=202, mimetype="application/json", headers={"Location": "/api/echo"})


@app.orchestration_trigger(context_name="context")
def with_retries(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=200,
                              max_number_of_attempts=3)
    key, failures = context.get_input()
    first = yield context.call_activity_with_retry("flaky", options, [key, failures])
    child = yield context.call_sub_orchestrator_with_retry(
        "flaky_child", options, [key + "-child", failures])
    return [first, child]


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    key, failures = context.get_input()
    attempt = yield context.call_activity("count", key)
    if attempt <= failures:
        raise ValueError(f"{key} child failed on attempt {attempt}")
    return f"{key} child succeeded on attempt {attempt}"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all(
        [context.call_sub_orchestrator("child", n) for n in range(count)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    doubled = yield context.call_activity("double", context.get_input())
    return doubled


@app.orchestration_trigger(context_name="context")
def eternal(context: df.DurableOrchestrationContext):
    state = context.get_input() or {"n": 0, "events": []}
    if state["n"] >= 25:
        return state
    yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=10))
    context.continue_as_new({"n": state["n"] + 1, "events": state["events"]})
    return None


@app.orchestration_trigger(context_name="context")
def waits(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    value = yield context.wait_for_external_event("go")
    greeting = yield context.call_activity("hello", value)
    return greeting


@app.orchestration_trigger(context_name="context")
def fails_once(context: df.DurableOrchestrationContext):
    before = yield context.call_activity("hello", "before")
    after = yield context.call_activity("flaky", [context.instance_id, 1])
    return [before, after]


@app.orchestration_trigger(context_name="context")
def fetches(context: df.DurableOrchestrationContext):
    response = yield context.call_http("POST", context.get_input(), content={"q": 1},
                                       headers={"x-test": "yes"})
    return response


@app.orchestration_trigger(context_name="context")
def replay_safe(context: df.DurableOrchestrationContext):
    first = context.new_uuid()
    yield context.call_activity("hello", "uuid")
    return {"uuids": [first, context.new_uuid()], "version": context.version}


@app.activity_trigger(input_name="args")
def flaky(args: list) -> str:
    key, failures = args
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= failures:
        raise RuntimeError(f"{key} failed on attempt {ATTEMPTS[key]}")
    return f"{key} succeeded on attempt {ATTEMPTS[key]}"


@app.activity_trigger(input_name="key")
def count(key: str) -> int:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    return ATTEMPTS[key]


@app.activity_trigger(input_name="n")
def double(n: int) -> int:
    return n * 2


@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}!"
