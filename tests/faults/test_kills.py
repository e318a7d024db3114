"""kill -9 of the host at a random point while 200 orchestrations (chains, fan-outs,
timers, events) run, then a restart: nothing acknowledged is lost, no history event is
recorded twice, every instance ends with its output."""

from __future__ import annotations

import random
import threading
import time

import pytest
from support.azurite import unique_hub_name
from support.host import HostProcess, free_port, start_host
from workload import APP, FIGURES, Workload, duplicated_history_events, re_executions

from runtime.storage.connection import StorageEndpoints

RUNS = 10


def external_host(azurite: StorageEndpoints, hub: str, port: int) -> HostProcess:
    return start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                "TEST_HUB_NAME": hub}, args=["--no-azurite"], port=port)


@pytest.mark.parametrize("run", range(RUNS))
def test_kill_9_at_a_random_point_loses_nothing(azurite: StorageEndpoints, run: int) -> None:
    hub = unique_hub_name(f"kill{run}")
    chance = random.Random(run)
    port = free_port()
    host = external_host(azurite, hub, port)
    workload = Workload(prefix=f"k{run}-")
    delay = chance.uniform(0.3, 2.5)
    if run % 2:
        # Odd runs: kill while the instances run (all started).
        workload.start_all(host)
        time.sleep(delay)
        host.process.kill()
    else:
        # Even runs: kill while starts are still arriving.
        killer = threading.Timer(delay, host.process.kill)
        killer.start()
        workload.start_all(host)
        killer.join()
    host.process.wait()
    host.stop()
    assert workload.acknowledged, "the kill came before any start was acknowledged"
    restarted_at = time.monotonic()
    restarted = external_host(azurite, hub, port)
    try:
        restarted.wait_for_log("Owns partitions")
        owned = time.monotonic() - restarted_at
        workload.raise_events(restarted)
        found = workload.wait_all_done(restarted)
        finished = time.monotonic() - restarted_at
        workload.check_outputs(found)
        assert duplicated_history_events(azurite, hub, workload.prefix) == 0
    finally:
        restarted.stop()
    FIGURES.runs["kill -9, external Azurite"] += 1
    FIGURES.kills += 1
    FIGURES.instances += len(found)
    FIGURES.re_executed += re_executions([host.log_text(), restarted.log_text()])
    FIGURES.takeover_s.append(owned)
    FIGURES.finish_s.append(finished)
