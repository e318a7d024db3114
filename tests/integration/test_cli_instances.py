"""`funclocal instances` and `funclocal taskhub`, run as a user runs them: in the app's
folder, against its task hub on Azurite, with one host serving the app for the module."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.azurite import azurite_bin, free_ports, unique_hub_name
from support.cli import funclocal, ok
from support.durable import api, start, wait_done, wait_status
from support.host import APPS, REPO, HostProcess, start_host

from runtime.durable.taskhub.azure import AzureTaskHub
from runtime.storage.azurite import ManagedAzurite
from runtime.storage.clients import open_storage
from runtime.storage.connection import DEV_ACCOUNT_KEY, SERVICES, StorageEndpoints

APP = APPS / "instances_cli"
STATUS_KEYS = {"name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
               "createdTime", "lastUpdatedTime"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def env(azurite: StorageEndpoints) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string,
            "TEST_HUB_NAME": unique_hub_name("cliinstances")}


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[HostProcess]:
    process = start_host(APP, env=env, args=["--no-azurite"])
    yield process
    process.stop()


@pytest.fixture(scope="module")
def seeded(host: HostProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A completed, a failed, two waiting instances and an entity, made through the app."""
    missing = tmp_path_factory.mktemp("flaky") / "absent"
    ids = {"chain": start(host, "chain", instance_id="seed-chain"),
           "flaky": start(host, "flaky", str(missing), instance_id="seed-flaky"),
           "approval": start(host, "approval", instance_id="seed-approval"),
           "deadline": start(host, "deadline", instance_id="other-deadline")}
    assert host.post("/api/counter/c1/add", "5").status == 202
    wait_done(host, ids["chain"])
    wait_done(host, ids["flaky"])
    wait_status(host, ids["approval"], lambda s: s["customStatus"] == "waiting")
    wait_status(host, "@counter@c1", lambda s: s["runtimeStatus"] == "Running")
    return ids


def cli(env: dict[str, str], *args: str) -> Any:
    return ok(*args, cwd=APP, env=env)


# -- list ---------------------------------------------------------------------------------

