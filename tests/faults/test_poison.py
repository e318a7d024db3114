"""Work that cannot be applied: retried with backoff and said once, then moved to the
task hub's poison queue, the instance marked Failed with the reason; the host goes on."""

from __future__ import annotations

import json
import time

from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient
from support.azurite import unique_hub_name
from support.durable import WEBHOOK
from support.host import HostProcess, request, start_host
from workload import APP, JSON

from runtime.durable.names import hub_names
from runtime.storage.connection import StorageEndpoints


def host_on(azurite: StorageEndpoints, hub: str) -> HostProcess:
    return start_host(APP, env={"AzureWebJobsStorage": azurite.connection_string,
                                "TEST_HUB_NAME": hub}, args=["--no-azurite"])


def poisoned(azurite: StorageEndpoints, hub: str, timeout: float = 90.0) -> list[dict]:
    queue = QueueClient.from_connection_string(azurite.connection_string,
                                               f"{hub.lower()}-poison")
    deadline = time.monotonic() + timeout
    with queue:
        while time.monotonic() < deadline:
            try:
                found = [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]
            except Exception:  # noqa: BLE001 - the queue is made on first use
                found = []
            if found:
                return found
            time.sleep(0.5)
    raise AssertionError(f"nothing reached {hub.lower()}-poison in {timeout:.0f} s")


def test_an_unreadable_message_is_moved_aside(azurite: StorageEndpoints) -> None:
    hub = unique_hub_name("poisonmsg")
    host = host_on(azurite, hub)
    try:
        queue = hub_names(hub, 4).control_queues[0]
        with QueueClient.from_connection_string(azurite.connection_string, queue) as client:
            client.send_message("{ this is not an envelope")
        [moved] = poisoned(azurite, hub)
        assert (moved["Queue"], moved["Message"]) == (queue, "{ this is not an envelope")
        assert moved["Reason"]
        warnings = [line for line in host.output if "cannot be read" in line]
        assert len(warnings) == 1, host.log_text()  # said once, not once per delivery
        assert host.get("/admin/host/status").json()["state"] == "Running"
    finally:
        host.stop()


def test_an_instance_whose_history_cannot_be_loaded_fails_with_the_reason(
        azurite: StorageEndpoints) -> None:
    hub = unique_hub_name("poisonhist")
    host = host_on(azurite, hub)
    try:
        started = request("POST", host.url(f"{WEBHOOK}/orchestrators/event/broken"), "null",
                          JSON)
        assert started.status == 202
        deadline = time.monotonic() + 30
        while request("GET", host.url(f"{WEBHOOK}/instances/broken")).json()[
                "runtimeStatus"] != "Running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # Break its history, then wake it up with the event it waits for.
        with TableClient.from_connection_string(azurite.connection_string,
                                                f"{hub}History") as table:
            row = next(r for r in table.query_entities("PartitionKey eq 'broken'")
                       if r.get("EventType") == "ExecutionStarted")
            row["EventType"] = "NoSuchEventType"
            table.update_entity(row, mode=UpdateMode.MERGE)
        host.stop(keep_azurite=True)  # a fresh host: no cached history
        host = host_on(azurite, hub)
        raised = request("POST", host.url(f"{WEBHOOK}/instances/broken/raiseEvent/go"),
                         '"go!"', JSON)
        assert raised.status == 202
        [moved] = poisoned(azurite, hub)
        assert moved["InstanceId"] == "broken"
        status = request("GET", host.url(f"{WEBHOOK}/instances/broken")).json()
        assert status["runtimeStatus"] == "Failed"
        assert "could not be applied after 5 attempts" in status["output"], status
        assert f"{hub.lower()}-poison" in status["output"]
        said = [line for line in host.output if "its work item cannot be applied" in line]
        assert len(said) == 1, host.log_text()
    finally:
        host.stop()
