"""`funclocal instances why`: one test per reason an instance can be waiting, each on
real hosts and Azurite, asked from the app's folder as a user asks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from support.azurite import unique_hub_name
from support.cli import ok
from support.durable import api, start, wait_status
from support.host import APPS, HostProcess, start_host

from runtime.storage.connection import StorageEndpoints

APP = APPS / "instances_cli"
OTHER = APPS / "instances_other"
WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z"


def why(env: dict[str, str], instance_id: str, cwd: Any = APP) -> dict[str, Any]:
    result: dict[str, Any] = ok("instances", "why", instance_id, "--json", cwd=cwd,
                                env=env).json()
    return result


def kinds(found: dict[str, Any]) -> list[str]:
    return [r["kind"] for r in found["reasons"]]


def hub_env(azurite: StorageEndpoints, name: str) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string,
            "TEST_HUB_NAME": unique_hub_name(name)}


@pytest.fixture(scope="module")
def env(azurite: StorageEndpoints) -> dict[str, str]:
    return hub_env(azurite, "why")


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[HostProcess]:
    process = start_host(APP, env=env, args=["--no-azurite"])
    yield process
    process.stop()


def test_an_instance_waiting_for_an_event_names_it(host: HostProcess,
                                                   env: dict[str, str]) -> None:
    instance_id = start(host, "approval")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    found = why(env, instance_id)
    assert found["runtimeStatus"] == "Running"
    assert found["reasons"] == [{
        "kind": "event",
        "text": "It waits for the external event 'Approval'; nothing has raised it yet.",
        "fix": f"funclocal instances raise {instance_id} Approval '<JSON data>'"}]
    text = ok("instances", "why", instance_id, cwd=APP, env=env).out
    assert text.splitlines() == [
        f"Instance '{instance_id}' (approval) is Running.",
        "It waits for the external event 'Approval'; nothing has raised it yet.",
        f"  fix: funclocal instances raise {instance_id} Approval '<JSON data>'"]

    # An event raised under another case is not the one it waits for: say so.
    ok("instances", "raise", instance_id, "approval", '"Ann"', cwd=APP, env=env)
    wait_status(host, instance_id, lambda s: True)
    _wait_for_event_in_history(host, instance_id, "approval")
    found = why(env, instance_id)
    assert found["reasons"][0]["text"] == (
        "It waits for the external event 'Approval'; nothing has raised it yet. An event "
        "'approval' was raised, but event names are case-sensitive.")


def _wait_for_event_in_history(host: HostProcess, instance_id: str, name: str) -> None:
    def recorded(_: Any) -> bool:
        response = api(host, "GET", f"/instances/{instance_id}?showHistory=true")
        return any(e.get("EventType") == "EventRaised" and e.get("Name") == name
                   for e in response.json().get("historyEvents", []))
    wait_status(host, instance_id, recorded)


def test_an_instance_waiting_for_a_timer_gives_its_due_time(host: HostProcess,
                                                            env: dict[str, str]) -> None:
    instance_id = start(host, "deadline")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    found = why(env, instance_id)
    assert kinds(found) == ["timer"]
    assert re.fullmatch(rf"It waits for a durable timer due at {WHEN} \(in (59|60) min\)\.",
                        found["reasons"][0]["text"]), found


def test_a_suspended_instance_says_so_and_how_to_resume(host: HostProcess,
                                                        env: dict[str, str]) -> None:
    instance_id = start(host, "deadline")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    ok("instances", "suspend", instance_id, "--reason", "lunch break", cwd=APP, env=env)
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    found = why(env, instance_id)
    assert kinds(found) == ["suspended", "timer"]
    suspended = found["reasons"][0]
    assert re.fullmatch(rf"It is suspended since {WHEN} \(reason: lunch break\): events and "
                        r"results that arrive wait in its history until it is resumed\.",
                        suspended["text"]), suspended
    assert suspended["fix"] == f"funclocal instances resume {instance_id}"


# -- with the host stopped ----------------------------------------------------------------

@pytest.fixture(scope="module")
def stopped(azurite: StorageEndpoints) -> tuple[dict[str, str], str]:
    """A hub whose host stopped while an activity ran; the instance id."""
    env = hub_env(azurite, "stopped")
    host = start_host(APP, env=env, args=["--no-azurite"])
    try:
        instance_id = start(host, "slow_chain")
        host.wait_for_log("Executing 'Functions.slow_step'")
    finally:
        host.stop()
    return env, instance_id


def test_an_activity_in_flight_with_the_host_stopped(stopped: tuple[dict[str, str], str]
                                                     ) -> None:
    env, instance_id = stopped
    found = why(env, instance_id)
    assert kinds(found) == ["activity", "no-host"], found
    activity = found["reasons"][0]
    hub = env["TEST_HUB_NAME"].lower()
    assert re.fullmatch(
        rf"It waits for the activity 'slow_step' \(scheduled {WHEN}\); its work item ("
        rf"waits in {hub}-workitems \(delivered \d+ times?\), and no host is running to take "
        rf"it\.|is not visible in {hub}-workitems: it is locked by a host that stopped .*)",
        activity["text"]), activity
    assert activity["fix"] == "Start the app: funclocal start"
    assert found["reasons"][1]["text"].startswith(
        f"No host is running task hub '{env['TEST_HUB_NAME']}': nobody holds partition ")


def test_a_pending_instance_with_no_host_waits_in_its_queue(
        stopped: tuple[dict[str, str], str]) -> None:
    env, instance_id = stopped
    new_id = ok("instances", "restart", instance_id, "--json", cwd=APP, env=env
                ).json()["instanceId"]
    found = why(env, new_id)
    assert found["runtimeStatus"] == "Pending"
    assert kinds(found) == ["pending", "no-host"]
    assert re.fullmatch(rf"It has not started: its start message waits in "
                        rf"{env['TEST_HUB_NAME'].lower()}-control-0\d since {WHEN} "
                        r"\(delivered 0 times\)\.", found["reasons"][0]["text"]), found


# -- a task hub two apps share ------------------------------------------------------------

@pytest.fixture(scope="module")
def shared(azurite: StorageEndpoints) -> Iterator[tuple[dict[str, str], str, HostProcess]]:
    """An 'approval' instance waiting for its event, while the host of another app (which
    has no 'approval') holds every partition of the hub."""
    env = hub_env(azurite, "shared")
    first = start_host(APP, env=env, args=["--no-azurite"])
    try:
        instance_id = start(first, "approval")
        wait_status(first, instance_id, lambda s: s["customStatus"] == "waiting")
    finally:
        first.stop()
    other = start_host(OTHER, env=env, args=["--no-azurite"])
    try:
        yield env, instance_id, other
    finally:
        other.stop()


def test_an_orchestrator_no_running_host_knows(
        shared: tuple[dict[str, str], str, HostProcess]) -> None:
    env, instance_id, other = shared
    found = why(env, instance_id, cwd=OTHER)  # asked from the other app's folder
    assert kinds(found)[0] == "unknown-function", found
    reason = found["reasons"][0]
    assert re.fullmatch(
        rf"No running host knows the orchestrator 'approval': the host holding partition "
        rf"\d \(\S+-control-0\d\) \(\S+:{other.port}, app {re.escape(str(OTHER))}\) has "
        r"only: report\.", reason["text"]), reason
    assert reason["fix"] == ("Add the orchestrator 'approval' to the app (or terminate the "
                             f"instance: funclocal instances terminate {instance_id}).")


def test_a_task_hub_shared_with_another_app(
        shared: tuple[dict[str, str], str, HostProcess]) -> None:
    env, instance_id, other = shared
    found = why(env, instance_id)  # asked from the app that has 'approval'
    assert kinds(found) == ["shared-hub", "event"], found
    reason = found["reasons"][0]
    assert re.fullmatch(
        rf"Task hub '{env['TEST_HUB_NAME']}' is shared with another app: partition \d "
        rf"\(\S+-control-0\d\) is held by the host of {re.escape(str(OTHER))} "
        rf"\(\S+:{other.port}\), which does not have the orchestrator 'approval'\.",
        reason["text"]), reason
    assert reason["fix"].startswith("Give each app its own hubName in host.json")
    text = ok("instances", "show", instance_id, cwd=APP, env=env).out
    assert "Why:\n  Task hub '" in text
