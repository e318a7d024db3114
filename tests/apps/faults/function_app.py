"""Workflows for the fault suite (tests/faults/): chains, fan-outs, timers and events
whose outputs are known in advance, an activity that records each execution on the
console (so re-executions can be counted), and one that kills its worker process."""

import os
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _steps(context, count):
    return [{"id": context.instance_id, "i": i} for i in range(count)]


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    results = []
    for step in _steps(context, 3):
        results.append((yield context.call_activity("step", step)))
    return results


@app.orchestration_trigger(context_name="context")
def fan(context: df.DurableOrchestrationContext):
    return (yield context.task_all([context.call_activity("step", s)
                                    for s in _steps(context, 5)]))


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    return [(yield context.call_activity("step", _steps(context, 1)[0]))]


@app.orchestration_trigger(context_name="context")
def event(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("go")
    return [value, (yield context.call_activity("step", _steps(context, 1)[0]))]


@app.orchestration_trigger(context_name="context")
def crasher(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("die", context.instance_id))


@app.activity_trigger(input_name="step")
def step(step: dict) -> str:
    done = f"{step['id']}:{step['i']}"
    print(f"STEP-EXEC {done}", flush=True)
    return done


@app.activity_trigger(input_name="who")
def die(who: str) -> str:
    os._exit(1)
