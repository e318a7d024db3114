from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from runtime.durable import tablerows as tr

TS = "2024-03-01T12:34:56.7890120Z"
FIRE = "2024-03-01T12:40:00.0000000Z"
INSTANCE = {"InstanceId": "order-1", "ExecutionId": "e1"}
FAILURE = {"ErrorType": "ValueError", "ErrorMessage": "boom", "StackTrace": None}


def base(event_type: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": True,
            "Timestamp": TS, **fields}


# One event of every type, with every field DTFx serializes for it.
EVENTS: dict[int, dict[str, Any]] = {
    0: base(0, OrchestrationInstance=INSTANCE,
            ParentInstance={"Name": "Parent", "Version": "",
                            "OrchestrationInstance": {"InstanceId": "p", "ExecutionId": "pe"},
                            "TaskScheduleId": 3},
            Name="Chain", Version="", Input='{"a": 1}', Tags={"k": "v"}, Correlation=None,
            ScheduledStartTime=FIRE, Generation=2),
    1: base(1, OrchestrationStatus=3, Result="failed", FailureDetails=FAILURE),
    2: base(2, Reason="r", Details="d"),
    3: base(3, Input='"stop"'),
    4: base(4, 0, Name="Hello", Version="", Input=None),
    5: base(5, TaskScheduledId=0, Result='"Hello Tokyo!"'),
    6: base(6, TaskScheduledId=0, Reason="ValueError: x", Details="trace"),
    7: base(7, 1, Name="Child", Version="", InstanceId="child-1", Input="null"),
    8: base(8, TaskScheduledId=1, Result="42"),
    9: base(9, TaskScheduledId=1, Reason="failed", Details=None),
    10: base(10, 2, FireAt=FIRE),
    11: base(11, TimerId=2, FireAt=FIRE),
    12: base(12),
    13: base(13),
    14: base(14, 3, InstanceId="@counter@k", Name="add", Input='{"op": "add"}'),
    15: base(15, Name="Approval", Input="true"),
    16: base(16, OrchestrationStatus=2, Result='"next"', FailureDetails=None),
    17: base(17, Data="generic"),
    18: base(18),
    19: base(19, Reason="pause"),
    20: base(20, Reason="go on"),
    21: base(21, Reason="rewind"),
}


def to_row(event: dict[str, Any], index: int = 7) -> tuple[dict[str, Any], list[tr.Offload]]:
    return tr.event_to_row(event, partition_key="order-1", execution_id="e1", index=index,
                           make_hex=lambda: "0a1b2c3d")


def test_every_event_type_is_covered() -> None:
    assert set(EVENTS) == set(tr.EVENT_TYPE_NAMES)


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_event_round_trips_through_a_row(event_type: int) -> None:
    event = EVENTS[event_type]
    row, offloads = to_row(event)
    assert offloads == []
    assert tr.row_to_event(row) == event


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_row_holds_only_table_friendly_values(event_type: int) -> None:
    row, _ = to_row(EVENTS[event_type])
    for key, value in row.items():
        assert isinstance(value, (str, int, bool, float, datetime)), key
        assert value is not None


def test_row_columns_follow_the_dtfx_layout() -> None:
    row, _ = to_row(EVENTS[0], index=31)
    assert row["PartitionKey"] == "order-1"
    assert row["RowKey"] == "000000000000001F"
    assert row["ExecutionId"] == "e1"
    assert row["EventType"] == "ExecutionStarted"
    assert row["_Timestamp"] == datetime(2024, 3, 1, 12, 34, 56, 789012, tzinfo=timezone.utc)
    assert "Timestamp" not in row
    assert json.loads(row["OrchestrationInstance"]) == INSTANCE
    assert json.loads(row["Tags"]) == {"k": "v"}
    assert row["ScheduledStartTime"] == datetime(2024, 3, 1, 12, 40, tzinfo=timezone.utc)
    assert "Correlation" not in row  # null: no column
    assert row["Generation"] == 2 and row["IsPlayed"] is True

    completed, _ = to_row(EVENTS[1])
    assert completed["OrchestrationStatus"] == "Failed"
    assert json.loads(completed["FailureDetails"]) == FAILURE


def test_missing_optional_fields_come_back_as_null() -> None:
    row, _ = to_row({"EventType": 4, "EventId": 0, "IsPlayed": False, "Timestamp": TS,
                     "Name": "Hello"})
    assert tr.row_to_event(row) == {"EventType": 4, "EventId": 0, "IsPlayed": False,
                                    "Timestamp": TS, "Name": "Hello", "Version": None,
                                    "Input": None}


def test_timestamps_keep_microseconds_and_print_seven_digits() -> None:
    row, _ = to_row(base(12) | {"Timestamp": "2019-12-08T23:18:41.3240927Z"})
    assert tr.row_to_event(row)["Timestamp"] == "2019-12-08T23:18:41.3240920Z"
    assert tr.parse_iso("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12,
                                                            tzinfo=timezone.utc)
    assert tr.parse_iso("2024-03-01T14:00:00.5+02:00") == datetime(
        2024, 3, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)
    assert tr.format_iso(datetime(2024, 3, 1, 12, 0, 0, 500000)) == (
        "2024-03-01T12:00:00.5000000Z")


def test_large_property_is_offloaded_and_restored() -> None:
    big = json.dumps("x" * 40_000)  # 80 KB as UTF-16
    event = EVENTS[5] | {"Result": big}
    row, offloads = to_row(event, index=10)
    name = "order-1/history-000000000000000A-TaskCompleted-0a1b2c3d-Result.json.gz"
    assert row["Result"] == ""
    assert row["ResultBlobName"] == name
    assert offloads == [tr.Offload(name, big)]
    assert tr.blob_refs(row) == {"Result": name}
    assert tr.row_to_event(row, {name: big}) == event
    with pytest.raises(ValueError, match="blob"):
        tr.row_to_event(row)


