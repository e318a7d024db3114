"""Keys scoped as on Azure, with `--enable-auth`: management URLs handed to clients carry
the Durable extension's system key, which opens the webhook routes and nothing else; the
host key opens functions, not the webhooks; the loopback RPC listener answers only under
the secret path its workers are given."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from support.azurite import unique_hub_name
from support.durable import WEBHOOK
from support.host import APPS, HostProcess, request, start_host

from runtime.storage.connection import StorageEndpoints

MASTER, HOST, DURABLE = "test-master-key", "test-host-key", "test-durable-system-key"


@pytest.fixture(scope="module")
def host(azurite: StorageEndpoints, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[HostProcess]:
    settings = tmp_path_factory.mktemp("keys") / "local.settings.json"
    settings.write_text(json.dumps({
        "IsEncrypted": False,
        "Values": {"FUNCTIONS_WORKER_RUNTIME": "python",
                   "AzureWebJobsStorage": azurite.connection_string,
                   "TEST_HUB_NAME": unique_hub_name("keys")},
        "Host": {"MasterKey": MASTER, "HostKey": HOST,
                 "SystemKeys": {"durabletask_extension": DURABLE}}}))
    process = start_host(APPS / "durable", args=["--no-azurite", "--enable-auth",
                                                 "--settings", str(settings)])
    yield process
    process.stop()


def test_management_urls_carry_the_system_key_not_the_host_key(host: HostProcess) -> None:
    started = host.post("/api/start/chaining")
    assert started.status == 202
    payload = started.json()
    for name, url in payload.items():
        if name == "id":
            continue
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert query["code"] == [DURABLE], name
        assert HOST not in url and MASTER not in url
    assert HOST not in started.text and MASTER not in started.text
    # The URL handed out works as is.
    deadline = time.monotonic() + 60
    while (status := request("GET", payload["statusQueryGetUri"])).status == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (status.status, status.json()["runtimeStatus"]) == (200, "Completed")


@pytest.mark.parametrize(("key", "status"), [
    (None, 401), ("wrong", 401), (HOST, 401), (DURABLE, 200), (MASTER, 200)])
def test_the_webhooks_take_the_system_key_or_the_master_key(host: HostProcess,
                                                             key: str | None,
                                                             status: int) -> None:
    query = f"?code={key}" if key else ""
    assert request("GET", host.url(f"{WEBHOOK}/instances/{query}")).status == status


def test_the_system_key_opens_no_function_or_admin_endpoint(host: HostProcess) -> None:
    assert host.get(f"/admin/host/status?code={DURABLE}").status == 401
    assert host.get(f"/admin/host/status?code={MASTER}").status == 200


def test_the_banner_shows_the_durable_system_key(host: HostProcess) -> None:
    host.wait_for_log(f"Durable Functions system key (durabletask_extension): {DURABLE}")


def test_the_rpc_listener_answers_only_under_its_secret_path(host: HostProcess) -> None:
    host.wait_for_log("Opened local http RPC endpoint: ")
    line = next(line for line in host.output if "Opened local http RPC endpoint: " in line)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match is not None, line
    port = match.group(1)
    for path in ("/durabletask/instances/", "/durabletask/orchestrators/chaining", "/"):
        assert request("GET", f"http://127.0.0.1:{port}{path}").status == 404
        assert request("POST", f"http://127.0.0.1:{port}{path}").status == 404
    assert "/durabletask/" in line and line.rstrip().endswith("…/durabletask/")
