"""A fast path for the Durable Functions SDK's timestamp parsing (worker processes only).

The SDK builds a `HistoryEvent` for every event of the history on every episode, and
most of that cost is `dateutil.parser.parse` reading the event's `Timestamp`. The
timestamps the host writes are plain ISO 8601, so a strict pattern and a `datetime`
constructor give the same value far faster. The replacement is installed as the
module attribute the SDK calls (`HistoryEvent.dt_parse`) and hands anything it does
not recognise to the original parser.

"The same value" includes the tzinfo: dateutil's choice depends on the machine's time
zone (a zero offset becomes `tzlocal()` where the local zone is called UTC, `tzutc()`
elsewhere). Rather than re-implement that, the tzinfo for each zone suffix is taken
from what the original parser returns for it, and used only when it cannot vary with
the date (no daylight saving time).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from types import ModuleType
from typing import Any

HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"
PARSER_ATTRIBUTE = "dt_parse"

# What the host writes ("2024-05-01T12:00:00.1234560Z") and close variants. ASCII
# digits only: `\d` would accept other scripts' digits, which dateutil treats otherwise.
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?")
_fromisoformat = datetime.fromisoformat

# Instants the original parser is asked about for each zone suffix: every month of two
# years, so a zone whose answer depends on the date is caught.
_PROBES = tuple(f"{year}-{month:02d}-15T12:30:45.1234567"
                for year in (2001, 2024) for month in range(1, 13))
_MAX_ZONES = 64  # distinct suffixes remembered; anything beyond goes to the original


class _Unsafe:
    """The original parser's tzinfo for a suffix can vary: always ask it."""


_UNSAFE = _Unsafe()
_MISSING = _Unsafe()


class _Mode(threading.local):
    original = False


_mode = _Mode()


@contextmanager
def original_parsing() -> Iterator[None]:
    """Within the block, this thread's SDK parses timestamps with the original parser."""
    previous = _mode.original
    _mode.original = True
    try:
        yield
    finally:
        _mode.original = previous


class TimestampParser:
    """A drop-in for `dateutil.parser.parse(text)` as the SDK calls it."""

    def __init__(self, original: Callable[..., datetime]) -> None:
        self.original = original
        self._zones: dict[str | None, tzinfo | None | _Unsafe] = {}
        self._lock = threading.Lock()

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> datetime:
        if args or kwargs or _mode.original or type(text) is not str:
            return self.original(text, *args, **kwargs)
        match = _ISO_8601.fullmatch(text)
        if match is None:
            return self.original(text)
        fraction, suffix = match.groups()
        zone = self._zones.get(suffix, _MISSING)
        if zone is _MISSING:
            zone = self._learn(suffix)
        if isinstance(zone, _Unsafe):
            return self.original(text)
        try:
            # dateutil keeps the first six fraction digits (truncation, not rounding);
            # the pattern has fixed the layout, so the C parser can do the rest.
            if fraction is not None and len(fraction) >= 6:
                value = _fromisoformat(text[:26])
            else:
                value = _fromisoformat(text[:19])
                if fraction:
                    value = value.replace(microsecond=int(fraction.ljust(6, "0")))
        except ValueError:
            return self.original(text)  # e.g. 24:00 or a leap second: its answer, or error
        if zone is None:
            return value
        # Positional construction: several times faster than replace(tzinfo=...).
        return datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond, zone)

    def _learn(self, suffix: str | None) -> tzinfo | None | _Unsafe:
        with self._lock:
            if suffix in self._zones:
                return self._zones[suffix]
            zone = _UNSAFE if len(self._zones) >= _MAX_ZONES else self._probe(suffix)
            if len(self._zones) < _MAX_ZONES:
                self._zones[suffix] = zone
            return zone

    def _probe(self, suffix: str | None) -> tzinfo | None | _Unsafe:
        found: list[tzinfo | None] = []
        for probe in _PROBES:
            try:
                value = self.original(probe + (suffix or ""))
            except Exception:  # noqa: BLE001 - a suffix the original rejects stays its call
                return _UNSAFE
            naive = datetime(int(probe[:4]), int(probe[5:7]), 15, 12, 30, 45, 123456)
            if value.replace(tzinfo=None) != naive or value.fold != 0:
                return _UNSAFE
            found.append(value.tzinfo)
        first = found[0]
        if first is None:
            return None if all(z is None for z in found) else _UNSAFE
        if not _date_independent(first):
            return _UNSAFE
        if any(z is None or type(z) is not type(first) or z != first or repr(z) != repr(first)
               for z in found):
            return _UNSAFE
        return first


def _date_independent(zone: tzinfo) -> bool:
    """A tzinfo whose offset and name cannot depend on the date, so one shared instance
    behaves exactly like the fresh ones the original parser would return."""
    kind = type(zone)
    module = kind.__module__
    if not module.startswith("dateutil.tz"):
        return False
    if kind.__name__ in ("tzutc", "tzoffset"):
        return True
    if kind.__name__ == "tzlocal":
        return getattr(zone, "_hasdst", True) is False
    return False


def _patch(module: ModuleType) -> bool:
    current = getattr(module, PARSER_ATTRIBUTE, None)
    if isinstance(current, TimestampParser):
        return True
    if not callable(current):
        return False
    setattr(module, PARSER_ATTRIBUTE, TimestampParser(current))
    return True


def installed_parser() -> TimestampParser | None:
    module = sys.modules.get(HISTORY_EVENT_MODULE)
    current = getattr(module, PARSER_ATTRIBUTE, None) if module is not None else None
    return current if isinstance(current, TimestampParser) else None


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches the SDK module the moment it is first imported. Importing the SDK here
    instead would cost every worker ~150 ms at start, durable or not."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != HISTORY_EVENT_MODULE:
            return None
        self.remove()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        exec_module = getattr(loader, "exec_module", None)
        if loader is None or exec_module is None:
            return spec

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch(module)

        try:
            loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        except AttributeError:
            pass  # an unusual loader: install() after the app import still patches
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> bool:
    """Use the fast parser in the SDK: now if the SDK is loaded, else as it loads.

    Returns whether it is in place now. Safe to call more than once."""
    module = sys.modules.get(HISTORY_EVENT_MODULE)
    if module is not None:
        return _patch(module)
    if not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    return False


def patch_now() -> bool:
    """Import the SDK module and patch it (tests and benchmarks)."""
    return _patch(importlib.import_module(HISTORY_EVENT_MODULE))


def uninstall() -> None:
    """Restore the original parser (tests and benchmarks)."""
    for finder in [f for f in sys.meta_path if isinstance(f, _PatchOnImport)]:
        finder.remove()
    module = sys.modules.get(HISTORY_EVENT_MODULE)
    current = getattr(module, PARSER_ATTRIBUTE, None) if module is not None else None
    if isinstance(current, TimestampParser):
        setattr(module, PARSER_ATTRIBUTE, current.original)