def test_list_shows_every_instance_newest_first_entities_included(
        env: dict[str, str], seeded: dict[str, str]) -> None:
    text = cli(env, "instances", "list").out
    lines = text.splitlines()
    assert lines[0].split() == ["INSTANCE", "ID", "NAME", "STATUS", "CREATED", "LAST",
                                "UPDATED"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert rows["seed-chain"] == ["chain", "Completed"]
    assert rows["seed-flaky"] == ["flaky", "Failed"]
    assert rows["seed-approval"] == ["approval", "Running"]
    assert rows["@counter@c1"] == ["@counter@c1", "Running"]

    listed = cli(env, "instances", "list", "--json").json()
    assert isinstance(listed, list)
    for item in listed:
        assert STATUS_KEYS <= set(item), item
        assert TIME.match(item["createdTime"]) and TIME.match(item["lastUpdatedTime"])
    created = [item["createdTime"] for item in listed]
    assert created == sorted(created, reverse=True)
    chain = next(i for i in listed if i["instanceId"] == "seed-chain")
    assert chain["output"] == ["Hello one!", "Hello two!"]


def test_list_filters_by_status_name_prefix_time_and_count(
        env: dict[str, str], seeded: dict[str, str]) -> None:
    def ids(*args: str) -> set[str]:
        return {i["instanceId"] for i in cli(env, "instances", "list", "--json", *args).json()}

    assert ids("--status", "failed") == {"seed-flaky"}
    assert ids("--status", "Completed,Failed") == {"seed-chain", "seed-flaky"}
    assert ids("--status", "Running", "--status", "failed") == {
        "seed-flaky", "seed-approval", "other-deadline", "@counter@c1"}
    assert ids("--status", "running", "--no-entities") == {"seed-approval", "other-deadline"}
    assert ids("--name", "APPROVAL") == {"seed-approval"}
    assert ids("--prefix", "seed-") == {"seed-chain", "seed-flaky", "seed-approval"}
    assert ids("--prefix", "seed-", "--created-from", "1h") == \
        {"seed-chain", "seed-flaky", "seed-approval"}
    assert ids("--created-to", "2000-01-01") == set()
    assert ids("--created-from", "2000-01-01T00:00:00Z", "--prefix", "other") == \
        {"other-deadline"}
    assert len(ids("--top", "2")) == 2
    text = cli(env, "instances", "list", "--top", "1", "--prefix", "seed-").out
    assert "(1 of 3 matching instances shown; --top N shows more)" in text


def test_bad_filters_are_usage_errors(env: dict[str, str], seeded: dict[str, str]) -> None:
    run = funclocal("instances", "list", "--status", "Sleeping", cwd=APP, env=env)
    assert run.code == 2 and "unknown status 'Sleeping'" in run.err
    run = funclocal("instances", "list", "--created-from", "yesterday", cwd=APP, env=env)
    assert run.code == 2
    assert "'yesterday' is not a time: use ISO 8601" in run.err
    run = funclocal("instances", "list", "--top", "0", cwd=APP, env=env)
    assert run.code == 2 and "must be a whole number above 0" in run.err


# -- show and history ---------------------------------------------------------------------

def test_show_gives_the_status_and_why_it_waits(env: dict[str, str],
                                                seeded: dict[str, str]) -> None:
    text = cli(env, "instances", "show", "seed-approval").out
    assert "Instance:      seed-approval" in text
    assert "Status:        Running" in text
    assert "Custom status: waiting" in text
    assert "It waits for the external event 'Approval'; nothing has raised it yet." in text

    shown = cli(env, "instances", "show", "seed-chain", "--json").json()
    assert STATUS_KEYS | {"why"} == set(shown)
    assert shown["output"] == ["Hello one!", "Hello two!"] and shown["why"] is None

    waiting = cli(env, "instances", "show", "seed-approval", "--json").json()
    assert waiting["why"]["reasons"][0] == {
        "kind": "event",
        "text": "It waits for the external event 'Approval'; nothing has raised it yet.",
        "fix": "funclocal instances raise seed-approval Approval '<JSON data>'"}
    assert waiting["why"]["summary"].startswith(
        "Instance 'seed-approval' (approval) is Running: It waits for")

    missing = funclocal("instances", "show", "nobody", cwd=APP, env=env)
    assert missing.code == 1
    assert missing.err.strip() == "error: No instance with ID 'nobody' was found."


def test_history_is_a_timeline_and_exports_for_replay(
        env: dict[str, str], seeded: dict[str, str], tmp_path: Path) -> None:
    lines = cli(env, "instances", "history", "seed-chain").out.splitlines()
    assert lines[0].split() == ["#", "EVENT", "NAME", "TIME", "DURATION"]
    events = [line.split()[1:3] for line in lines[1:]]
    assert events == [["ExecutionStarted", "chain"], ["TaskCompleted", "greet"],
                      ["TaskCompleted", "greet"], ["ExecutionCompleted", "Completed"]]
    assert re.search(r"TaskCompleted\s+greet\s+\S+ \S+Z\s+\d+(\.\d)? m?s$", lines[2])

    with_output = cli(env, "instances", "history", "seed-chain", "--output").out
    assert with_output.splitlines()[0].split()[-1] == "RESULT"
    assert "Hello one!" in with_output and '["Hello one!", "Hello two!"]' in with_output
    failed = cli(env, "instances", "history", "seed-flaky", "--output").out
    assert "TaskFailed" in failed and "Activity function 'fail_unless' failed: ValueError" \
        in failed

    items = cli(env, "instances", "history", "seed-chain", "--json").json()
    assert [i["EventType"] for i in items] == [
        "ExecutionStarted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"]
    assert items[1]["FunctionName"] == "greet" and "ScheduledTime" in items[1]
    assert "Result" not in items[1]  # results only with --output, as showHistoryOutput

    target = tmp_path / "chain.json"
    run = cli(env, "instances", "history", "seed-chain", "--export", str(target))
    exported = json.loads(target.read_text())
    assert run.out.strip() == \
        f"Wrote {len(exported['events'])} events of 'seed-chain' to {target}."
    assert exported["funclocalHistory"] == 1 and exported["instanceId"] == "seed-chain"
    assert exported["name"] == "chain" and exported["runtimeStatus"] == "Completed"
    assert exported["taskHub"] == env["TEST_HUB_NAME"]
    assert [e["EventType"] for e in exported["events"]][:2] == [12, 0]


# -- operations ---------------------------------------------------------------------------

def test_raise_sends_the_event_the_instance_waits_for(host: HostProcess,
                                                      env: dict[str, str]) -> None:
    instance_id = start(host, "approval")
    wait_status(host, instance_id, lambda s: s["customStatus"] == "waiting")
    run = cli(env, "instances", "raise", instance_id, "Approval", "Ann")
    assert run.out.strip() == f"Raised event 'Approval' for '{instance_id}'."
    assert wait_done(host, instance_id)["output"] == ["Hello before!", "Hello Ann!"]

    other = start(host, "approval")
    wait_status(host, other, lambda s: s["customStatus"] == "waiting")
    raised = cli(env, "instances", "raise", other, "Approval", '{"who": "Bo"}', "--json")
    assert raised.json() == {"instanceId": other, "operation": "raise",
                             "eventName": "Approval"}
    assert wait_done(host, other)["output"] == ["Hello before!", "Hello {'who': 'Bo'}!"]

    finished = funclocal("instances", "raise", instance_id, "Approval", cwd=APP, env=env)
    assert finished.code == 1
    assert f"The instance '{instance_id}' is in the Completed state." in finished.err


def test_suspend_resume_and_terminate(host: HostProcess, env: dict[str, str]) -> None:
    instance_id = start(host, "deadline")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    cli(env, "instances", "suspend", instance_id, "--reason", "lunch")
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    again = funclocal("instances", "suspend", instance_id, cwd=APP, env=env)
    assert again.code == 1 and "because instance is in the Suspended state" in again.err
    cli(env, "instances", "resume", instance_id)
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Running")
    run = cli(env, "instances", "terminate", instance_id, "--reason", "no longer needed",
              "--json")
    assert run.json() == {"instanceId": instance_id, "operation": "terminate",
                          "reason": "no longer needed"}
    status = wait_done(host, instance_id)
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "no longer needed")


