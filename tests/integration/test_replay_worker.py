"""The worker's replay speed-ups seen from outside: sessions and verify mode."""

from __future__ import annotations

from support.durable import start, wait_done
from support.host import APPS, REPLAY_MISMATCH, VERIFY_REPLAY_ENV, start_host

from runtime.storage.connection import StorageEndpoints

APP = APPS / "replay_sessions"


def test_a_worker_runs_an_orchestrator_body_once_per_instance(
        azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                "TEST_HUB_NAME": task_hub_name, VERIFY_REPLAY_ENV: "0"},
                      args=["--no-azurite"])
    try:
        instance_id = start(host, "counted_chain")
        status = wait_done(host, instance_id)
        assert (status["runtimeStatus"], status["output"]) == ("Completed", [0, 2, 4, 6, 8])
        # Six episodes; without the session the SDK would have run the body six times.
        started = [line for line in host.output
                   if f"counted_chain body started for {instance_id}" in line]
        assert len(started) == 1, host.log_text()
    finally:
        host.stop()


def test_verify_mode_reports_an_orchestrator_whose_replays_disagree(
        azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                "TEST_HUB_NAME": task_hub_name}, args=["--no-azurite"])
    stopped = False
    try:
        instance_id = start(host, "nondeterministic")
        assert wait_done(host, instance_id)["runtimeStatus"] == "Completed"
        host.wait_for_log(REPLAY_MISMATCH)
        line = next(line for line in host.output if REPLAY_MISMATCH in line)
        assert "'nondeterministic'" in line and instance_id in line
        stopped = True
        try:
            host.stop()
        except AssertionError as exc:
            assert REPLAY_MISMATCH in str(exc)
        else:
            raise AssertionError("stop() did not fail on a replay mismatch")
    finally:
        if not stopped:
            host.process.kill()
