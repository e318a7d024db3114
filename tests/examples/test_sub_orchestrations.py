"""Sub-orchestrations (`sales_report`): one child orchestration per region."""

from runtime.testing import EventType


async def test_the_report_adds_up_the_regions(durable_env):
    instance_id = await durable_env.client.start_new("sales_report", None,
                                                     ["north", "south", "east"])

    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == {"regions": {"north": 550, "south": 550, "east": 440},
                             "total": 1540}
    history = await durable_env.history(instance_id)
    children = [e.instance_id for e in history
                if e.type == EventType.SubOrchestrationInstanceCreated]
    assert len(children) == 3
    child = await durable_env.client.get_status(children[0])
    assert child.name == "region_report"
    assert child.output == 550


async def test_a_stubbed_activity_feeds_every_child(durable_env):
    durable_env.stub_activity("region_sales", call=lambda region: [1, 2])

    instance_id = await durable_env.client.start_new("sales_report", None, ["a", "b"])
    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == {"regions": {"a": 3, "b": 3}, "total": 6}