def test_large_json_column_is_offloaded_as_its_json_text() -> None:
    failure = {"ErrorType": "E", "ErrorMessage": "m" * 40_000}
    row, offloads = to_row(EVENTS[1] | {"FailureDetails": failure})
    assert row["FailureDetails"] == "" and len(offloads) == 1
    restored = tr.row_to_event(row, {offloads[0].blob_name: offloads[0].text})
    assert restored["FailureDetails"] == failure


def test_threshold_counts_utf16_bytes() -> None:
    limit_chars = tr.MAX_PROPERTY_BYTES // 2
    assert not tr.is_large("a" * limit_chars)
    assert tr.is_large("a" * (limit_chars + 1))
    assert not tr.is_large("é" * limit_chars)  # one UTF-16 unit each
    assert tr.is_large("😀" * (limit_chars // 2 + 1))  # two units each


def test_random_part_of_blob_name_differs_per_write() -> None:
    event = EVENTS[15] | {"Input": "y" * 31_000}
    a, _ = tr.event_to_row(event, partition_key="p", execution_id="e", index=1)
    b, _ = tr.event_to_row(event, partition_key="p", execution_id="e", index=1)
    assert re.fullmatch(r"p/history-0000000000000001-EventRaised-[0-9a-f]{8}-Input\.json\.gz",
                        a["InputBlobName"])
    assert a["InputBlobName"] != b["InputBlobName"]


def test_values_a_table_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="EventType"):
        to_row({"EventType": 99, "EventId": -1, "IsPlayed": False, "Timestamp": TS})
    with pytest.raises(ValueError, match="32-bit"):
        to_row(EVENTS[5] | {"TaskScheduledId": 2**40})
    with pytest.raises(ValueError, match="cannot store"):
        to_row(EVENTS[15] | {"Input": {"not": "text"}})


def test_row_values_from_the_table_sdk_are_unwrapped() -> None:
    class Wrapped:  # the SDK's EntityProperty shape (Int64 values)
        def __init__(self, value: Any) -> None:
            self.value = value
            self.edm_type = "Edm.Int64"

    row, _ = to_row(EVENTS[5])
    row["TaskScheduledId"] = Wrapped(0)
    assert tr.row_to_event(row)["TaskScheduledId"] == 0


def test_sentinel_row() -> None:
    now = datetime(2024, 3, 1, tzinfo=timezone.utc)
    row = tr.sentinel_row("order-1", "e1", is_complete=True, checkpoint_id="c:0",
                          completed_at=now)
    assert row == {"PartitionKey": "order-1", "RowKey": "sentinel", "ExecutionId": "e1",
                   "IsCheckpointComplete": True, "CheckpointId": "c:0",
                   "CheckpointCompletedTimestamp": now}
    partial = tr.sentinel_row("order-1", "e1", is_complete=False, checkpoint_id="c:1",
                              completed_at=now)
    assert partial["IsCheckpointComplete"] is False
    assert "CheckpointCompletedTimestamp" not in partial


# --- instance rows ------------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
FIELDS: dict[str, Any] = {
    "Name": "Chain", "Version": "", "Input": '"in"', "Output": None, "CustomStatus": "null",
    "RuntimeStatus": "Pending", "CreatedTime": NOW, "LastUpdatedTime": NOW,
    "CompletedTime": None, "ExecutionId": "e1", "Generation": 0, "TaskHubName": "Hub",
    "ScheduledStartTime": None, "Tags": {"team": "a"},
}


def url_of(name: str) -> str:
    return f"http://blobs/hub-largemessages/{name}"


def test_instance_round_trips_through_a_row() -> None:
    row, offloads = tr.instance_to_row("order-1", FIELDS, blob_url=url_of, merge=False)
    assert offloads == []
    assert row["RowKey"] == "" and row["Tags"] == '{"team":"a"}'
    assert "Output" not in row and "CompletedTime" not in row
    assert tr.row_to_instance(row, "order/1") == {"InstanceId": "order/1", **FIELDS}


def test_record_keys_that_are_not_columns_are_not_written() -> None:
    row, _ = tr.instance_to_row("p", FIELDS | {"InstanceId": "x", "etag": "W/1"},
                                blob_url=url_of, merge=True)
    assert "InstanceId" not in row and "etag" not in row


def test_large_instance_input_goes_to_a_blob_and_its_url_to_the_column() -> None:
    big = json.dumps("z" * 500_000)
    row, offloads = tr.instance_to_row("order-1", FIELDS | {"Input": big}, blob_url=url_of,
                                       merge=False, make_hex=lambda: "00ff00ff")
    name = "order-1/instance-Input-00ff00ff.json.gz"
    assert offloads == [tr.Offload(name, big)]
    assert row["Input"] == url_of(name)
    assert row["InputBlobName"] == name
    assert "OutputBlobName" not in row
    assert tr.row_to_instance(row, "order-1", {name: big})["Input"] == big


def test_merge_clears_an_earlier_blob_reference() -> None:
    row, _ = tr.instance_to_row("order-1", {"Output": '"small"'}, blob_url=url_of,
                                merge=True)
    assert row["OutputBlobName"] == ""
    assert "InputBlobName" not in row  # Input not written: its reference stays
    assert tr.row_to_instance(row, "order-1")["Output"] == '"small"'
