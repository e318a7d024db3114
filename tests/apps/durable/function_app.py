"""A durable app exercising the client API, chaining, fan-out/fan-in and failures."""

import json

import azure.durable_functions as df
import azure.functions as func
from models import Point

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _json_response(value, status_code=200):
    return func.HttpResponse(json.dumps(value), status_code=status_code,
                             mimetype="application/json")


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    payload = json.loads(body) if body else None
    if req.params.get("point"):
        payload = Point(*payload)
    instance_id = await client.start_new(req.route_params["name"],
                                         req.params.get("instance_id"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="wait/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], None,
                                         json.loads(body) if body else None)
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=30000, retry_interval_in_milliseconds=100)


@app.route(route="payload/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def payload(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    response = client.create_http_management_payload(req.route_params["id"])
    return _json_response(response)


@app.route(route="status/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    result = await client.get_status(
        req.route_params["id"], show_history=req.params.get("history") == "1",
        show_history_output=req.params.get("output") == "1",
        show_input=req.params.get("input") != "0")
    if not result:
        return _json_response({"found": False}, 404)
    data = result.to_json()
    data["found"] = True
    return _json_response(data)


@app.route(route="list", methods=["GET"])
@app.durable_client_input(client_name="client")
async def list_instances(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    statuses = req.params.get("status")
    if statuses:
        found = await client.get_status_by(
            runtime_status=[df.OrchestrationRuntimeStatus(s) for s in statuses.split(",")])
    else:
        found = await client.get_status_all()
    return _json_response(sorted(s.instance_id for s in found))


@app.route(route="raise/{id}/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    body = req.get_body()
    try:
        await client.raise_event(req.route_params["id"], req.route_params["event"],
                                 json.loads(body) if body else None)
    except Exception as error:  # the SDK raises with the API's meaning in the message
        return _json_response({"error": str(error)}, 400)
    return _json_response({"raised": True}, 202)


@app.route(route="terminate/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    try:
        await client.terminate(req.route_params["id"], req.params.get("reason", "stopped"))
    except Exception as error:
        return _json_response({"error": str(error)}, 400)
    return _json_response({"terminated": True}, 202)


@app.route(route="purge/{id}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def purge(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    result = await client.purge_instance_history(req.route_params["id"])
    return _json_response({"deleted": result.instances_deleted})


@app.route(route="purge-all", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def purge_all(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    from datetime import datetime, timedelta, timezone

    result = await client.purge_instance_history_by(
        created_time_from=datetime.now(timezone.utc) - timedelta(days=1),
        runtime_status=[df.OrchestrationRuntimeStatus.Completed])
    return _json_response({"deleted": result.instances_deleted})


# -- orchestrators ------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def chaining(context: df.DurableOrchestrationContext):
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield context.call_activity("hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = int(context.get_input())
    values = yield context.task_all([context.call_activity("double", n) for n in range(count)])
    return {"count": len(values), "sum": sum(values)}


@app.orchestration_trigger(context_name="context")
def first_of_two(context: df.DurableOrchestrationContext):
    winner = yield context.task_any([context.call_activity("hello", "A"),
                                     context.call_activity("hello", "B")])
    return winner.result


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "before failing")
    raise ValueError("the orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def catches(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("explode", "x")
    except Exception as error:
        cleanup = yield context.call_activity("hello", "cleanup")
        return {"caught": str(error).splitlines()[0], "then": cleanup}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def does_not_catch(context: df.DurableOrchestrationContext):
    yield context.call_activity("explode", "y")
    return "not reached"


@app.orchestration_trigger(context_name="context")
def calls_unknown(context: df.DurableOrchestrationContext):
    yield context.call_activity("no_such_activity", None)
    return "not reached"


@app.orchestration_trigger(context_name="context")
def with_status(context: df.DurableOrchestrationContext):
    context.set_custom_status({"step": 1})
    yield context.call_activity("hello", "one")
    context.set_custom_status({"step": 2})
    return "done"


@app.orchestration_trigger(context_name="context")
def waits_for_event(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    approval = yield context.wait_for_external_event("Approval")
    greeting = yield context.call_activity("hello", approval)
    return greeting


@app.orchestration_trigger(context_name="context")
def bad_output(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    return {1, 2, 3}


@app.orchestration_trigger(context_name="context")
def bad_activity_output(context: df.DurableOrchestrationContext):
    value = yield context.call_activity("unserialisable", None)
    return value


@app.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    value = context.get_input()
    echoed = yield context.call_activity("echo", value)
    return echoed


@app.orchestration_trigger(context_name="context")
def point_sum(context: df.DurableOrchestrationContext):
    point = context.get_input()
    moved = yield context.call_activity("move", point)
    return {"type": type(point).__name__, "x": moved.x, "y": moved.y}


# -- activities ---------------------------------------------------------------------

@app.activity_trigger(input_name="city")
def hello(city: str) -> str:
    return f"Hello {city}!"


@app.activity_trigger(input_name="n")
async def double(n: int) -> int:
    return n * 2


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise RuntimeError(f"activity exploded on {value}")


@app.activity_trigger(input_name="value")
def unserialisable(value):
    return object()


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.activity_trigger(input_name="point")
def move(point: Point) -> Point:
    return Point(point.x + 1, point.y + 1)


@app.orchestration_trigger(context_name="context")
def sleeps(context: df.DurableOrchestrationContext):
    from datetime import timedelta

    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(seconds=1))
    elapsed = (context.current_utc_datetime - started).total_seconds()
    return {"slept_at_least_a_second": elapsed >= 1}


@app.orchestration_trigger(context_name="context")
def approval_or_timeout(context: df.DurableOrchestrationContext):
    from datetime import timedelta

    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    approval = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval, timer])
    if winner == approval:
        timer.cancel()
        return "approved"
    return "timed out"


@app.orchestration_trigger(context_name="context")
def slow_step(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("nap", 3)
    return result


@app.activity_trigger(input_name="seconds")
def nap(seconds: int) -> str:
    import time

    time.sleep(seconds)
    return f"slept {seconds}s"
