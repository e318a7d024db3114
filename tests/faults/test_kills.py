"""kill -9 of the host at a random point while 200 orchestrations (chains, fan-outs,
timers, events) run, then a restart: nothing acknowledged is lost, no history event is
recorded twice, every instance ends with its output."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest
from support.azurite import emulator_at, free_ports, unique_hub_name
from support.host import HostProcess, free_port, start_host
from workload import APP, FIGURES, Workload, duplicated_history_events, re_executions

from runtime.storage.connection import StorageEndpoints, parse_connection_string

RUNS = 10
MODES = ("external", "managed")


class Target:
    """Where the host runs and its storage: the session's Azurite (external), or the
    Azurite the host manages for its own app folder (managed: detached, it outlives a
    killed host; stopped when the test ends)."""

    def __init__(self, mode: str, azurite: StorageEndpoints, tmp_path: Path, run: int) -> None:
        self.mode = mode
        self.hub = unique_hub_name(f"{mode[:3]}{run}")
        self.port = free_port()
        self.app: Path = APP
        self.storage = azurite
        self.env = {"AzureWebJobsStorage": azurite.connection_string, "TEST_HUB_NAME": self.hub}
        self.args = ["--no-azurite"]
        if mode == "managed":
            self.app = tmp_path / "app"
            shutil.copytree(APP, self.app)
            connection = emulator_at(free_ports(3))
            self.storage = parse_connection_string(connection)
            self.env = {"AzureWebJobsStorage": connection, "TEST_HUB_NAME": self.hub}
            self.args = []

    def host(self) -> HostProcess:
        return start_host(self.app, env=self.env, args=self.args, port=self.port)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("run", range(RUNS))
def test_kill_9_at_a_random_point_loses_nothing(azurite: StorageEndpoints, tmp_path: Path,
                                                mode: str, run: int) -> None:
    target = Target(mode, azurite, tmp_path, run)
    chance = random.Random(f"{mode}{run}")
    host = target.host()
    workload = Workload(prefix=f"k{run}-")
    delay = chance.uniform(0.3, 2.5)
    if run % 2:
        # Odd runs: kill while the instances run (all started).
        workload.start_all(host)
        time.sleep(delay)
        host.process.kill()
    else:
        # Even runs: kill while starts are still arriving, after a random number of them
        # were answered (counted, not timed: a busy machine answers the first start late).
        kill_at = chance.randint(1, workload.count // 2)

        def kill_at_count(acknowledged: int) -> None:
            if acknowledged == kill_at:
                host.process.kill()
        workload.start_all(host, on_acknowledged=kill_at_count)
        assert kill_at <= len(workload.acknowledged) < workload.count, \
            "the kill did not come while starts were arriving"
    host.process.wait()
    host.stop(keep_azurite=True)
    restarted_at = time.monotonic()
    restarted = target.host()  # at once, as a user does after a crash
    try:
        restarted.wait_for_log("Owns partitions")
        owned = time.monotonic() - restarted_at
        if mode == "managed":
            assert "Using the Azurite funclocal started for this app" in restarted.log_text()
        workload.raise_events(restarted)
        found = workload.wait_all_done(restarted)
        finished = time.monotonic() - restarted_at
        workload.check_outputs(found)
        assert duplicated_history_events(target.storage, target.hub, workload.prefix) == 0
    finally:
        restarted.stop()
    FIGURES.runs[f"kill -9, {mode} Azurite"] += 1
    FIGURES.kills += 1
    FIGURES.instances += len(found)
    FIGURES.re_executed += re_executions([host.log_text(), restarted.log_text()])
    FIGURES.takeover_s.append(owned)
    FIGURES.finish_s.append(finished)
