"""Another app, for the "shared task hub" tests: it has no orchestrator 'approval'."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def report(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("count", 3))


@app.activity_trigger(input_name="value")
def count(value: int) -> int:
    return value