def test_rewind_reruns_the_failed_activity(host: HostProcess, env: dict[str, str],
                                           tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    instance_id = start(host, "flaky", str(marker))
    assert wait_done(host, instance_id)["runtimeStatus"] == "Failed"
    marker.write_text("here")
    cli(env, "instances", "rewind", instance_id, "--reason", "fixed")
    status = wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Completed")
    assert status["output"] == "found"
    not_failed = funclocal("instances", "rewind", instance_id, cwd=APP, env=env)
    assert not_failed.code == 1
    assert f"The instance '{instance_id}' is in the Completed state." in not_failed.err


def test_restart_under_a_new_id_or_the_same(host: HostProcess, env: dict[str, str]) -> None:
    instance_id = start(host, "chain")
    wait_done(host, instance_id)
    restarted = cli(env, "instances", "restart", instance_id, "--json").json()
    assert restarted["restartedFrom"] == instance_id and restarted["instanceId"] != instance_id
    assert wait_done(host, restarted["instanceId"])["runtimeStatus"] == "Completed"
    same = cli(env, "instances", "restart", instance_id, "--same-id").out
    assert same.strip() == f"Restarted '{instance_id}' as '{instance_id}'."
    wait_status(host, instance_id, lambda s: s["runtimeStatus"] == "Completed")
    unknown = funclocal("instances", "restart", "nobody", cwd=APP, env=env)
    assert unknown.code == 1
    assert "An orchestrastion with the instanceId nobody was not found." in unknown.err


def test_purge_by_id_and_by_filter(host: HostProcess, env: dict[str, str]) -> None:
    first = start(host, "chain", instance_id="purge-one")
    second = start(host, "chain", instance_id="purge-two")
    waiting = start(host, "approval", instance_id="purge-waiting")
    for instance_id in (first, second):
        wait_done(host, instance_id)
    run = funclocal("instances", "purge", first, "purge-nobody", "--json", cwd=APP, env=env)
    assert run.code == 1  # one of them was not there
    assert run.json() == {"purged": [first], "notFound": ["purge-nobody"]}
    gone = funclocal("instances", "purge", "purge-nobody", cwd=APP, env=env)
    assert gone.code == 1 and "No instance 'purge-nobody'." in gone.out
    assert api(host, "GET", f"/instances/{first}").status == 404

    refused = funclocal("instances", "purge", "--prefix", "purge-", "--status", "Running",
                        cwd=APP, env=env)
    assert refused.code == 2
    assert "purging by filter removes finished instances only" in refused.err
    text = cli(env, "instances", "purge", "--prefix", "purge-").out
    assert text.strip() == f"Purged 1 instance from task hub '{env['TEST_HUB_NAME']}'."
    assert api(host, "GET", f"/instances/{second}").status == 404
    assert api(host, "GET", f"/instances/{waiting}").status == 202  # running: kept

    neither = funclocal("instances", "purge", cwd=APP, env=env)
    assert neither.code == 2 and "give the instance ids to purge, or filters" in neither.err


# -- the task hub -------------------------------------------------------------------------

def test_taskhub_info_shows_counts_queues_and_partition_holders(
        env: dict[str, str], seeded: dict[str, str], host: HostProcess) -> None:
    info = cli(env, "taskhub", "info", "--json").json()
    assert set(info) == {"taskHub", "createdAt", "partitionCount", "storage", "instances",
                         "entities", "partitions", "workItems", "hosts"}
    assert info["taskHub"] == env["TEST_HUB_NAME"] and info["partitionCount"] == 4
    assert info["storage"]["thisMachine"] is True
    assert info["instances"]["Completed"] >= 1 and info["instances"]["Failed"] >= 1
    assert info["entities"] == 1
    hub = env["TEST_HUB_NAME"].lower()
    assert [p["queue"] for p in info["partitions"]] == [f"{hub}-control-0{i}" for i in range(4)]
    assert all(p["leased"] and p["owner"].endswith(str(APP)) for p in info["partitions"])
    assert info["hosts"] == [{"owner": info["partitions"][0]["owner"],
                              "partitions": [0, 1, 2, 3]}]
    assert info["workItems"]["queue"] == f"{hub}-workitems"

    text = cli(env, "taskhub", "info").out
    assert f"Task hub:    {env['TEST_HUB_NAME']} (created " in text
    assert "(this machine)" in text and "entities: 1" in text
    assert re.search(rf"^0\s+{hub}-control-00\s+\d+\s+\S+:{host.port}:", text, re.M)

    busy = funclocal("taskhub", "delete", cwd=APP, env=env)
    assert busy.code == 1 and "A host is running on task hub" in busy.err


def test_a_hub_that_does_not_exist_is_reported_and_not_created(
        azurite: StorageEndpoints) -> None:
    env = {"AzureWebJobsStorage": azurite.connection_string, "TEST_HUB_NAME": "nohubhere"}
    for _ in range(2):
        run = funclocal("instances", "list", cwd=APP, env=env)
        assert run.code == 1
        assert "error: Task hub 'nohubhere' does not exist in account devstoreaccount1" \
            in run.err


async def test_taskhub_delete_removes_every_artifact(azurite: StorageEndpoints) -> None:
    env = {"AzureWebJobsStorage": azurite.connection_string,
           "TEST_HUB_NAME": unique_hub_name("deleted")}
    storage = await open_storage(azurite.connection_string)
    try:
        await AzureTaskHub(storage, env["TEST_HUB_NAME"], 4).create_if_missing()
    finally:
        await storage.close()
    run = await asyncio.to_thread(ok, "taskhub", "delete", cwd=APP, env=env)
    assert run.out.strip() == (f"Deleted task hub '{env['TEST_HUB_NAME']}' (tables, queues, "
                               "leases and large messages).")
    after = await asyncio.to_thread(funclocal, "taskhub", "info", cwd=APP, env=env)
    assert after.code == 1 and "does not exist" in after.err


def test_with_no_host_and_no_azurite_running_the_command_starts_azurite(
        tmp_path: Path) -> None:
    """The app's emulator is down: the command starts Azurite on the app's data folder
    for its own length, sees what the host left there, and stops it again."""
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    (tmp_path / "node_modules").symlink_to(REPO / "node_modules")  # where Azurite is found
    ports = free_ports(3)
    local = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
             f"AccountKey={DEV_ACCOUNT_KEY};" + "".join(
                 f"{s.capitalize()}Endpoint=http://127.0.0.1:{p}/devstoreaccount1;"
                 for s, p in zip(SERVICES, ports, strict=True)))
    env = {"AzureWebJobsStorage": local, "TEST_HUB_NAME": unique_hub_name("ownazurite")}
    host = start_host(app, env=env)  # it starts Azurite itself, on the app's .azurite
    try:
        instance_id = start(host, "chain")
        wait_done(host, instance_id)
    finally:
        host.stop()
    run = ok("instances", "list", "--json", cwd=app, env=env)
    assert [i["instanceId"] for i in run.json()] == [instance_id]
    assert run.err.startswith(f"Started Azurite for this command (data in {app / '.azurite'})")
    for port in ports:  # stopped again
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_app_can_be_named_from_another_folder(env: dict[str, str],
                                                  seeded: dict[str, str],
                                                  tmp_path: Path) -> None:
    listed = ok("instances", "list", "--json", "--prefix", "seed-chain",
                "--script-root", str(APP), cwd=tmp_path, env=env).json()
    assert [i["instanceId"] for i in listed] == ["seed-chain"]


