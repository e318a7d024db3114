"""The command line's parsers and output helpers: every command has help text, and the
values people type (statuses, times) are read or refused clearly."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from runtime.cli import build_parser, instances, render

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_a_description_and_help() -> None:
    root = build_parser()
    for name, command in subparsers(root).items():
        assert command.description or name in ("start", "functions"), name
        children = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for sub_name, sub in (subparsers(command) if children else {}).items():
            text = sub.format_help()
            assert sub.description, f"{name} {sub_name}"
            assert text.startswith(f"usage: funclocal {name} {sub_name}")
            assert "--script-root" in text and "--json" in text


def test_statuses_and_counts_are_checked() -> None:
    assert instances._statuses("running,FAILED") == ["Running", "Failed"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown status 'Sleeping'"):
        instances._statuses("Sleeping")
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        instances._positive("0")


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-04-30", datetime(2026, 4, 30, tzinfo=timezone.utc)),
    ("2026-04-30T10:00:00Z", datetime(2026, 4, 30, 10, tzinfo=timezone.utc)),
    ("2026-04-30T12:00:00+02:00", datetime(2026, 4, 30, 10, tzinfo=timezone.utc)),
    ("30m", datetime(2026, 5, 1, 11, 30, tzinfo=timezone.utc)),
    ("2h", datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)),
    ("7d", datetime(2026, 4, 24, 12, 0, tzinfo=timezone.utc)),
])
def test_times_on_the_command_line(text: str, expected: datetime) -> None:
    assert render.parse_moment(text, NOW) == expected


def test_a_time_that_does_not_parse_says_what_does() -> None:
    with pytest.raises(ValueError, match=r"'soon' is not a time: use ISO 8601"):
        render.parse_moment("soon", NOW)


def test_tables_and_durations() -> None:
    assert render.table(("A", "LONG"), [("xyz", "1"), ("q", "22")]) == \
        "A    LONG\nxyz  1\nq    22"
    assert [render.duration(s) for s in (0.25, 12.34, 245, 7800)] == \
        ["250 ms", "12.3 s", "4 min 5 s", "2 h 10 min"]
    assert render.clip("a  b\nc", 10) == "a b c" and render.clip("x" * 20, 5) == "xxxx…"
