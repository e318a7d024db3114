from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient
from support.azurite import REPO_ROOT, azurite_bin, emulator_at, free_ports, unique_hub_name
from support.host import APPS, run_cli, start_host

from runtime.errors import AzuriteError
from runtime.storage import azurite_install
from runtime.storage.azurite import (
    DEV_ACCOUNT_KEY,
    SERVICES,
    ManagedAzurite,
    StorageEndpoints,
    ensure_storage,
    port_answers,
)


def local_connection_string(ports: list[int]) -> str:
    blob, queue, table = (f"http://127.0.0.1:{port}/devstoreaccount1" for port in ports)
    return (f"AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={blob};QueueEndpoint={queue};TableEndpoint={table}")


def alive(pid: int) -> bool:
    """Running and not a zombie: a container's init may be slow to reap orphans."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_until_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return left


async def answering(endpoints: StorageEndpoints) -> list[bool]:
    return [await port_answers(*endpoints.address(service)) for service in SERVICES]


async def test_round_trips_an_entity_a_message_and_a_blob(
        azurite: StorageEndpoints, task_hub_name: str) -> None:
    conn = azurite.connection_string

    async with TableServiceClient.from_connection_string(conn) as tables:
        table = await tables.create_table(task_hub_name + "Instances")
        await table.create_entity({"PartitionKey": "p", "RowKey": "r", "Status": "Running"})
        entity = await table.get_entity("p", "r")
    async with QueueServiceClient.from_connection_string(conn) as queues:
        queue = await queues.create_queue(task_hub_name + "-workitems")
        await queue.send_message("hello")
        received = [message.content async for message in queue.receive_messages()]
    async with BlobServiceClient.from_connection_string(conn) as blobs:
        container = await blobs.create_container(task_hub_name + "-leases")
        await container.upload_blob("payload.json", b'{"x": 1}')
        content = await (await container.download_blob("payload.json")).readall()

    assert entity["Status"] == "Running"
    assert received == ["hello"]
    assert json.loads(content) == {"x": 1}


def test_task_hub_names_are_fresh_and_valid(task_hub_name: str) -> None:
    assert task_hub_name.isalnum() and task_hub_name[0].isalpha()
    assert len(task_hub_name) <= 45
    assert task_hub_name.startswith("t") and "taskhubnamesarefresh" in task_hub_name


async def test_managed_azurite_keeps_data_on_disk_and_leaves_no_process(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(3), strict=True))
    azurite = ManagedAzurite(azurite_bin(), data_dir=tmp_path, ports=ports)

    async with azurite:
        pids = list(azurite.pids.values())
        assert await answering(azurite.endpoints) == [True, True, True]
        async with TableServiceClient.from_connection_string(
                azurite.endpoints.connection_string) as tables:
            await tables.create_table("Kept")
    assert await wait_until_gone(pids) == []
    assert await answering(azurite.endpoints) == [False, False, False]
    assert (tmp_path / "azurite.log").exists()

    async with azurite, TableServiceClient.from_connection_string(
            azurite.endpoints.connection_string) as tables:
        names = [table.name async for table in tables.list_tables()]
    assert names == ["Kept"]


async def test_azurite_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    blob, queue, table = free_ports(3)
    script = f"""
import asyncio, json, os, signal, sys
from pathlib import Path
from runtime.storage.azurite import ManagedAzurite
azurite = ManagedAzurite(Path({str(azurite_bin())!r}), data_dir=Path({str(tmp_path)!r}),
                         in_memory=True, ports={{"blob": {blob}, "queue": {queue},
                                                 "table": {table}}})
