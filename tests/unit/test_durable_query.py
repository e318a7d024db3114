"""runtime/http/durable_query.py: the extension's reading of query strings and bodies."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from runtime.http.durable_query import (
    QueryValues,
    parse_bool,
    parse_datetime,
    parse_double,
    parse_int,
    parse_statuses,
    read_json,
)


def test_names_are_case_insensitive_and_values_decoded() -> None:
    query = QueryValues("ShowInput=false&reason=no+longer%21&x=1&X=2&bare&&e=")
    assert query.get("showinput") == "false"
    assert query.get("reason") == "no longer!"
    assert query.get("x") == "1,2"
    assert query.get_all("X") == ["1", "2"]
    assert query.get("") == "bare,"  # parts without '=' have an empty name
    assert query.get("e") == ""
    assert query.get("missing") is None
    assert QueryValues("").get("x") is None


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("TRUE", True), (" false ", False), ("yes", None), ("1", None),
    ("", None), (None, None), ("true,false", None),
])
def test_parse_bool(text: str | None, value: bool | None) -> None:
    assert parse_bool(text) is value


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), (" -3 ", -3), ("+7", 7), ("1_000", None), ("1.0", None), ("many", None),
    (str(2**31), None), (None, None),
])
def test_parse_int(text: str | None, value: int | None) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5.0), ("0.5", 0.5), (".5", 0.5), ("1e3", 1000.0), ("1,000", 1000.0),
    ("soon", None), ("", None), ("Infinity", math.inf), ("-infinity", -math.inf),
])
def test_parse_double(text: str | None, value: float | None) -> None:
    assert parse_double(text) == value


def test_nan_is_read_in_any_case_as_since_dotnet_core_3() -> None:
    assert all(math.isnan(parse_double(t) or 0.0) for t in ("nan", "NaN", " NAN "))


@pytest.mark.parametrize(("text", "value"), [
    ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2024-01-02T03:04:05.25Z", datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=timezone.utc)),
    ("2024-01-02", datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2024-13-01", None), ("yesterday", None), (None, None),
])
def test_parse_datetime(text: str | None, value: datetime | None) -> None:
    assert parse_datetime(text) == value


def test_parse_statuses() -> None:
    assert parse_statuses(["Running, Completed", "Bogus,running", "6", "42"]) == [
        "Running", "Completed", "Pending", "42"]
    assert parse_statuses([]) == []


@pytest.mark.parametrize(("text", "whole", "value"), [
    ('{"a": 1}', True, {"a": 1}), ("  ", True, None), ("1 2", False, 1), ('"x"', False, "x"),
])
def test_read_json(text: str, whole: bool, value: object) -> None:
    assert read_json(text, whole=whole) == value


@pytest.mark.parametrize(("text", "whole", "message"), [
    ("", False, "Error reading JToken from JsonReader. Path '', line 0, position 0."),
    ("{bad", True, "Unexpected character encountered while parsing value: b. Path '', "
                   "line 1, position 1."),
    ("[1,", True, "Unexpected end when reading JSON. Path '', line 1, position 3."),
    ("1 2", True, "Additional text encountered after finished reading JSON content: 2. "
                  "Path '', line 1, position 1."),
])
def test_read_json_errors(text: str, whole: bool, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        read_json(text, whole=whole)
    assert str(caught.value) == message
