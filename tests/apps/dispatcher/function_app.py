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
