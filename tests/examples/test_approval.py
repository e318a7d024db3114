"""Human interaction with a three-day deadline (`expense_approval` in
function_app/patterns.py): approved in time, or escalated when the deadline passes.
Durable time is virtual, so the three days take no time; the test runs in memory and
on Azurite."""

from datetime import timedelta

import pytest

both_storages = pytest.mark.parametrize("durable_env", ["memory", "azurite"], indirect=True)


@both_storages
async def test_approval_escalates_after_three_days(durable_env):
    instance_id = await durable_env.client.start_new("expense_approval", None,
                                                     {"amount": 500, "deadlineDays": 3})
    await durable_env.wait_for_status(instance_id, "Running")

    await durable_env.fast_forward(timedelta(days=3))
    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == "escalated"


@both_storages
async def test_an_approval_on_day_two_wins(durable_env):
    started = durable_env.now()
    instance_id = await durable_env.client.start_new("expense_approval", None, {"amount": 80})
    await durable_env.wait_for_custom_status(
        instance_id, lambda s: s["waitingFor"] == "Approval")

    await durable_env.fast_forward(timedelta(days=2))
    await durable_env.client.raise_event(instance_id, "Approval", "Ann")
    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == 'approved by "Ann"'  # the SDK sends event data as JSON text
    assert durable_env.now() - started == timedelta(days=2)


async def test_a_day_early_nothing_has_happened(durable_env):
    instance_id = await durable_env.client.start_new("expense_approval", None, {"amount": 80})
    await durable_env.fast_forward(timedelta(days=2, hours=23))

    status = await durable_env.client.get_status(instance_id)

    assert status.runtime_status.value == "Running"
    assert status.custom_status["waitingFor"] == "Approval"
