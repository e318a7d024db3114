"""The fast timestamp parser gives what dateutil gives, tzinfo included, or defers to it."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dateutil.parser import parse as dateutil_parse

from runtime.worker.child import sdk_speedups
from runtime.worker.child.sdk_speedups import TimestampParser

REPO = Path(__file__).resolve().parents[2]


def describe(call: Any, text: Any) -> tuple[Any, ...]:
    """Everything about a parse a caller could notice."""
    try:
        value = call(text)
    except Exception as exc:  # noqa: BLE001 - the same failure is part of "the same"
        return ("raised", type(exc))
    zone = value.tzinfo
    views = [value.isoformat, value.utcoffset, value.tzname, value.timetuple, value.__str__,
             lambda: value == value.replace(tzinfo=None)]
    seen: list[Any] = []
    for view in views:
        try:
            seen.append(view())
        except Exception as exc:  # noqa: BLE001 - e.g. an offset of 25 hours
            seen.append(("raised", type(exc), str(exc)))
    return (value.replace(tzinfo=None), value.fold, type(zone), repr(zone), *seen)


def host_style(rng: random.Random) -> str:
    year = rng.choice([1, 99, 100, 999, 1000, 1601, 1970, 2000, 2024, 2038, 9999])
    stamp = (f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
             f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
    digits = rng.choice([0, 1, 2, 3, 5, 6, 7, 7, 7, 8, 9])
    if digits:
        stamp += "." + "".join(rng.choice("0123456789") for _ in range(digits))
    return stamp + rng.choice(["Z", "Z", "Z", "", "+00:00", "-00:00", "+05:30", "-08:00",
                               "+14:00", "-12:00", "+01:00"])


UNUSUAL = [
    "2024-05-01T12:00:00.1234567Z", "2024-05-01T12:00:00.9999999Z", "2024-05-01T23:59:59Z",
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z", "2024-05-32T00:00:00Z", "2024-05-01T24:00:00Z",
    "2024-05-01T23:60:00Z", "2024-05-01T23:59:60Z", "0000-01-01T00:00:00Z",
    "2024-05-01 12:00:00Z", "2024-05-01t12:00:00z", "2024-05-01T12:00:00z",
    "2024-05-01T12:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.1234567890Z",
    "2024-05-01T12:00:00+0530", "2024-05-01T12:00:00+05", "2024-05-01T12:00:00+25:00",
    "2024-05-01T12:00:00UTC", "2024-05-01T12:00:00 GMT", "20240501T120000Z",
    "2024-05-01", "May 1 2024 12:00", "  2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z ",
    "2024-05-01T12:00:00.123456789+05:30", "٢٠٢٤-05-01T12:00:00Z", "", "garbage",
]


@pytest.fixture
def fast() -> TimestampParser:
    return TimestampParser(dateutil_parse)


def test_host_timestamps_parse_exactly_as_dateutil(fast: TimestampParser) -> None:
    rng = random.Random(1234)
    for text in [host_style(rng) for _ in range(3000)]:
        assert describe(fast, text) == describe(dateutil_parse, text), text


@pytest.mark.parametrize("text", UNUSUAL)
def test_unusual_text_gets_the_original_answer(fast: TimestampParser, text: str) -> None:
    assert describe(fast, text) == describe(dateutil_parse, text)


def test_non_strings_and_options_go_to_the_original() -> None:
    calls: list[tuple[Any, ...]] = []

    def original(*args: Any, **kwargs: Any) -> datetime:
        calls.append((args, kwargs))
        return datetime(2000, 1, 1)

    parser = TimestampParser(original)
    parser(None)
    parser("2024-05-01T12:00:00Z", dayfirst=True)
    parser("yesterday")
    assert calls == [((None,), {}), (("2024-05-01T12:00:00Z",), {"dayfirst": True}),
                     (("yesterday",), {})]


def test_the_host_format_takes_the_fast_path(fast: TimestampParser) -> None:
    calls: list[str] = []

    def counting(text: str) -> datetime:
        calls.append(text)
        return dateutil_parse(text)

    parser = TimestampParser(counting)
    for second in range(60):
        parser(f"2024-05-01T12:00:{second:02d}.1234560Z")
    probes = len(calls)  # the zone of "Z" is learnt once, from the original
    for second in range(60):
        parser(f"2024-05-01T13:00:{second:02d}.1234560Z")
    assert len(calls) == probes


def test_original_parsing_switches_this_thread_back(fast: TimestampParser) -> None:
    calls: list[str] = []

    def counting(text: str) -> datetime:
        calls.append(text)
        return dateutil_parse(text)

    parser = TimestampParser(counting)
    parser("2024-05-01T12:00:00Z")
    calls.clear()
    with sdk_speedups.original_parsing():
        parser("2024-05-01T12:00:01Z")
    parser("2024-05-01T12:00:02Z")
    assert calls == ["2024-05-01T12:00:01Z"]


@pytest.fixture
def patched() -> Iterator[None]:
    sdk_speedups.patch_now()
    yield
    sdk_speedups.uninstall()


def test_patch_replaces_the_sdk_call_site_and_uninstall_restores(patched: None) -> None:
    from azure.durable_functions.models.history import HistoryEvent as event_module_owner

    module = sys.modules[sdk_speedups.HISTORY_EVENT_MODULE]
    assert isinstance(module.dt_parse, TimestampParser)
    assert module.dt_parse.original is dateutil_parse
    event = event_module_owner(EventType=12, EventId=-1, IsPlayed=False,
                               Timestamp="2024-05-01T12:00:00.1234567Z")
    assert event.timestamp == dateutil_parse("2024-05-01T12:00:00.1234567Z")
    sdk_speedups.uninstall()
    assert module.dt_parse is dateutil_parse
    sdk_speedups.patch_now()


def run_python(code: str, tz: str | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    if tz is not None:
        env["TZ"] = tz
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=str(REPO),
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_install_patches_the_sdk_as_it_is_imported_and_costs_nothing_otherwise() -> None:
    out = run_python("""
        import sys
        from runtime.worker.child import sdk_speedups
        assert sdk_speedups.install() is False
        assert "azure.durable_functions" not in sys.modules
        import azure.durable_functions
        module = sys.modules[sdk_speedups.HISTORY_EVENT_MODULE]
        print(type(module.dt_parse).__name__, sdk_speedups.install())
        print(len([f for f in sys.meta_path if type(f).__name__ == "_PatchOnImport"]))
    """)
    assert out.splitlines() == ["TimestampParser True", "0"]


@pytest.mark.parametrize("tz", ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata",
                                "UTC0BST,M3.5.0/1,M10.5.0", "GMT"])
def test_every_local_time_zone_gets_dateutils_tzinfo(tz: str) -> None:
    # dateutil's answer for a zero offset depends on the local zone's name (tzlocal() where
    # it is called UTC), and a local zone with summer time must fall back to dateutil.
    out = run_python("""
        import random
        from dateutil.parser import parse
        from runtime.worker.child.sdk_speedups import TimestampParser
        fast = TimestampParser(parse)
        rng = random.Random(7)
        for _ in range(400):
            text = (f"{rng.choice([1999, 2024])}-{rng.randint(1, 12):02d}-"
                    f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:30:00.1234567"
                    + rng.choice(["Z", "+00:00", "", "+05:30"]))
            a, b = fast(text), parse(text)
            assert (a, a.isoformat(), type(a.tzinfo), repr(a.tzinfo), a.tzname()) == \\
                (b, b.isoformat(), type(b.tzinfo), repr(b.tzinfo), b.tzname()), text
        print(repr(parse("2024-07-01T00:00:00Z").tzinfo))
    """, tz=tz)
    assert out in ("tzutc()", "tzlocal()")
