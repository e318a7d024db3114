"""Several hosts on one task hub (a fair split, a killed host's partitions taken over),
a function that kills its worker process beside normal work, and a storage outage."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from support.azurite import azurite_bin, free_ports, lease_holders, unique_hub_name
from support.durable import WEBHOOK
from support.host import HostProcess, request, start_host
from workload import APP, FIGURES, JSON, Workload, duplicated_history_events, re_executions

from runtime.storage.azurite import ManagedAzurite
from runtime.storage.connection import SERVICES, StorageEndpoints


def host_on(azurite: StorageEndpoints, hub: str, port: int | None = None) -> HostProcess:
    return start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                "TEST_HUB_NAME": hub}, args=["--no-azurite"], port=port)


def wait_for(predicate: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def test_three_hosts_share_the_partitions_and_survive_a_kill(
        azurite: StorageEndpoints) -> None:
    hub = unique_hub_name("three")
    hosts = [host_on(azurite, hub) for _ in range(3)]
    try:
        # A fair split: every host owns at least one partition (shares 2, 1, 1).
        wait_for(lambda: len({h for h in lease_holders(azurite, hub).values() if h}) == 3
                 and None not in lease_holders(azurite, hub).values(), 60,
                 "a split between 3 hosts")
        shares = Counter(lease_holders(azurite, hub).values())
        assert sorted(shares.values()) == [1, 1, 2]
        FIGURES.partitions_per_host = sorted(shares.values(), reverse=True)
        workload = Workload(prefix="three-")
        workload.start_all(hosts[0])
        # Kill the host with two partitions, mid-run: the others take them over.
        victim = max(hosts, key=lambda h: len(owned_partitions(h)))
        assert len(owned_partitions(victim)) == 2
        busiest = lease_holders(azurite, hub)[owned_partitions(victim)[0]]
        victim.process.kill()
        victim.process.wait()
        killed_at = time.monotonic()
        survivors = [h for h in hosts if h is not victim]
        wait_for(lambda: None not in lease_holders(azurite, hub).values()
                 and busiest not in lease_holders(azurite, hub).values(), 60,
                 "the takeover of the killed host's partitions")
        takeover = time.monotonic() - killed_at
        assert takeover <= 25, takeover
        workload.raise_events(survivors[0])
        found = workload.wait_all_done(survivors[0])
        workload.check_outputs(found)
        assert duplicated_history_events(azurite, hub, workload.prefix) == 0
        FIGURES.runs["3 hosts, one killed"] += 1
        FIGURES.kills += 1
        FIGURES.instances += len(found)
        FIGURES.takeover_s.append(takeover)
        FIGURES.re_executed += re_executions(h.log_text() for h in hosts)
    finally:
        for host in hosts:
            host.stop()


def owned_partitions(host: HostProcess) -> list[int]:
    """The partitions a host last said it owns (`... (now 0, 3).`)."""
    owned: list[int] = []
    for line in host.log_text().splitlines():
        if "partition" in line and "(now " in line:
            listed = line.rsplit("(now ", 1)[1].split(")")[0]
            owned = [] if listed == "none" else [int(p) for p in listed.split(", ")]
    return owned


def test_an_activity_that_kills_its_worker_fails_alone(azurite: StorageEndpoints) -> None:
    hub = unique_hub_name("crasher")
    host = host_on(azurite, hub)
    try:
        workload = Workload(prefix="cw-", count=50)
        crashers = []
        for n in range(2):
            response = request("POST", host.url(f"{WEBHOOK}/orchestrators/crasher/cw-x{n}"),
                               "null", JSON)
            assert response.status == 202
            crashers.append(f"cw-x{n}")
        workload.start_all(host)
        workload.raise_events(host)
        found = workload.wait_all_done(host, timeout=180)
        for instance_id in crashers:
            status = found.pop(instance_id)
            assert status["runtimeStatus"] == "Failed", status
            assert "It made its worker process exit 3 times, each time running alone in " \
                   "it, so it is not run again." in status["output"], status["output"]
        workload.check_outputs(found)  # the 50 beside them all completed
        assert duplicated_history_events(azurite, hub, workload.prefix) == 0
        FIGURES.runs["worker killed by an activity"] += 1
        FIGURES.instances += len(found) + len(crashers)
        FIGURES.re_executed += re_executions([host.log_text()])
    finally:
        host.stop()


def test_a_storage_outage_fails_calls_fast_and_work_resumes_by_itself(
        task_hub_name: str) -> None:
    """Queue and table services stop for 30 s (their data kept) while instances run."""
    bin_dir = azurite_bin()
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    with tempfile.TemporaryDirectory(prefix="funclocal-outage-") as data:
        blob = ManagedAzurite(bin_dir, data_dir=Path(data) / "blob", in_memory=True,
                              ports={"blob": ports["blob"]})
        tables_and_queues = {s: ports[s] for s in ("queue", "table")}

        def queue_and_table() -> ManagedAzurite:
            return ManagedAzurite(bin_dir, data_dir=Path(data) / "qt", in_memory=False,
                                  ports=tables_and_queues)
        asyncio.run(blob.start())
        storage = queue_and_table()
        asyncio.run(storage.start())
        endpoints = ManagedAzurite(bin_dir, data_dir=Path(data), ports=ports).endpoints
        host = host_on(endpoints, task_hub_name)
        try:
            workload = Workload(prefix="out-", count=100)
            workload.start_all(host)
            asyncio.run(storage.stop())  # SIGINT: Azurite saves its data and exits
            outage_started = time.monotonic()
            started = time.monotonic()
            status = request("GET", host.url(f"{WEBHOOK}/instances/out-chain-0"))
            waited = time.monotonic() - started
            assert status.status == 503, (status.status, status.text)
            assert "did not answer within 10 seconds" in json.loads(status.body)["Message"]
            assert waited <= 12, waited
            assert host.get("/admin/host/status").json()["state"] == "Running"
            time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
            storage = queue_and_table()
            asyncio.run(storage.start())
            back = time.monotonic()
            workload.raise_events(host)
            found = workload.wait_all_done(host, timeout=180)
            recovery = time.monotonic() - back
            workload.check_outputs(found)
            assert duplicated_history_events(endpoints, task_hub_name, workload.prefix) == 0
            FIGURES.runs["30 s storage outage"] += 1
            FIGURES.instances += len(found)
            FIGURES.recovery_s.append(recovery)
            FIGURES.re_executed += re_executions([host.log_text()])
        finally:
            host.stop()
            asyncio.run(storage.stop())
            asyncio.run(blob.stop())
