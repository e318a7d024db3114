"""DurableClient's management operations over the in-memory task hub and a virtual clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from runtime.clock import VirtualClock
from runtime.config import DurableTaskConfig
from runtime.durable import history
from runtime.durable.app import AppFunctions
from runtime.durable.client import (
    DurableClient,
    InstanceQuery,
    format_api_time,
    new_instance_id,
    parse_json_text,
    validate_instance_id,
)
from runtime.durable.history import EventType, OrchestrationStatus
from runtime.durable.taskhub.memory import MemoryTaskHub
from runtime.errors import (
    InstanceExists,
    InstanceNotFound,
    InstanceNotRunning,
    InvalidArgument,
    InvalidInstanceId,
    UnknownFunction,
)
from runtime.functions import FunctionIndex

T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def orchestrator(name: str, **trigger: Any) -> dict[str, Any]:
    return {"name": name, "bindings": [
        {"type": "orchestrationTrigger", "name": "context", "direction": "in", **trigger}]}


def app_with(*descriptions: dict[str, Any]) -> AppFunctions:
    app = AppFunctions()
    app.index = FunctionIndex.build(descriptions)
    return app


class Rig:
    def __init__(self, *, app: AppFunctions | None = None,
                 config: DurableTaskConfig | None = None) -> None:
        self.clock = VirtualClock(T0)
        self.hub = MemoryTaskHub("t" + uuid.uuid4().hex[:12], 4, clock=self.clock)
        self.notified: list[str] = []
        self.client = DurableClient(self.hub, config or DurableTaskConfig(), app=app,
                                    notify=self.notified.append, clock=self.clock)

    def control_messages(self, instance_id: str) -> list[dict[str, Any]]:
        queue = self.hub.control_queue(self.hub.partition_of(instance_id))
        return [m.body for m in self.hub.queues[queue]]

    def all_control_messages(self) -> int:
        return sum(len(self.hub.queues[q]) for q in self.hub.names.control_queues)

    async def finish(self, instance_id: str, status: str = "Completed",
                     output: str = '"done"') -> None:
        await self.hub.merge_instance(instance_id, {"RuntimeStatus": status, "Output": output,
                                                    "LastUpdatedTime": at(30),
                                                    "CompletedTime": at(30)})


# --- instance ids ---------------------------------------------------------------------

# DurableClient.StartNewAsync's messages; its ArgumentException arguments are swapped in
# the source, hence "instanceId (Parameter '...')".
INVALID_CHARS = ("instanceId (Parameter 'Orchestration instance ids must not contain /, \\, "
                 "#, ?, or control characters.')")


@pytest.mark.parametrize(("instance_id", "message"), [
    ("x" * 257, "Instance ID lengths must not exceed 256 characters."),
    ("@entity", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
    ("a/b", INVALID_CHARS),
    ("a\\b", INVALID_CHARS),
    ("a?b", INVALID_CHARS),
    ("a#b", INVALID_CHARS),
    ("a\nb", INVALID_CHARS),
    ("a\x7fb", INVALID_CHARS),
    ("a\x9fb", INVALID_CHARS),
])
async def test_start_new_refuses_invalid_instance_ids(instance_id: str, message: str) -> None:
    rig = Rig()
    with pytest.raises(InvalidInstanceId) as caught:
        await rig.client.start_new("Orch", instance_id)
    assert str(caught.value) == message
    assert isinstance(caught.value, InvalidArgument)
    assert rig.all_control_messages() == 0
    assert rig.notified == []


@pytest.mark.parametrize("instance_id", ["x" * 256, "order-1", "é-ü", "a b", "a^b", "a:b",
                                         "   "])
def test_valid_instance_ids(instance_id: str) -> None:
    validate_instance_id(instance_id)


def test_new_instance_ids_are_unique_hex() -> None:
    first, second = new_instance_id(), new_instance_id()
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


# --- start ----------------------------------------------------------------------------


async def test_start_new_sends_execution_started_and_writes_a_pending_row() -> None:
    rig = Rig()
    instance_id = await rig.client.start_new("Orch", "order-1", '{"qty":2}')
    assert instance_id == "order-1"

    (body,) = rig.control_messages("order-1")
    event = body["TaskMessage"]["Event"]
    assert event["EventType"] == EventType.ExecutionStarted
    assert event["Name"] == "Orch"
    assert event["Input"] == '{"qty":2}'
    assert event["Timestamp"] == history.format_timestamp(T0)
    assert rig.all_control_messages() == 1

    row = await rig.hub.read_instance("order-1")
    assert row is not None
    assert row["RuntimeStatus"] == "Pending"
    assert row["Name"] == "Orch"
    assert row["Input"] == '{"qty":2}'
    assert row["CreatedTime"] == T0
    assert row["LastUpdatedTime"] == T0
    assert row["TaskHubName"] == rig.hub.hub_name
    assert row["Generation"] == 0
    assert row["ExecutionId"] == event["OrchestrationInstance"]["ExecutionId"]
    assert body["TaskMessage"]["OrchestrationInstance"] == {
        "InstanceId": "order-1", "ExecutionId": row["ExecutionId"]}
    assert rig.notified == ["order-1"]


async def test_start_new_without_an_id_or_input() -> None:
    rig = Rig()
    instance_id = await rig.client.start_new("Orch")
    assert len(instance_id) == 32
    row = await rig.hub.read_instance(instance_id)
    assert row is not None and row["Input"] == "null"
    (body,) = rig.control_messages(instance_id)
    assert body["TaskMessage"]["Event"]["Input"] == "null"


async def test_start_new_uses_the_clock_for_created_time() -> None:
    rig = Rig()
    await rig.clock.advance(timedelta(days=3))
    instance_id = await rig.client.start_new("Orch")
    row = await rig.hub.read_instance(instance_id)
    assert row is not None and row["CreatedTime"] == T0 + timedelta(days=3)


async def test_start_new_checks_the_name_against_the_app_case_insensitively() -> None:
    rig = Rig(app=app_with(orchestrator("HelloOrchestrator"), orchestrator("Other")))
    instance_id = await rig.client.start_new("helloORCHESTRATOR", "i1")
    row = await rig.hub.read_instance(instance_id)
    assert row is not None and row["Name"] == "HelloOrchestrator"
    (body,) = rig.control_messages("i1")
    assert body["TaskMessage"]["Event"]["Name"] == "HelloOrchestrator"


async def test_start_new_uses_the_durable_name_of_a_binding_override() -> None:
    rig = Rig(app=app_with(orchestrator("py_function", orchestration="Renamed")))
    await rig.client.start_new("renamed", "i1")
    row = await rig.hub.read_instance("i1")
    assert row is not None and row["Name"] == "Renamed"
    with pytest.raises(UnknownFunction):
        await rig.client.start_new("py_function")


async def test_an_unknown_orchestrator_is_refused_with_the_extensions_message() -> None:
    app = app_with(orchestrator("HelloOrchestrator"), orchestrator("Other"),
                   {"name": "act", "bindings": [{"type": "activityTrigger", "name": "x"}]})
    rig = Rig(app=app)
    with pytest.raises(UnknownFunction) as caught:
        await rig.client.start_new("act", "i1")
    assert str(caught.value) == (
        "The function 'act' doesn't exist, is disabled, or is not an orchestrator function. "
        "Additional info: The following are the known orchestrator functions: "
        "'HelloOrchestrator', 'Other'.")
    assert isinstance(caught.value, InvalidArgument)
    assert await rig.hub.read_instance("i1") is None
    assert rig.all_control_messages() == 0
    assert rig.notified == []


async def test_without_an_app_any_name_starts() -> None:
    rig = Rig()
    assert rig.client.resolve_orchestrator("AnyThing") == "AnyThing"
    await rig.client.start_new("AnyThing", "i1")
    row = await rig.hub.read_instance("i1")
    assert row is not None and row["Name"] == "AnyThing"


async def test_starting_a_running_instance_again_raises_instance_exists() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "dup")
    await rig.hub.merge_instance("dup", {"RuntimeStatus": "Running"})
    with pytest.raises(InstanceExists) as caught:
        await rig.client.start_new("Orch", "dup")
    assert str(caught.value) == \
        "An Orchestration instance with the status Running already exists."
    assert caught.value.status == "Running"
    assert len(rig.control_messages("dup")) == 1  # nothing sent for the refused start
    assert rig.notified == ["dup"]


async def test_a_pending_instance_also_counts_as_running() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "dup")
    with pytest.raises(InstanceExists, match="status Pending"):
        await rig.client.start_new("Orch", "dup")


async def test_a_finished_instance_id_can_be_reused() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "again", '"first"')
    first = await rig.hub.read_instance("again")
    assert first is not None
    await rig.finish("again")
    await rig.clock.advance(timedelta(minutes=5))

    await rig.client.start_new("Orch", "again", '"second"')
    row = await rig.hub.read_instance("again")
    assert row is not None
    assert row["RuntimeStatus"] == "Pending"
    assert row["ExecutionId"] != first["ExecutionId"]
    assert row["Input"] == '"second"'
    assert row["Output"] is None
    assert row["CreatedTime"] == at(300)
    assert row["Generation"] == 1
    assert len(rig.control_messages("again")) == 2


async def test_any_state_lets_a_running_instance_be_started_again() -> None:
    rig = Rig(config=DurableTaskConfig(overridable_existing_instance_states="AnyState"))
    await rig.client.start_new("Orch", "i1")
    await rig.hub.merge_instance("i1", {"RuntimeStatus": "Running"})
    await rig.client.start_new("Orch", "i1", '"again"')
    row = await rig.hub.read_instance("i1")
    assert row is not None
    assert (row["RuntimeStatus"], row["Input"]) == ("Pending", '"again"')


# --- status ---------------------------------------------------------------------------


async def test_get_status_of_an_unknown_instance_is_none() -> None:
    assert await Rig().client.get_status("nobody") is None


async def test_get_status_json_fields_and_time_format() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1", '{"a":[1,2]}')
    status = await rig.client.get_status("i1")
    assert status == {
        "name": "Orch", "instanceId": "i1", "runtimeStatus": "Pending",
        "input": {"a": [1, 2]}, "customStatus": None, "output": None,
        "createdTime": "2024-01-02T03:04:05Z", "lastUpdatedTime": "2024-01-02T03:04:05Z"}

    await rig.finish("i1", output='{"total":3}')
    await rig.hub.merge_instance("i1", {"CustomStatus": '"nearly"'})
    status = await rig.client.get_status("i1", show_input=False)
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"total": 3}
    assert status["customStatus"] == "nearly"
    assert status["input"] is None
    assert status["lastUpdatedTime"] == "2024-01-02T03:04:35Z"


async def test_get_status_with_history() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1")
    row = await rig.hub.read_instance("i1")
    assert row is not None
    events = [history.orchestrator_started(T0),
              history.execution_started("i1", row["ExecutionId"], "Orch", "null", T0),
              history.task_scheduled(0, "Act", '"in"', T0),
              history.orchestrator_completed(T0),
              history.orchestrator_started(at(1)),
              history.task_completed(0, '"out"', at(1)),
              history.execution_completed(OrchestrationStatus.Completed, '"out"', at(1)),
              history.orchestrator_completed(at(1))]
    await rig.hub.append_history("i1", row["ExecutionId"], 0, events, None)

    status = await rig.client.get_status("i1", show_history=True)
    assert status is not None
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
    assert status["historyEvents"][1]["FunctionName"] == "Act"
    assert "Result" not in status["historyEvents"][1]

    status = await rig.client.get_status("i1", show_history=True, show_history_output=True)
    assert status is not None
    assert status["historyEvents"][1]["Result"] == "out"
    assert status["historyEvents"][2]["Result"] == "out"
    assert "historyEvents" not in (await rig.client.get_status("i1") or {})


def test_format_api_time() -> None:
    assert format_api_time(None) is None
    assert format_api_time(T0) == "2024-01-02T03:04:05Z"
    assert format_api_time(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05Z"
    assert format_api_time("2024-01-02T05:04:05.1234567+02:00") == "2024-01-02T03:04:05Z"
    assert format_api_time(12) is None


def test_parse_json_text() -> None:
    assert parse_json_text(None) is None
    assert parse_json_text('{"a":1}') == {"a": 1}
    assert parse_json_text("not json") == "not json"
    assert parse_json_text(5) == 5


# --- events and control ---------------------------------------------------------------


async def test_raise_event_on_an_unknown_instance() -> None:
    rig = Rig()
    with pytest.raises(InstanceNotFound) as caught:
        await rig.client.raise_event("ghost", "go", '"x"')
    assert str(caught.value) == "No instance with ID 'ghost' was found."
    assert rig.all_control_messages() == 0


async def test_raise_event_on_a_finished_instance() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1")
    await rig.finish("i1", "Failed")
    rig.notified.clear()
    with pytest.raises(InstanceNotRunning) as caught:
        await rig.client.raise_event("i1", "go", '"x"')
    assert str(caught.value) == "The instance 'i1' is in the Failed state."
    assert len(rig.control_messages("i1")) == 1
    assert rig.notified == []


async def test_raise_event_sends_event_raised_to_the_instance() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1")
    row = await rig.hub.read_instance("i1")
    assert row is not None
    await rig.clock.advance(timedelta(seconds=7))
    await rig.client.raise_event("i1", "Approval", '{"ok":true}')
    _, body = rig.control_messages("i1")
    event = body["TaskMessage"]["Event"]
    assert event["EventType"] == EventType.EventRaised
    assert (event["Name"], event["Input"]) == ("Approval", '{"ok":true}')
    assert event["Timestamp"] == history.format_timestamp(at(7))
    # No execution id: it reaches whichever execution runs (after continue-as-new too).
    assert body["TaskMessage"]["OrchestrationInstance"]["ExecutionId"] is None
    assert rig.notified == ["i1", "i1"]


async def test_terminate_on_unknown_and_finished_instances() -> None:
    rig = Rig()
    with pytest.raises(InstanceNotFound):
        await rig.client.terminate("ghost", "why")
    await rig.client.start_new("Orch", "i1")
    await rig.finish("i1", "Terminated")
    with pytest.raises(InstanceNotRunning, match="in the Terminated state"):
        await rig.client.terminate("i1", "why")


async def test_terminate_sends_execution_terminated_with_the_reason() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1")
    await rig.client.terminate("i1", 'too "slow"')
    _, body = rig.control_messages("i1")
    event = body["TaskMessage"]["Event"]
    assert event["EventType"] == EventType.ExecutionTerminated
    assert event["Input"] == 'too "slow"'  # as given: TerminateInstanceAsync passes it raw
    assert rig.notified == ["i1", "i1"]


# --- list and purge -------------------------------------------------------------------


async def test_list_instances_gives_status_json_pages() -> None:
    rig = Rig()
    for n in range(5):
        await rig.client.start_new("Orch", f"i{n}", str(n))
        await rig.clock.advance(timedelta(minutes=1))
    await rig.finish("i1")
    await rig.finish("i3")

    items, token = await rig.client.list_instances(InstanceQuery(statuses=["Completed"]))
    assert [i["instanceId"] for i in items] == ["i1", "i3"]
    assert token is None
    assert items[0]["input"] == 1 and items[0]["output"] == "done"

    items, token = await rig.client.list_instances(InstanceQuery(top=2, show_input=False))
    assert [i["instanceId"] for i in items] == ["i0", "i1"]
    assert items[0]["input"] is None
    assert token is not None
    items, token = await rig.client.list_instances(InstanceQuery(top=2, continuation=token))
    assert [i["instanceId"] for i in items] == ["i2", "i3"]

    items, _ = await rig.client.list_instances(
        InstanceQuery(created_from=at(60), created_to=at(120)))
    assert [i["instanceId"] for i in items] == ["i1", "i2"]
    items, _ = await rig.client.list_instances(InstanceQuery(prefix="i4"))
    assert [i["createdTime"] for i in items] == ["2024-01-02T03:08:05Z"]


async def test_purge_one_instance() -> None:
    rig = Rig()
    await rig.client.start_new("Orch", "i1")
    assert await rig.client.purge("i1") == 1
    assert await rig.client.get_status("i1") is None
    assert await rig.client.purge("i1") == 0


async def test_purge_by_created_range_and_status_up_to_now() -> None:
    rig = Rig()
    for n in range(4):
        await rig.client.start_new("Orch", f"i{n}")
        await rig.clock.advance(timedelta(minutes=1))
    await rig.finish("i0")
    await rig.finish("i2")
    # a row created after durable "now" is left alone when no end is given
    await rig.hub.insert_instance("future", {"Name": "Orch", "RuntimeStatus": "Completed",
                                             "CreatedTime": at(3600), "ExecutionId": "f"})

    assert await rig.client.purge_by(T0, None, ["Completed"]) == 2
    remaining, _ = await rig.client.list_instances(InstanceQuery())
    assert [i["instanceId"] for i in remaining] == ["future", "i1", "i3"]
    assert await rig.client.purge_by(at(120), None, None) == 1  # i3
    assert await rig.client.purge_by(T0, at(3600), None) == 2  # i1 and future


async def test_purge_by_deletes_every_match_across_pages() -> None:
    rig = Rig()
    for n in range(150):
        await rig.hub.insert_instance(f"i{n:03d}", {"Name": "Orch", "RuntimeStatus": "Completed",
                                                    "CreatedTime": T0, "ExecutionId": "x"})
    assert await rig.client.purge_by(T0, None, ["Completed"]) == 150
    remaining, _ = await rig.client.list_instances(InstanceQuery())
    assert remaining == []
