"""Fan-out/fan-in (`fan_out_fan_in`): one activity per number, run in parallel, summed."""

from runtime.testing import EventType


async def test_squares_are_summed(durable_env):
    instance_id = await durable_env.client.start_new("fan_out_fan_in", None, 20)

    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == {"count": 20, "sum": sum(n * n for n in range(1, 21))}
    history = await durable_env.history(instance_id)
    assert sum(e.type == EventType.TaskScheduled for e in history) == 20
    # All twenty were scheduled by the first episode, before any result came back.
    first_result = next(i for i, e in enumerate(history) if e.type == EventType.TaskCompleted)
    assert sum(e.type == EventType.TaskScheduled for e in history[:first_result]) == 20


async def test_a_stubbed_activity_sees_every_input(durable_env):
    square = durable_env.stub_activity("square", call=lambda n: n * 10)

    instance_id = await durable_env.client.start_new("fan_out_fan_in", None, 5)
    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == {"count": 5, "sum": 150}
    assert sorted(square.inputs) == [1, 2, 3, 4, 5]