asyncio.run(azurite.start())
print(json.dumps(list(azurite.pids.values())), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    pids = json.loads(parent.stdout)

    assert len(pids) == 3
    assert await wait_until_gone(pids) == []


async def test_ensure_storage_starts_azurite_when_nothing_answers(tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    conn = local_connection_string(free_ports(3))

    endpoints, azurite = await ensure_storage(conn, tmp_path, manage=True)
    try:
        assert azurite is not None
        assert await answering(endpoints) == [True, True, True]
        assert (tmp_path / ".azurite" / "azurite.log").exists()
        again, second = await ensure_storage(conn, tmp_path, manage=True)
        assert (again, second) == (endpoints, None)
    finally:
        if azurite is not None:
            await azurite.stop()


async def test_ensure_storage_uses_a_running_emulator_as_is(azurite: StorageEndpoints) -> None:
    endpoints, managed = await ensure_storage(azurite.connection_string, Path("/nonexistent"),
                                              manage=False)

    assert (endpoints, managed) == (azurite, None)


async def test_ensure_storage_uses_a_real_account_as_is(tmp_path: Path) -> None:
    conn = "AccountName=myacct;AccountKey=c2VjcmV0"

    endpoints, managed = await ensure_storage(conn, tmp_path, manage=True)

    assert endpoints.table_url == "https://myacct.table.core.windows.net"
    assert managed is None


async def test_ensure_storage_says_how_to_fix_a_missing_azurite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As for a funclocal installed with pip: no checkout, Azurite neither on PATH nor in
    # the user cache.
    monkeypatch.setattr(azurite_install, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FUNCLOCAL_CACHE_DIR", raising=False)
    blob, queue, table = free_ports(3)

    with pytest.raises(AzuriteError) as caught:
        await ensure_storage(local_connection_string([blob, queue, table]), tmp_path / "app",
                             manage=True)

    assert str(caught.value) == (
        f"Azure Storage emulator not reachable at 127.0.0.1:{blob}, 127.0.0.1:{queue}, "
        f"127.0.0.1:{table} and Azurite is not installed: run `funclocal azurite install` "
        f"(Azurite {azurite_install.AZURITE_VERSION} into "
        f"{tmp_path / 'cache' / 'funclocal' / ('azurite-' + azurite_install.AZURITE_VERSION)}"
        ", needs Node.js and npm), or `npm install -g azurite`, or start an emulator yourself "
        "(`docker run -p 10000-10002:10000-10002 mcr.microsoft.com/azure-storage/azurite`), "
        "or set AzureWebJobsStorage to a storage account.")
    assert "\n" not in str(caught.value)


async def test_ensure_storage_without_management_says_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    blob, queue, table = free_ports(3)

    with pytest.raises(AzuriteError, match=r"^Azure Storage emulator not reachable at "
                                           rf"127\.0\.0\.1:{blob}, .* managed Azurite is off"):
        await ensure_storage(local_connection_string([blob, queue, table]), tmp_path,
                             manage=False)


async def test_a_service_that_cannot_start_fails_fast_with_its_reason(tmp_path: Path) -> None:
    blob, queue = free_ports(2)
    # Bound but not listening: connecting is refused, yet Azurite cannot bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        table = taken.getsockname()[1]
        azurite = ManagedAzurite(azurite_bin(), data_dir=tmp_path, in_memory=True,
                                 ports={"blob": blob, "queue": queue, "table": table})
        started = time.monotonic()

        with pytest.raises(AzuriteError, match=r"^Azurite table service exited with code \d+ "
                                               rf"before answering on 127\.0\.0\.1:{table}: "
                                               r".*EADDRINUSE"):
            await azurite.start()

    assert time.monotonic() - started < 10
    assert azurite.pids == {}


async def test_each_service_leads_its_own_process_group(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(3), strict=True))
    async with ManagedAzurite(azurite_bin(), data_dir=tmp_path, in_memory=True,
                              ports=ports) as managed:
        pids = set(managed.pids.values())
        groups = {os.getpgid(pid) for pid in pids}

    assert groups == pids
    assert os.getpgrp() not in groups


# -- the app's detached Azurite ----------------------------------------------------------


def test_the_apps_azurite_outlives_a_killed_host_and_is_reused_then_stopped(
        tmp_path: Path) -> None:
    """The Azurite the host starts for an app keeps running when the host is killed, the
    next start reuses it (the data is there), and `funclocal azurite stop` stops it."""
    app = tmp_path / "app"
    shutil.copytree(APPS / "durable", app)
    env = {"AzureWebJobsStorage": emulator_at(free_ports(3)),
           "TEST_HUB_NAME": unique_hub_name("detached")}
    host = start_host(app, env=env)
    try:
        host.wait_for_log("It keeps running when funclocal exits, so a crash loses nothing")
        started = host.post("/api/start/chaining")
        assert started.status == 202
        instance_id = started.json()["id"]
        host.process.kill()  # kill -9: no clean-up
        host.process.wait()
    finally:
        host.stop(keep_azurite=True)
    status = run_cli("azurite", "status", "--script-root", str(app), "--json")
    assert status.returncode == 0
    running = json.loads(status.stdout)
    assert running["running"] is True and set(running["pids"]) == set(SERVICES)
    assert all(alive(pid) for pid in running["pids"].values())
    again = start_host(app, env=env)
    try:
        again.wait_for_log("Using the Azurite funclocal started for this app")
        assert "Started Azurite" not in again.log_text()
        deadline = time.monotonic() + 60
        while (answer := again.get(f"/api/status/{instance_id}")).json().get(
                "runtimeStatus") != "Completed":
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        # SIGHUP (a closed terminal) stops the host cleanly, Azurite goes on.
        again.process.send_signal(signal.SIGHUP)
        assert again.process.wait(30) == 0
        assert "Traceback" not in again.log_text()
    finally:
        again.stop(keep_azurite=True)
    assert all(alive(pid) for pid in running["pids"].values())
    stopped = run_cli("azurite", "stop", "--script-root", str(app))
    assert stopped.returncode == 0
    assert stopped.stdout.startswith("Stopped Azurite (pids ")
    assert not asyncio.run(wait_until_gone(list(running["pids"].values())))
    status = run_cli("azurite", "status", "--script-root", str(app), "--json")
    assert (status.returncode, json.loads(status.stdout)["running"]) == (3, False)
