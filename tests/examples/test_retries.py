"""Retries (`download_with_retries`): the activity fails twice, then succeeds; each
retry waits a second of durable time, which the environment skips."""

from runtime.testing import EventType


async def test_the_third_attempt_succeeds(durable_env):
    instance_id = await durable_env.client.start_new("download_with_retries", None,
                                                     "reports.zip")

    status = await durable_env.wait_for_completion(instance_id)

    assert status.output == "downloaded reports.zip on attempt 3"
    kinds = [e.type for e in await durable_env.history(instance_id)]
    assert kinds.count(EventType.TaskFailed) == 2
    assert kinds.count(EventType.TimerFired) == 2


async def test_it_gives_up_after_three_attempts(durable_env):
    download = durable_env.stub_activity("download", raises=ConnectionError("still busy"))

    instance_id = await durable_env.client.start_new("download_with_retries", None, "big.iso")
    status = await durable_env.wait_for_completion(instance_id)

    assert status.runtime_status.value == "Failed"
    assert "ConnectionError: still busy" in status.output
    assert download.inputs == ["big.iso"] * 3
    # One second (virtual) between attempts: the first retry interval, backoff 1.
    times = [call.at for call in download.calls]
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)] == \
        [1.0, 1.0]
