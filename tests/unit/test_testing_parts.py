"""runtime.testing's pure parts: typed history and its text, hub names, where Azurite
is found, and what an activity stub accepts."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from runtime.durable import history
from runtime.errors import AzuriteError, HarnessError
from runtime.storage import azurite_install
from runtime.testing import EventType, HistoryEvent, format_history
from runtime.testing.environment import _status_names
from runtime.testing.history import pending_timers, typed
from runtime.testing.hosting import unique_hub_name
from runtime.testing.shared import locate_azurite
from runtime.testing.stubs import ActivityStub

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)


def test_stored_events_become_typed_events() -> None:
    events = typed([
        history.orchestrator_started(T0),
        history.execution_started("i", "x", "approve", '"{\\"amount\\": 5}"', T0),
        history.timer_created(0, T0 + timedelta(days=3), T0),
        history.task_scheduled(1, "escalate", None, T0),
        history.task_failed(1, "Activity function 'escalate' failed: KeyError: 'a'",
                            '{"ClassName": "KeyError"}', T0),
        history.event_raised("Approval", '"Ann"', T0),
        history.timer_fired(0, T0 + timedelta(days=3), T0),
        history.sub_orchestration_created(2, "child", "i:2", "[1, 2]", T0),
        history.execution_terminated('"enough"', T0),
        history.execution_completed(history.OrchestrationStatus.Completed, '"done"', T0),
    ])
    started, timer, scheduled, failed, raised, fired, child, terminated, completed = events[1:]
    assert (started.type, started.name, started.input) == (
        EventType.ExecutionStarted, "approve", '{"amount": 5}')
    assert (timer.event_id, timer.fire_at) == (0, T0 + timedelta(days=3))
    assert (scheduled.name, scheduled.input) == ("escalate", None)
    assert (failed.task_id, failed.details) == (1, '{"ClassName": "KeyError"}')
    assert failed.reason == "Activity function 'escalate' failed: KeyError: 'a'"
    assert (raised.name, raised.input) == ("Approval", "Ann")
    assert (fired.task_id, fired.type) == (0, EventType.TimerFired)
    assert (child.instance_id, child.input) == ("i:2", [1, 2])
    assert (terminated.reason, terminated.input) == ("enough", None)
    assert (completed.status, completed.result) == ("Completed", "done")
    assert completed.raw["EventType"] == int(EventType.ExecutionCompleted)
    assert isinstance(completed, HistoryEvent) and completed.timestamp == T0


def test_pending_timers_are_the_ones_not_fired() -> None:
    events = typed([history.timer_created(0, T0 + timedelta(days=3), T0),
                    history.timer_created(1, T0 + timedelta(hours=1), T0),
                    history.timer_fired(1, T0 + timedelta(hours=1), T0)])
    assert pending_timers(events) == [T0 + timedelta(days=3)]


def test_history_as_text_numbers_each_event_with_its_time() -> None:
    text = format_history(typed([
        history.task_scheduled(0, "hello", '"Tokyo"', T0),
        history.task_completed(0, '"Hello Tokyo!"', T0 + timedelta(seconds=1)),
        history.task_failed(1, "x" * 300, None, T0)]))
    lines = text.splitlines()
    assert lines[0] == "    0  2026-01-01T09:00:00.000Z  TaskScheduled #0 'hello' input=\"Tokyo\""
    assert lines[1] == ("    1  2026-01-01T09:00:01.000Z  TaskCompleted (of #0) "
                        "result=\"Hello Tokyo!\"")
    assert lines[2].endswith("x" * 117 + "...")
    assert format_history([]) == "  (no history)"


def test_hub_names_are_fresh_and_follow_the_rules() -> None:
    first, second = unique_hub_name("the_approval[memory]"), unique_hub_name("x" * 80)
    assert first != unique_hub_name("the_approval[memory]")
    assert first[0] == "t" and first.endswith("theapprovalmemory")
    assert first.isalnum() and len(second) == 45


def _fake_azurite(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for service in ("blob", "queue", "table"):
        script = folder / f"azurite-{service}"
        script.write_text("#!/bin/sh\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def _fake_azurite(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for service in ("blob", "queue", "table"):
        script = folder / f"azurite-{service}"
        script.write_text("#!/bin/sh\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_azurite_is_found_as_the_host_finds_it_or_the_error_says_how_to_get_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if funclocal were installed, not run from its checkout.
    monkeypatch.setattr(azurite_install, "CHECKOUT", tmp_path / "site-packages")
    app = tmp_path / "app"
    app.mkdir()
    environ = {"PATH": str(tmp_path / "empty"), "FUNCLOCAL_CACHE_DIR": str(tmp_path / "c")}
    with pytest.raises(AzuriteError, match="funclocal azurite install.*"
                                           "--funclocal-azurite-connection.*in-memory"):
        locate_azurite(app, environ)
    on_path = _fake_azurite(tmp_path / "global" / "bin")
    assert locate_azurite(app, {**environ, "PATH": str(on_path)}) == on_path
    beside = _fake_azurite(app / "node_modules" / ".bin")
    assert locate_azurite(app, environ) == beside


def test_a_stub_takes_one_answer_at_most() -> None:
    with pytest.raises(ValueError, match="one of result=, raises= or call=, not 2"):
        ActivityStub("a", "a", result=1, raises=KeyError("k"))
    assert ActivityStub("a", "a").inputs == []


def test_wait_for_status_takes_status_names_and_refuses_a_typo() -> None:
    import azure.durable_functions as df

    assert _status_names("Running") == {"Running"}
    assert _status_names(df.OrchestrationRuntimeStatus.Completed) == {"Completed"}
    assert _status_names(["Failed", "Terminated"]) == {"Failed", "Terminated"}
    with pytest.raises(HarnessError, match="Not a runtime status: Runing; one of Canceled"):
        _status_names("Runing")
