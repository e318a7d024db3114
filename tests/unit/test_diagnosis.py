"""`diagnosis.explain`: the reasons for each state an instance can wait in, from facts
built by hand (the integration tests read the same facts from Azurite)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from runtime.durable import history
from runtime.durable.diagnosis import Facts, HostInfo, QueuedMessage, explain, summary

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
APP = "/apps/shop"
HOST = HostInfo(f"vm:7071:{APP}", (0, 1), frozenset({"approval"}), frozenset({"greet"}))
OTHER = HostInfo("vm:7072:/apps/other", (0, 1), frozenset({"report"}), frozenset())


def started(*more: dict[str, Any]) -> list[dict[str, Any]]:
    return [history.orchestrator_started(NOW),
            history.execution_started("i1", "e1", "approval", "null", NOW), *more]


def facts(events: list[dict[str, Any]], status: str = "Running", *,
          holder: HostInfo | None = HOST, **changes: Any) -> Facts:
    values: dict[str, Any] = dict(
        instance_id="i1", row={"RuntimeStatus": status, "Name": "approval"}, events=events,
        partition=1, control_queue="hub-control-01", workitems_queue="hub-workitems",
        hub_name="Hub", now=NOW, holder=holder, hosts=[holder] if holder else [],
        this_app=APP, this_orchestrators=frozenset({"approval"}), waiting_events=())
    values.update(changes)
    return Facts(**values)


def kinds(found: Facts) -> list[str]:
    return [r.kind for r in explain(found)]


def test_finished_instances_have_nothing_to_explain() -> None:
    assert explain(facts(started(), "Completed")) == []


def test_events_waited_for_and_a_near_miss() -> None:
    reasons = explain(facts(started(), waiting_events=("Approval",),
                            unclaimed_events=("approval",)))
    assert [r.kind for r in reasons] == ["event"]
    assert reasons[0].text.endswith("An event 'approval' was raised, but event names are "
                                    "case-sensitive.")
    assert summary(facts(started()), reasons).startswith(
        "Instance 'i1' (approval) is Running: It waits for the external event 'Approval'")


def test_timers_due_and_overdue() -> None:
    due = history.timer_created(0, NOW + timedelta(hours=2), NOW)
    [reason] = explain(facts(started(due)))
    assert reason.text == "It waits for a durable timer due at 2026-05-01 14:00:00Z (in 2.0 h)."
    late = history.timer_created(0, NOW - timedelta(minutes=5), NOW)
    reasons = explain(facts(started(late), holder=None))
    assert [r.kind for r in reasons] == ["timer", "no-host"]
    assert reasons[0].text.endswith("; it fires once a host runs.")


def test_activities_by_where_their_work_item_is() -> None:
    scheduled = history.task_scheduled(0, "greet", None, NOW)
    item = QueuedMessage(scheduled, NOW, 2, "hub-workitems")
    [reason] = explain(facts(started(scheduled), work_items=[item]))
    assert reason.text.endswith("its work item waits in hub-workitems (delivered 2 times).")
    reasons = explain(facts(started(scheduled), holder=None))
    assert reasons[0].text.endswith("it is locked by a host that stopped (it becomes visible "
                                    "when the lock ends, within 30 seconds), and no host is "
                                    "running to take it.")
    [running] = explain(facts(started(scheduled)))
    assert "a host is running it now" in running.text
    result = QueuedMessage(history.task_completed(0, '"x"', NOW), NOW, 0, "hub-control-01")
    reasons = explain(facts(started(scheduled), queued=[result]))
    assert [r.kind for r in reasons] == ["activity", "messages"]
    assert reasons[0].text.endswith("its result waits in hub-control-01 for a host to "
                                    "record it.")
    assert reasons[1].text.startswith("1 message for it wait in hub-control-01 "
                                      "(TaskCompleted; the oldest since")


def test_sub_orchestrations_and_suspension() -> None:
    child = history.sub_orchestration_created(0, "child", "c1", None, NOW)
    suspended = history.execution_suspended("lunch", NOW)
    reasons = explain(facts(started(child, suspended), "Suspended",
                            children={"c1": "Running"}))
    assert [r.kind for r in reasons] == ["suspended", "sub-orchestration"]
    assert reasons[0].fix == "funclocal instances resume i1"
    assert reasons[1].text == ("It waits for the sub-orchestration 'child' (instance 'c1', "
                               "Running).")


def test_pending_instances_and_no_host() -> None:
    start = history.execution_started("i1", "e1", "approval", "null", NOW)
    queued = QueuedMessage(start, NOW, 0, "hub-control-01")
    reasons = explain(facts([], "Pending", holder=None, queued=[queued]))
    assert [r.kind for r in reasons] == ["pending", "no-host"]
    assert reasons[0].text == ("It has not started: its start message waits in "
                               "hub-control-01 since 2026-05-01 12:00:00Z (delivered 0 "
                               "times).")
    assert reasons[1].fix == "Start the app: funclocal start"


def test_unknown_functions_and_shared_hubs() -> None:
    from_other_app = facts(started(), holder=OTHER)
    assert kinds(from_other_app)[0] == "shared-hub"
    lacking = facts(started(), holder=HostInfo(f"vm:7071:{APP}", (1,), frozenset({"x"})))
    [reason, *_] = explain(lacking)
    assert reason.kind == "unknown-function"
    assert reason.text.endswith("has only: x.")
    nobody = facts(started(), holder=None, this_orchestrators=frozenset({"report"}))
    assert kinds(nobody) == ["unknown-function", "no-host"]
    assert explain(nobody)[0].text.startswith(
        "The app in /apps/shop has no orchestrator 'approval' (it has: report)")


def test_entities_wait_only_for_operations() -> None:
    entity = facts([], "Running", instance_id="@counter@k")
    assert kinds(entity) == ["entity"]


def test_code_that_no_longer_replays_comes_first() -> None:
    reasons = explain(facts(started(), waiting_events=None,
                            code_breaks="Non-Deterministic workflow detected: ..."))
    assert [r.kind for r in reasons] == ["code-changed"]
    assert reasons[0].text == (
        "The code of the app in /apps/shop no longer replays its history, so the instance "
        "fails when it next runs: Non-Deterministic workflow detected: ...")
    assert reasons[0].fix is not None and reasons[0].fix.startswith(
        "funclocal replay --instance i1 shows where")
