"""The replay check on the in-memory task hub: histories made by the real dispatcher and
SDK (support/rig.py), replayed by the worker's replay-check mode on the code as it was
and on edited copies of it."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from support.host import APPS
from support.rig import InProcessInvoker, durable_rig

from runtime.durable.app import AppFunctions
from runtime.durable.replaycheck import RecordedHistory, ReplayChecker, ReplayResult
from runtime.durable.taskhub.memory import MemoryTaskHub

APP = APPS / "instances_cli"


def copy_of_app(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    root = tmp_path / uuid.uuid4().hex[:8]
    shutil.copytree(APP, root)
    source = root / "function_app.py"
    text = source.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    source.write_text(text)
    return root


async def recorded(tmp_path: Path) -> tuple[RecordedHistory, RecordedHistory]:
    """An approval waiting for its event and a completed chain, made by the dispatcher."""
    hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 2)
    await hub.create_if_missing()
    async with durable_rig(hub, app=APP) as rig:
        waiting = await rig.start("approval", instance_id="waiting")
        for _ in range(2000):
            status = await rig.client.get_status(waiting)
            if status is not None and status["customStatus"] == "waiting":
                break
            await asyncio.sleep(0.005)
        done = await rig.start("chain", instance_id="done")
        await rig.wait(done)
    forget(APP)
    histories = []
    for instance_id in ("waiting", "done"):
        snapshot = await hub.load_history(instance_id)
        histories.append(RecordedHistory.from_events(instance_id, snapshot.events))
    return histories[0], histories[1]


async def check(root: Path, history: RecordedHistory) -> ReplayResult:
    invoker = InProcessInvoker(root)
    app = AppFunctions()
    app.set(invoker.index, invoker)
    try:
        return await ReplayChecker(app).check(history)
    finally:
        invoker.close()
        forget(root)


def forget(root: Path) -> None:
    """In one process, the next app's `function_app` must not resolve to this copy."""
    sys.path[:] = [p for p in sys.path if p not in (str(root), str(root.resolve()))]
    sys.modules.pop("function_app", None)


@pytest.fixture
async def histories(tmp_path: Path) -> tuple[RecordedHistory, RecordedHistory]:
    return await recorded(tmp_path)


async def test_the_code_that_made_a_history_replays_it(
        histories: tuple[RecordedHistory, RecordedHistory]) -> None:
    waiting, done = histories
    result = await check(APP, waiting)
    assert result.verdict == "ok", result
    assert result.waiting is not None and result.waiting.events == ("Approval",)
    assert (await check(APP, done)).verdict == "ok"


async def test_a_changed_activity_is_a_divergence_at_its_line(
        histories: tuple[RecordedHistory, RecordedHistory], tmp_path: Path) -> None:
    root = copy_of_app(tmp_path, ('call_activity("greet", "before")',
                                  'call_activity("chain_step", "before")'),
                       ('def greet(name: str) -> str:',
                        'def chain_step(name: str) -> str:\n    return name\n\n\n'
                        '@app.activity_trigger(input_name="name")\ndef greet(name: str) -> str:'))
    result = await check(root, histories[0])
    assert result.verdict == "diverged"
    assert (result.sequence_number, result.expected, result.actual) == (
        0, "call_activity('greet')", "call_activity('chain_step')")
    assert result.message is not None and result.message.startswith(
        "Non-Deterministic workflow detected: A previous execution of this orchestration "
        "scheduled an activity task with sequence number 0 named 'greet'")
    assert result.location is not None
    assert result.location.describe(root) == "function_app.py, line 37, in approval"


# The SDK warns when history completes a task the code never started, as here.
@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
async def test_work_the_code_no_longer_schedules(
        histories: tuple[RecordedHistory, RecordedHistory], tmp_path: Path) -> None:
    root = copy_of_app(tmp_path, ('    first = yield context.call_activity("greet", "before")\n',
                                  '    first = "skipped"\n'))
    result = await check(root, histories[0])
    assert result.verdict == "diverged"
    assert (result.sequence_number, result.expected) == (0, "call_activity('greet')")
    assert result.actual == "nothing"
    assert "hasn't (yet?) scheduled this task" in (result.message or "")


async def test_a_completed_history_must_still_complete_there(
        histories: tuple[RecordedHistory, RecordedHistory], tmp_path: Path) -> None:
    root = copy_of_app(tmp_path, ('    return [one, two]\n',
                                  '    three = yield context.create_timer('
                                  'context.current_utc_datetime)\n    return [one, two]\n'))
    result = await check(root, histories[1])
    assert result.verdict == "diverged"
    assert result.expected == "the orchestration completed"
    assert result.actual is not None and result.actual.startswith("create_timer(")


async def test_code_that_fails_on_replay_or_is_gone(
        histories: tuple[RecordedHistory, RecordedHistory], tmp_path: Path) -> None:
    raising = copy_of_app(tmp_path, ('    context.set_custom_status("waiting")\n',
                                     '    raise RuntimeError("broken")\n'))
    result = await check(raising, histories[0])
    assert result.verdict == "fails"
    assert "Orchestrator function 'approval' failed: broken" in (result.message or "")

    renamed = copy_of_app(tmp_path, ("def approval(", "def approval_v2("))
    result = await check(renamed, histories[0])
    assert result.verdict == "fails"
    assert (result.message or "").startswith(
        "The function 'approval' doesn't exist, is disabled, or is not an orchestrator "
        "function.")

    unknown = copy_of_app(tmp_path, ('call_activity("greet", "before")',
                                     'call_activity("nobody", "before")'))
    result = await check(unknown, histories[0])
    assert result.verdict == "fails"  # as the host fails it: the function is checked first
    assert (result.message or "").startswith(
        "The function 'nobody' doesn't exist, is disabled, or is not an activity function.")
    assert result.actual == "call_activity('nobody')"


def test_export_files_round_trip_and_are_checked() -> None:
    history = RecordedHistory.from_events("i1", [
        {"EventType": 12, "Timestamp": "2026-01-01T00:00:00.0000000Z"},
        {"EventType": 0, "Name": "approval", "Input": "null",
         "OrchestrationInstance": {"InstanceId": "i1", "ExecutionId": "e1"},
         "Timestamp": "2026-01-01T00:00:00.0000000Z"}], runtime_status="Running")
    document = history.to_json("Hub")
    assert document["executionId"] == "e1" and document["name"] == "approval"
    [back] = RecordedHistory.from_json(document, "f.json")
    assert (back.instance_id, back.name, back.events) == ("i1", "approval", history.events)
    assert len(RecordedHistory.from_json([document, document], "f.json")) == 2
    with pytest.raises(Exception, match=r"f.json: not a history exported by funclocal"):
        RecordedHistory.from_json({"history": []}, "f.json")
    with pytest.raises(Exception, match=r"f.json, item 2: every event needs an"):
        RecordedHistory.from_json([document, {"events": [{}]}], "f.json")
