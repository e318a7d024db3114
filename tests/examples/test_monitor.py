"""A monitor (`job_monitor`): check a job, wait, continue as new, until it is done."""

from datetime import timedelta


async def test_the_monitor_checks_until_the_job_is_done(durable_env):
    instance_id = await durable_env.client.start_new(
        "job_monitor", None, {"jobId": "job-7", "intervalSeconds": 3600})

    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == {"jobId": "job-7", "status": "done", "checks": 3}


async def test_each_check_waits_for_its_interval(durable_env):
    instance_id = await durable_env.client.start_new(
        "job_monitor", None, {"jobId": "job-8", "intervalSeconds": 3600})
    checked = await durable_env.wait_for_custom_status(instance_id,
                                                       lambda s: s["checks"] == 1)
    assert checked.custom_status["status"] == "running"

    await durable_env.fast_forward(timedelta(minutes=59))
    status = await durable_env.client.get_status(instance_id)
    assert status.custom_status["checks"] == 1

    await durable_env.fast_forward(timedelta(minutes=1))
    status = await durable_env.client.get_status(instance_id)
    assert status.custom_status["checks"] == 2
