"""The pure entity rules (runtime/durable/engine/entities.py): ids, message shapes, the
exactly-once selection of requests, the batch the SDK receives and what it returns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from runtime.durable import history
from runtime.durable.engine import entities as rules

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def op_event(operation: str | None, request_id: str, *, signal: bool = True,
             parent: str | None = None, execution: str | None = None,
             timestamp: datetime | None = None, name: str = "op") -> dict[str, object]:
    text = rules.request_json(operation, '"1"', request_id, signal=signal, parent=parent,
                              parent_execution=execution, timestamp=timestamp)
    return history.event_raised(name, text, NOW)


def test_ids_lower_case_the_name_and_keep_the_key() -> None:
    assert rules.scheduler_id("Counter", "Key@1") == "@counter@Key@1"
    assert rules.parse_scheduler_id("@counter@Key@1") == ("counter", "Key@1")
    assert rules.parse_scheduler_id("@counter@") == ("counter", "")
    assert rules.is_entity("@c@k") and not rules.is_entity("c@k")
    with pytest.raises(rules.InvalidEntityId, match="entity name must not be a null or empty"):
        rules.scheduler_id("", "k")
    with pytest.raises(rules.InvalidEntityId, match="is not an entity id"):
        rules.parse_scheduler_id("plain")


@pytest.mark.parametrize("key", ["a/b", "a\\b", "a#b", "a?b", "a\nb", "a\x85b"])
def test_keys_with_reserved_characters_are_refused(key: str) -> None:
    with pytest.raises(rules.InvalidEntityId, match="must not contain"):
        rules.check_key(key)


def test_a_request_message_has_the_extensions_field_names() -> None:
    signal = json.loads(rules.request_json("add", None, "id-1", signal=True))
    assert signal == {"op": "add", "signal": True, "id": "id-1",
                      "Timestamp": rules.NEVER, "Predecessor": rules.NEVER}
    call = json.loads(rules.request_json("get", '"null"', "id-2", signal=False,
                                         parent="orch", parent_execution="e1",
                                         timestamp=NOW))
    assert call == {"op": "get", "input": '"null"', "id": "id-2", "parent": "orch",
                    "parentExecution": "e1", "Timestamp": history.format_timestamp(NOW),
                    "Predecessor": rules.NEVER}


def test_inputs_are_encoded_once_more_as_the_extension_does() -> None:
    assert rules.operation_input(None) is None
    assert rules.operation_input("5") == '"5"'
    assert json.loads(json.loads(rules.operation_input('{"a":1}') or "")) == {"a": 1}


def test_request_ids_are_the_same_on_every_replay() -> None:
    first = rules.request_id_for("orch", "e1", 3)
    assert first == rules.request_id_for("orch", "e1", 3)
    assert first != rules.request_id_for("orch", "e1", 4)
    assert first != rules.request_id_for("orch", "e2", 3)


def test_only_op_events_with_an_id_are_requests() -> None:
    assert rules.parse_request(0, op_event("add", "r1")) is not None
    assert rules.parse_request(0, history.event_raised("Approval", '"x"', NOW)) is None
    assert rules.parse_request(0, history.event_raised("op", "not json", NOW)) is None
    assert rules.parse_request(0, history.event_raised("op", '{"op":"add"}', NOW)) is None
    lock = rules.parse_request(0, op_event(None, "r2"))
    assert lock is not None and lock.operation == ""  # refused by the worker, by name


def test_select_skips_ids_in_doubt_and_older_messages_per_sender() -> None:
    t1, t2 = NOW, NOW + timedelta(seconds=1)
    state = rules.SchedulerState(True, "1", {}, {"done": history.format_timestamp(NOW)})
    events = [op_event("add", "done"),  # committed already: redelivered after a crash
              op_event("add", "a", parent="o", execution="e1", timestamp=t2, signal=False),
              op_event("add", "b", parent="o", execution="e1", timestamp=t1, signal=False),
              history.event_raised("other", "{}", NOW),
              op_event("add", "c")]
    run, dropped = rules.select(state, events)
    assert [r.request_id for r in run] == ["a", "c"]
    assert dropped == [0, 2, 3]
    assert state.sorter["ReceivedFromInstance"]["o"] == {
        "Last": history.format_timestamp(t2), "ExecutionId": "e1"}
    # A new execution of the sender starts its own sequence.
    run, _ = rules.select(state, [op_event("add", "d", parent="o", execution="e2",
                                           timestamp=t1, signal=False)])
    assert [r.request_id for r in run] == ["d"]


def test_ids_stay_in_doubt_until_deleted_or_past_the_horizon() -> None:
    horizon = timedelta(seconds=63)
    old = history.format_timestamp(NOW - timedelta(seconds=100))
    recent = history.format_timestamp(NOW - timedelta(seconds=10))
    doubt = {"confirmed": recent, "recent": recent, "old": old}
    # Serving for long: the old id cannot come back any more; the deleted one is gone.
    assert rules.next_in_doubt(doubt, ["new"], NOW, confirmed={"confirmed"},
                               serving_since=NOW - timedelta(hours=1), horizon=horizon) == {
        "recent": recent, "new": history.format_timestamp(NOW)}
    # Just started serving (after a crash elsewhere): even the old id may still come back.
    assert set(rules.next_in_doubt(doubt, [], NOW, confirmed=set(),
                                   serving_since=NOW - timedelta(seconds=5),
                                   horizon=horizon)) == {"confirmed", "recent", "old"}


def test_a_sender_times_its_messages_strictly_increasing() -> None:
    assert rules.next_timestamp(NOW, None) == NOW
    assert rules.next_timestamp(NOW, NOW - timedelta(seconds=1)) == NOW
    assert rules.next_timestamp(NOW, NOW) == NOW + timedelta(microseconds=1)


def test_the_batch_context_is_what_the_sdk_reads() -> None:
    [request] = rules.select(rules.SchedulerState(), [op_event("add", "r")])[0]
    context = json.loads(rules.batch_context("counter", "k", rules.SchedulerState(True, "4"),
                                             [request]))
    assert context == {"self": {"name": "counter", "key": "k"}, "exists": True, "state": "4",
                       "batch": [{"name": "add", "input": '"1"', "isSignal": True}]}


def test_read_result_checks_the_shape() -> None:
    text = json.dumps({"entityExists": True, "entityState": "5", "signals": [],
                       "results": [{"isError": False, "result": "null"},
                                   {"isError": True, "result": '"boom"'}]})
    exists, state, results = rules.read_result(text, 2)
    assert (exists, state) == (True, "5")
    assert results == [rules.OperationResult("null", False), rules.OperationResult('"boom"', True)]
    # Destructed: no state whatever the SDK wrote ("null").
    assert rules.read_result(json.dumps({"entityExists": False, "entityState": "null",
                                         "results": []}), 0)[:2] == (False, None)
    with pytest.raises(ValueError, match="1 results for 2 operations"):
        rules.read_result(json.dumps({"results": [{}]}), 2)
    with pytest.raises(ValueError, match="no state object"):
        rules.read_result("[]", 0)


def test_calls_get_answers_and_signals_do_not() -> None:
    run, _ = rules.select(rules.SchedulerState(), [
        op_event("get", "call", parent="o", execution="e1", timestamp=NOW, signal=False),
        op_event("add", "sig")])
    answers = rules.responses(run, [rules.OperationResult('"bad"', True),
                                    rules.OperationResult("null", False)], NOW)
    assert [(m.target_instance_id, m.target_execution_id, m.event["Name"]) for m in answers] \
        == [("o", "e1", "call")]
    assert json.loads(answers[0].event["Input"]) == {"result": '"bad"', "exceptionType": "Error"}
    assert rules.is_response(history.event_raised(
        "0f8fad5b-d9cb-469f-a165-70867728950e", '{"result":"1"}', NOW))
    assert not rules.is_response(history.event_raised("call", '{"result":"1"}', NOW))


def test_the_scheduler_state_round_trips_and_feeds_the_row_and_listing() -> None:
    state = rules.SchedulerState(True, '{"n":1}', {"ReceivedFromInstance": {}},
                                 {"r": history.format_timestamp(NOW)})
    assert rules.SchedulerState.parse(state.to_json()) == state
    assert rules.SchedulerState.parse(json.dumps(state.to_json())) == state  # JSON of JSON
    assert rules.SchedulerState.parse(None) == rules.SchedulerState()
    assert state.custom_status == '{"entityExists":true}'
    assert rules.SchedulerState().custom_status == "{}"
    events = rules.commit_events("@c@k", "x1", state, NOW)
    assert [history.event_type(e).name for e in events] == [
        "OrchestratorStarted", "ExecutionStarted", "OrchestratorCompleted"]
    assert rules.state_of(events) == state
    row = rules.instance_fields("@c@k", "x1", state, NOW)
    assert (row["Name"], row["RuntimeStatus"], row["Input"]) == ("@c@k", "Running",
                                                                 state.to_json())
    listed = rules.entity_status("@c@k", row, fetch_state=True)
    assert listed == {"entityId": {"name": "c", "key": "k"},
                      "lastOperationTime": "2026-11-30T12:00:00.000Z", "state": {"n": 1}}
    assert rules.entity_status("@c@k", {"Input": "{}"}, fetch_state=True) is None
