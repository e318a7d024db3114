"""Stopping the host with durable work in flight: Ctrl-C while an episode replays (the
stop is bounded and releases the partitions), a second Ctrl-C (the process ends at
once and nothing is lost), and Ctrl-C during a reload that replaces the durable runtime
(the replaced one still stops cleanly)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest
from support.azurite import azurite_bin, free_ports, lease_holders
from support.durable import start, wait_done
from support.host import APPS, HostProcess, start_host

from runtime.storage.azurite import ManagedAzurite
from runtime.storage.connection import SERVICES, StorageEndpoints

WAITING = "Waiting for work in flight to finish (at most 5 s): 1 episode(s), 0 activity(ies)..."


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(APPS / "reload_durable", root)
    return root


def durable_host(app: Path, azurite: StorageEndpoints, hub: str, *, replay_seconds: int,
                 reload: bool = False) -> HostProcess:
    return start_host(app, reload=reload, args=["--no-azurite"], env={
        "AzureWebJobsStorage": azurite.connection_string, "TEST_HUB_NAME": hub,
        "SLOW_REPLAY_SECONDS": str(replay_seconds)})


def assert_clean(log: str) -> None:
    assert "Host stopped." in log, log
    for noise in ("Traceback", "Unclosed", "exception was never retrieved"):
        assert noise not in log, log


def test_ctrl_c_during_a_long_replay_stops_within_bounds_and_frees_the_partitions(
        app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = durable_host(app, azurite, task_hub_name, replay_seconds=60)
    try:
        start(host, "slow_replay")
        host.wait_for_log("Executing 'Functions.slow_replay'")
        # interrupt() kills the host if it has not exited after 20 s (then: -9).
        assert host.interrupt(timeout=20) == 0, host.log_text()
        log = host.log_text()
        assert WAITING in log
        assert_clean(log)
        assert set(lease_holders(azurite, task_hub_name).values()) == {None}
    finally:
        host.stop()


def test_ctrl_c_with_storage_not_answering_still_stops_within_bounds(
        app: Path, task_hub_name: str, tmp_path: Path) -> None:
    # An Azurite of its own, frozen (SIGSTOP) while an episode is in flight: every
    # storage request of the stop hangs, and each step gives up after its bound.
    azurite = ManagedAzurite(azurite_bin(), data_dir=tmp_path / "azurite", in_memory=True,
                             ports=dict(zip(SERVICES, free_ports(3), strict=True)))
    asyncio.run(azurite.start())
    frozen: list[int] = []
    host = durable_host(app, azurite.endpoints, task_hub_name, replay_seconds=60)
    try:
        start(host, "slow_replay")
        host.wait_for_log("Executing 'Functions.slow_replay'")
        frozen = list(azurite.pids.values())
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        # interrupt() kills the host if it has not exited after 25 s (then: -9).
        assert host.interrupt(timeout=25) == 0, host.log_text()
        log = host.log_text()
        assert "Could not release partition leases (storage did not answer); they " \
               "expire within 15 s." in log
        assert_clean(log)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        host.stop()
        asyncio.run(azurite.stop())


def test_a_second_ctrl_c_stops_at_once_and_loses_nothing(
        app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = durable_host(app, azurite, task_hub_name, replay_seconds=60)
    try:
        instance_id = start(host, "slow_replay")
        host.wait_for_log("Executing 'Functions.slow_replay'")
        os.killpg(host.process.pid, signal.SIGINT)
        host.wait_for_log(WAITING)
        os.killpg(host.process.pid, signal.SIGINT)
        assert host.process.wait(10) == 128 + signal.SIGINT
        host.stop()
        assert "Stopping at once (SIGINT again): work in flight is picked up when its " \
               "locks run out (within 30 s)." in host.log_text()
    finally:
        host.stop()
    restarted = durable_host(app, azurite, task_hub_name, replay_seconds=0)
    try:
        status = wait_done(restarted, instance_id, timeout=90)
        assert (status["runtimeStatus"], status["output"]) == ("Completed", "Hello slowly!")
    finally:
        restarted.stop()


def test_ctrl_c_during_a_reload_that_replaces_the_task_hub_still_stops_the_old_one(
        app: Path, azurite: StorageEndpoints, task_hub_name: str) -> None:
    host = durable_host(app, azurite, task_hub_name, replay_seconds=60, reload=True)
    try:
        start(host, "slow_replay")
        host.wait_for_log("Executing 'Functions.slow_replay'")
        host_json = app / "host.json"
        host_json.write_text(host_json.read_text().replace(
            "%TEST_HUB_NAME%", f"{task_hub_name[:41]}next"))
        host.wait_for_log(WAITING)  # the reload stops the old task hub's dispatcher
        assert host.interrupt(timeout=30) == 0, host.log_text()
        assert_clean(host.log_text())
        # Its stop was not cut by the Ctrl-C: its partitions are free at once.
        assert set(lease_holders(azurite, task_hub_name).values()) == {None}
    finally:
        host.stop()
