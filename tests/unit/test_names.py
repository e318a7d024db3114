from __future__ import annotations

import pytest

from runtime.durable import names as nm

# Published FNV-1a 32-bit test vectors (offset 2166136261, prime 16777619).
FNV_VECTORS = [
    (b"", 0x811C9DC5),
    (b"a", 0xE40C292C),
    (b"foobar", 0xBF9CF968),
]


@pytest.mark.parametrize(("data", "expected"), FNV_VECTORS)
def test_fnv1a32_matches_published_vectors(data: bytes, expected: int) -> None:
    assert nm.fnv1a32(data) == expected


def test_fnv1a32_by_hand_for_two_bytes() -> None:
    h = 2166136261
    for byte in b"ab":
        h = ((h ^ byte) * 16777619) % 2**32
    assert nm.fnv1a32(b"ab") == h


def test_partition_is_hash_of_utf8_id_mod_count() -> None:
    assert nm.partition_of("a", 4) == 0xE40C292C % 4
    assert nm.partition_of("foobar", 16) == 0xBF9CF968 % 16
    assert nm.partition_of("ünïcode", 7) == nm.fnv1a32("ünïcode".encode()) % 7
    assert nm.partition_of("anything", 1) == 0


def test_hub_names_follow_the_dtfx_layout() -> None:
    names = nm.hub_names("MyHub", 4)
    assert names.history_table == "MyHubHistory"
    assert names.instances_table == "MyHubInstances"
    assert names.workitems == "myhub-workitems"
    assert names.control_queues == ("myhub-control-00", "myhub-control-01",
                                     "myhub-control-02", "myhub-control-03")
    assert names.leases_container == "myhub-leases"
    assert names.large_messages_container == "myhub-largemessages"
    assert names.all_queues[-1] == "myhub-workitems"
    assert nm.hub_names("MyHub", 16).control_queues[-1] == "myhub-control-15"


@pytest.mark.parametrize("count", [0, 17, -1])
def test_partition_count_outside_1_to_16_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 16"):
        nm.hub_names("MyHub", count)


@pytest.mark.parametrize("name", ["ab", "1hub", "my-hub", "hub_name", "h" * 46, ""])
def test_invalid_hub_names_are_explained(name: str) -> None:
    assert nm.hub_name_problem(name) is not None
    with pytest.raises(ValueError, match="Task hub name"):
        nm.hub_names(name, 4)


def test_valid_hub_names() -> None:
    assert nm.hub_name_problem("abc") is None
    assert nm.hub_name_problem("TestHubName") is None
    assert nm.hub_name_problem("h" * 45) is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("my-func-app", "myfuncapp"),
    ("1app", "t1app"),
    ("a", "aHub"),
    ("---", "DefaultTaskHub"),
    ("x" * 60, "x" * 45),
])
def test_sanitize_hub_name(raw: str, expected: str) -> None:
    assert nm.sanitize_hub_name(raw) == expected
    assert nm.hub_name_problem(nm.sanitize_hub_name(raw)) is None


@pytest.mark.parametrize(("key", "escaped"), [
    ("plain-id:1", "plain-id:1"),
    ("a/b", "a^0b"),
    ("a\\b", "a^1b"),
    ("a#b", "a^2b"),
    ("a?b", "a^3b"),
    ("a^b", "a^^b"),
    ("tab\there", "tab^\u00c9here"),
    ("\x00\x1f\x7f\x9f", "^\u00c0^\u00df^\u013f^\u015f"),
])
def test_sanitize_key_escapes_forbidden_characters(key: str, escaped: str) -> None:
    assert nm.sanitize_key(key) == escaped
    assert nm.unsanitize_key(escaped) == key


def test_sanitize_key_round_trips_every_awkward_character() -> None:
    key = "".join(chr(c) for c in range(0, 0xA0)) + "^^^0/é😀"
    escaped = nm.sanitize_key(key)
    assert not any(c in escaped for c in "/\\#?")
    assert not any(ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F for c in escaped)
    assert nm.unsanitize_key(escaped) == key


def test_history_row_key_is_16_upper_case_hex_digits() -> None:
    assert nm.history_row_key(0) == "0000000000000000"
    assert nm.history_row_key(31) == "000000000000001F"
    assert nm.history_row_key(2**40) == "0000010000000000"
    assert sorted(nm.history_row_key(i) for i in (10, 9, 255, 16)) == [
        nm.history_row_key(i) for i in (9, 10, 16, 255)]
    assert nm.history_row_key(5) < nm.SENTINEL_ROW_KEY
    with pytest.raises(ValueError):
        nm.history_row_key(-1)


def test_blob_names() -> None:
    assert nm.history_blob_name("id^0x", "000000000000000A", "TaskCompleted", "0a1b2c3d",
                                "Result") == (
        "id^0x/history-000000000000000A-TaskCompleted-0a1b2c3d-Result.json.gz")
    assert nm.message_blob_name("id", "ab" * 16, "ExecutionStarted") == (
        f"id/message-{'ab' * 16}-ExecutionStarted.json.gz")
    assert nm.instance_blob_name("id", "Input", "0a1b2c3d") == (
        "id/instance-Input-0a1b2c3d.json.gz")


def test_key_prefix_range() -> None:
    assert nm.key_prefix_range("abc") == ("abc", "abd")
    low, high = nm.key_prefix_range("order-")
    assert high is not None
    for key in ("order-", "order-1", "order-zzz"):
        assert low <= key < high
    for key in ("order", "orders", "order."):
        assert not low <= key < high
    assert nm.key_prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
