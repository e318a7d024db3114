"""Orchestrations for the dispatcher's cases (tests/support/dispatcher_cases.py)."""

import time
from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


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
def fan_out_slowly(context: df.DurableOrchestrationContext):
    count = int(context.get_input())
    values = yield context.task_all([context.call_activity("pause", n) for n in range(count)])
    return sum(values)


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
def waits_for_event(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    approval = yield context.wait_for_external_event("Approval")
    greeting = yield context.call_activity("hello", approval)
    return greeting


@app.orchestration_trigger(context_name="context")
def sleeps(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(seconds=1))
    elapsed = (context.current_utc_datetime - started).total_seconds()
    return {"slept_at_least_a_second": elapsed >= 1}


@app.orchestration_trigger(context_name="context")
def approval_or_timeout(context: df.DurableOrchestrationContext):
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


# -- retries, sub-orchestrations, continue-as-new, control, the rest of the context -------

FAILURES: dict[str, int] = {}  # attempts seen per key, in this worker process


@app.orchestration_trigger(context_name="context")
def retries(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100,
                              max_number_of_attempts=3)
    key, failures = context.get_input()
    return (yield context.call_activity_with_retry("flaky", options, [key, failures]))


@app.orchestration_trigger(context_name="context")
def flaky_call(context: df.DurableOrchestrationContext):
    before = yield context.call_activity("hello", "before")
    key, failures = context.get_input()
    result = yield context.call_activity("flaky", [key, failures])
    return [before, result]


@app.orchestration_trigger(context_name="context")
def retries_in_a_fan_out(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100,
                              max_number_of_attempts=3)
    key = context.get_input()
    tasks = [context.call_activity_with_retry("flaky", options, [f"{key}-{n}", n % 3])
             for n in range(6)]
    return (yield context.task_all(tasks))


@app.orchestration_trigger(context_name="context")
def retries_run_out(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=100,
                              max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("explode", options, "always")
    except Exception as error:
        after = yield context.call_activity("hello", "after")
        return {"error": str(error).split(" \n ")[0], "after": after}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    count = context.get_input()
    children = [context.call_sub_orchestrator("child", n) for n in range(count)]
    results = yield context.task_all(children)
    named = yield context.call_sub_orchestrator("child", 100, f"{context.instance_id}-named")
    return {"sum": sum(results), "named": named}


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    value = context.get_input()
    doubled = yield context.call_activity("double", value)
    return {"value": doubled, "parent": context.parent_instance_id}["value"]


@app.orchestration_trigger(context_name="context")
def parent_of_a_failure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("failing_child", None)
    except Exception as error:
        return str(error).split(" \n ")[0]
    return "not reached"


@app.orchestration_trigger(context_name="context")
def failing_child(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "child")
    raise ValueError("the child gave up")


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    if n >= 25:
        return n
    context.continue_as_new(n + 1)
    return None


@app.orchestration_trigger(context_name="context")
def waiting_counter(context: df.DurableOrchestrationContext):
    state = context.get_input() or {"n": 0, "seen": []}
    if state["n"] >= 3:
        return state
    name = yield context.wait_for_external_event("next")
    state = {"n": state["n"] + 1, "seen": state["seen"] + [name]}
    context.continue_as_new(state)
    return None


@app.orchestration_trigger(context_name="context")
def uuids(context: df.DurableOrchestrationContext):
    first = context.new_uuid()
    yield context.call_activity("hello", "uuid")
    return [first, context.new_uuid(), context.is_replaying]


@app.orchestration_trigger(context_name="context")
def fetches(context: df.DurableOrchestrationContext):
    url = context.get_input()
    response = yield context.call_http("POST", url, content={"q": 1},
                                       headers={"X-Test": "yes"})
    return response


@app.orchestration_trigger(context_name="context")
def versioned(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "v")
    return context.version


# -- entities ---------------------------------------------------------------------------

@app.entity_trigger(context_name="context", entity_name="Counter")
def counter_entity(context: df.DurableEntityContext):
    current = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        context.set_state(current + context.get_input())
    elif operation == "get":
        context.set_result(current)
    elif operation == "reset":
        context.set_state(0)
    elif operation == "delete":
        context.destruct_on_exit()
    elif operation == "fail":
        context.set_state(current + 1000)  # rolled back: the operation raises
        raise ValueError(f"cannot do that at {current}")
    elif operation == "unserialisable":
        context.set_state({1, 2, 3})


@app.orchestration_trigger(context_name="context")
def uses_counter(context: df.DurableOrchestrationContext):
    entity = df.EntityId("counter", context.get_input())
    context.signal_entity(entity, "add", 5)
    context.signal_entity(entity, "add", 10)
    total = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "fail")
    except Exception as error:
        failure = str(error)
    after = yield context.call_entity(entity, "get")
    return {"total": total, "failure": failure, "after": after}


@app.orchestration_trigger(context_name="context")
def calls_unknown_entity(context: df.DurableOrchestrationContext):
    yield context.call_entity(df.EntityId("nobody", "k"), "get")
    return "not reached"


@app.activity_trigger(input_name="args")
def flaky(args: list) -> str:
    key, failures = args
    attempt = FAILURES.get(key, 0) + 1
    FAILURES[key] = attempt
    if attempt <= failures:
        raise RuntimeError(f"{key} failed on attempt {attempt}")
    return f"{key} succeeded on attempt {attempt}"


@app.activity_trigger(input_name="city")
def hello(city: str) -> str:
    return f"Hello {city}!"


@app.activity_trigger(input_name="n")
async def double(n: int) -> int:
    return n * 2


@app.activity_trigger(input_name="n")
def pause(n: int) -> int:
    time.sleep(0.05)
    return n


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise RuntimeError(f"activity exploded on {value}")


@app.activity_trigger(input_name="seconds")
def nap(seconds: int) -> str:
    time.sleep(seconds)
    return f"slept {seconds}s"
