"""Function chaining (`hello_orchestrator` in function_app/function_app.py): three
activities in a row, started through the app's own HTTP starter and through the SDK's
client."""

from runtime.testing import EventType


async def test_hello_cities_in_order(durable_env):
    instance_id = await durable_env.client.start_new("hello_orchestrator")

    status = await durable_env.wait_for_completion(instance_id)

    assert status.runtime_status.value == "Completed"
    assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    history = await durable_env.history(instance_id)
    # One activity per episode: each is scheduled once the one before it has completed.
    steps = [(e.type.name, e.name or e.result) for e in history
             if e.type in (EventType.TaskScheduled, EventType.TaskCompleted)]
    assert steps == [("TaskScheduled", "hello_activity"), ("TaskCompleted", "Hello Tokyo!"),
                     ("TaskScheduled", "hello_activity"), ("TaskCompleted", "Hello Seattle!"),
                     ("TaskScheduled", "hello_activity"), ("TaskCompleted", "Hello London!")]


async def test_the_http_starter_answers_with_the_status_urls(durable_env):
    response = await durable_env.http.post("/api/orchestrators/hello_orchestrator")

    assert response.status == 202
    body = response.json()
    assert body["statusQueryGetUri"].startswith(durable_env.base_url)
    status = await durable_env.wait_for_completion(body["id"])
    assert status.output[0] == "Hello Tokyo!"
    assert f"Started orchestration with ID = '{body['id']}'." in durable_env.console
