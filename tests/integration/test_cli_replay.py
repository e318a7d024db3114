"""`funclocal replay` and the replay check of a hot reload: recorded histories replayed
against the current code, OK before a change and a divergence after it, from the task
hub and from exported files."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.azurite import unique_hub_name
from support.cli import funclocal, ok
from support.durable import start, wait_done, wait_status
from support.host import APPS, HostProcess, start_host

from runtime.storage.connection import StorageEndpoints

ORIGINAL = APPS / "instances_cli"
RESULT_KEYS = {"instanceId", "name", "verdict", "message", "sequenceNumber", "expected",
               "actual", "location", "source"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay") / "app"
    shutil.copytree(ORIGINAL, root)
    return root


@pytest.fixture(scope="module")
def env(azurite: StorageEndpoints) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string,
            "TEST_HUB_NAME": unique_hub_name("replay")}


@pytest.fixture(scope="module")
def host(app: Path, env: dict[str, str]) -> Iterator[HostProcess]:
    process = start_host(app, env=env, args=["--no-azurite"], reload=True)
    yield process
    process.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def line_of(path: Path, fragment: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1)
                if fragment in line)


def test_replay_before_and_after_a_code_change(app: Path, env: dict[str, str],
                                               host: HostProcess, tmp_path: Path) -> None:
    waiting = start(host, "approval", instance_id="replay-waiting")
    wait_status(host, waiting, lambda s: s["customStatus"] == "waiting")
    done = start(host, "chain", instance_id="replay-done")
    wait_done(host, done)

    # The code as it ran: every running instance replays.
    run = ok("replay", cwd=app, env=env)
    assert run.out.splitlines() == ["OK        replay-waiting (approval)", "",
                                    "1 replayed: 1 OK."]
    for instance_id in (waiting, done):
        ok("instances", "history", instance_id, "--export", str(tmp_path / f"{instance_id}.json"),
           cwd=app, env=env)
    files = [str(tmp_path / "replay-waiting.json"), str(tmp_path / "replay-done.json")]
    assert ok("replay", *files, "--json", cwd=app, env=env).json()["ok"] is True

    # Change both orchestrators under the recorded histories; the host reloads and
    # replays the running instance on the new code at once.
    source = app / "function_app.py"
    edit(source, 'first = yield context.call_activity("greet", "before")',
         'first = yield context.call_activity("shout", "before")')
    edit(source, 'two = yield context.call_activity("greet", "two")',
         'two = yield context.call_activity("greet", "two")\n'
         '    yield context.call_activity("greet", "three")')
    edit(source, '@app.activity_trigger(input_name="name")\ndef greet',
         '@app.activity_trigger(input_name="name")\ndef shout(name: str) -> str:\n'
         '    return name.upper()\n\n\n@app.activity_trigger(input_name="name")\ndef greet')
    changed_line = line_of(source, 'call_activity("shout", "before")')
    host.wait_for_log("Orchestrator 'approval' changed; the replay check of its 1 running "
                      "instance on the new code: 1 would fail when they next run: "
                      "replay-waiting", timeout=60)
    host.wait_for_log("  replay-waiting: Non-Deterministic workflow detected: A previous "
                      "execution of this orchestration scheduled an activity task with "
                      "sequence number 0 named 'greet', but the current orchestration replay "
                      "instead scheduled an activity task named 'shout' with this sequence "
                      f"number.  Was a change made to the orchestrator code after this "
                      f"instance had already started running? (function_app.py, line "
                      f"{changed_line}, in approval)")

    # From the hub: the divergence, where, and exit status 1.
    run = funclocal("replay", cwd=app, env=env)
    assert run.code == 1, str(run)
    lines = run.out.splitlines()
    assert lines[:3] == [
        "DIVERGED  replay-waiting (approval)",
        "  at sequence number 0, history records call_activity('greet'); the code "
        "schedules call_activity('shout')",
        f"  code: function_app.py, line {changed_line}, in approval"]
    assert lines[3].startswith("  Non-Deterministic workflow detected: A previous execution")
    assert lines[-1] == "1 replayed: 1 diverged."

    report = funclocal("replay", "--json", cwd=app, env=env)
    assert report.code == 1
    result = report.json()["results"][0]
    assert set(result) == RESULT_KEYS
    assert result["verdict"] == "diverged" and result["sequenceNumber"] == 0
    assert (result["expected"], result["actual"]) == ("call_activity('greet')",
                                                      "call_activity('shout')")
    assert result["location"] == {"file": "function_app.py", "line": changed_line,
                                  "function": "approval"}

    # `why` says the same of the waiting instance, first.
    reasons = ok("instances", "why", waiting, "--json", cwd=app, env=env).json()["reasons"]
    assert [r["kind"] for r in reasons] == ["code-changed"]
    assert reasons[0]["text"].endswith(
        f"(function_app.py, line {changed_line}, in approval)")

    # From the exported files: the finished chain now schedules more than it recorded.
    by_file = funclocal("replay", *files, "--json", cwd=app, env=env)
    assert by_file.code == 1
    verdicts = {r["instanceId"]: r for r in by_file.json()["results"]}
    assert verdicts["replay-waiting"]["verdict"] == "diverged"
    finished = verdicts["replay-done"]
    assert finished["verdict"] == "diverged"
    assert finished["expected"] == "the orchestration completed"
    assert finished["actual"] == "call_activity('greet')"
    assert finished["message"] == ("History recorded the end of the execution (the "
                                   "orchestration completed), but the current code schedules "
                                   "call_activity('greet') instead.")
    assert finished["source"] == files[1]

    # The same files still replay on the code they were recorded with (no storage needed).
    unchanged = ok("replay", *files, cwd=ORIGINAL,
                   env={"AzureWebJobsStorage": "", "TEST_HUB_NAME": "NotOpened"})
    assert re.findall(r"^OK +(\S+)", unchanged.out, re.M) == ["replay-waiting", "replay-done"]


def test_replay_rejects_what_is_not_a_history(app: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"events": [{"Name": "x"}]}))
    run = funclocal("replay", str(bad), cwd=app)
    assert run.code == 2
    assert run.err.strip() == f'error: {bad}: every event needs an "EventType"'
    bad.write_text("{")
    run = funclocal("replay", str(bad), cwd=app)
    assert run.code == 2 and run.err.startswith(f"error: {bad} is not JSON")
    missing = funclocal("replay", str(tmp_path / "nothing.json"), cwd=app)
    assert missing.code == 2 and "Cannot read" in missing.err