# -- storage that is not on this machine --------------------------------------------------

@pytest.fixture(scope="module")
async def elsewhere(tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[StorageEndpoints]:
    """An emulator that does not answer on the loopback names (127.0.0.2): to the guard,
    storage that is not on this machine, as a real account is."""
    azurite = ManagedAzurite(azurite_bin(), data_dir=tmp_path_factory.mktemp("elsewhere"),
                             host="127.0.0.2", in_memory=True,
                             ports=dict(zip(SERVICES, free_ports(3), strict=True)))
    async with azurite:
        yield azurite.endpoints


def test_changes_to_storage_elsewhere_need_yes(elsewhere: StorageEndpoints) -> None:
    env = {"AzureWebJobsStorage": elsewhere.connection_string,
           "TEST_HUB_NAME": unique_hub_name("elsewhere")}
    remote = start_host(APP, env=env, args=["--no-azurite"])
    try:
        instance_id = start(remote, "deadline")
        wait_status(remote, instance_id, lambda s: s["runtimeStatus"] == "Running")
        listed = cli(env, "instances", "list", "--json").json()  # looking is allowed
        assert [i["instanceId"] for i in listed] == [instance_id]
        info = cli(env, "taskhub", "info", "--json").json()
        assert info["storage"]["thisMachine"] is False
        for command in (["instances", "terminate", instance_id],
                        ["instances", "raise", instance_id, "Approval"],
                        ["instances", "suspend", instance_id],
                        ["instances", "purge", instance_id], ["taskhub", "delete"]):
            refused = funclocal(*command, cwd=APP, env=env)
            assert refused.code == 2, str(refused)
            assert refused.err.startswith("error: Refusing to ")
            assert "the storage is not on this machine (account devstoreaccount1 at " \
                   "http://127.0.0.2:" in refused.err
            assert "Add --yes to do it anyway." in refused.err
        assert api(remote, "GET", f"/instances/{instance_id}").json()["runtimeStatus"] == \
            "Running"
        cli(env, "instances", "terminate", instance_id, "--yes")
        assert wait_done(remote, instance_id)["runtimeStatus"] == "Terminated"
    finally:
        remote.stop()


# -- help and completion ------------------------------------------------------------------

def test_every_command_group_has_help() -> None:
    """Each group's --help from the shell (every subcommand's text is checked against the
    parser in tests/unit/test_cli_parsers.py)."""
    top = ok("--help", cwd=APP).out
    for group in ("instances", "taskhub", "replay", "completion"):
        assert group in top
    listing = ok("instances", "--help", cwd=APP).out
    for action in ("list", "show", "why", "history", "raise", "terminate", "suspend",
                   "resume", "rewind", "restart", "purge"):
        assert re.search(rf"^    {action}\b", listing, re.M), action
    assert ok("taskhub", "--help", cwd=APP).out.startswith("usage: funclocal taskhub")
    replay = ok("replay", "--help", cwd=APP).out
    assert "--instance ID" in replay and "--json" in replay


def test_completion_scripts_cover_the_commands() -> None:
    bash = ok("completion", "bash", cwd=APP).out
    assert "complete" in bash and "_shtab_funclocal" in bash
    for word in ("instances", "taskhub", "replay", "--created-from", "--no-entities"):
        assert word in bash
    zsh = ok("completion", "zsh", cwd=APP).out
    assert zsh.startswith("#compdef funclocal")
    assert funclocal("completion", "fish", cwd=APP).code == 2


@pytest.mark.parametrize("args", [("completion", "bash"), ("instances", "list")])
def test_a_reader_that_goes_away_ends_the_output_quietly(env: dict[str, str],
                                                         seeded: dict[str, str],
                                                         args: tuple[str, ...]) -> None:
    """`funclocal ... | head -0`: exit status 141 (SIGPIPE, as a shell reports it) and
    nothing on stderr, not a traceback or "error: [Errno 32] Broken pipe"."""
    process = subprocess.Popen([sys.executable, "-m", "runtime", *args], cwd=str(APP),
                               env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before it writes anything
    assert (process.wait(60), process.stderr.read().decode()) == (141, "")
