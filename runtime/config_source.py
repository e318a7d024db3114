"""The JSON-with-comments reader that host.json and local.settings.json share.

Both files are read as the Functions host reads them (Json.NET through .NET configuration):
`//` and `/* */` comments are allowed, keys match case-insensitively and the last duplicate
wins, and a value of the wrong type is an error that names the file, line and key
(`ConfigError`). `parse_timespan` reads .NET TimeSpan text ("00:05:00").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

from runtime.errors import ConfigError

# --- TimeSpan ---------------------------------------------------------------------------

_TIMESPAN = re.compile(
    r"(-)?(?:([0-9]+)\.)?([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]{1,7}))?")


def parse_timespan(text: str) -> float:
    """Seconds in a .NET TimeSpan written as `[-][d.]hh:mm:ss[.fffffff]`."""
    match = _TIMESPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"'{text}' is not a TimeSpan; expected hh:mm:ss or d.hh:mm:ss, e.g. '00:05:00'")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    # .NET's general parser reads '24:00:00' as 24 days; refusing it avoids that surprise.
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
        raise ValueError(
            f"'{text}' is not a TimeSpan: hours must be 0-23 and minutes and seconds 0-59 "
            "(write one day as '1.00:00:00')")
    total = (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
             + (int(fraction) / 10 ** len(fraction) if fraction else 0.0))
    return -total if sign else total


# --- JSON source with key lines ---------------------------------------------------------

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.DOTALL)


def _blank_comments(text: str) -> str:
    # The real host and Core Tools parse with Json.NET, which skips // and /* */ comments.
    # Blanking them (newlines kept) preserves every line number for error messages.
    def blank(match: re.Match[str]) -> str:
        found = match.group()
        return found if found.startswith('"') else re.sub(r"[^\n]", " ", found)

    return _STRING_OR_COMMENT.sub(blank, text)


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _key_line(text: str, path: tuple[str, ...]) -> int | None:
    """Line of the last key in `path`, searching for each key after its parent's."""
    start = 0
    for depth, name in enumerate(path):
        pattern = re.compile('"' + re.escape(name) + r'"\s*:', re.IGNORECASE)
        match = pattern.search(text, start)
        last = depth == len(path) - 1
        if match is None and last:
            match = pattern.search(text)
            if match is None:
                return None
        if match is not None:
            start = match.start()
            if last:
                return _line_at(text, start)
    return None


class JsonSource:
    """A file's text with its comments blanked (line numbers kept); `root()` parses it."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.text = _blank_comments(text.removeprefix("\ufeff"))

    def error(self, path: tuple[str, ...], message: str) -> ConfigError:
        return ConfigError(self.file, message, line=_key_line(self.text, path),
                           key=".".join(path) or None)

    def root(self) -> Section:
        try:
            data = json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise ConfigError(self.file, f"invalid JSON: {exc.msg} (column {exc.colno})",
                              line=exc.lineno) from None
        if not isinstance(data, dict):
            first = len(self.text) - len(self.text.lstrip())
            raise ConfigError(self.file, "must contain a JSON object",
                              line=_line_at(self.text, first))
        return Section(self, data, ())


# What `Section.raw` returns for a key that is not there (null is None).
ABSENT = object()
_T = TypeVar("_T")


def show_value(value: object) -> str:
    """A value as the error messages quote it: its JSON text."""
    return json.dumps(value)


class Section:
    """One JSON object of a `JsonSource`; keys match case-insensitively, as in .NET
    configuration. Typed getters return the default when the key is absent or null and raise
    `ConfigError` (file, line, dotted key) when the value has the wrong type or range."""

    def __init__(self, source: JsonSource, obj: Mapping[str, object],
                 path: tuple[str, ...]) -> None:
        self.source = source
        self.obj = obj
        self.path = path

    def raw(self, name: str) -> object:
        found: object = ABSENT
        wanted = name.lower()
        for key, value in self.obj.items():
            if key.lower() == wanted:
                found = value  # the last duplicate wins, like .NET configuration
        return found

    def fail(self, name: str, message: str) -> ConfigError:
        return self.source.error(self.path + (name,), message)

    def _get(self, name: str, default: _T, convert: Callable[[object], _T | None],
             expected: str) -> _T:
        value = self.raw(name)
        if value is ABSENT or value is None:
            return default
        converted = convert(value)
        if converted is None:
            raise self.fail(name, f"must be {expected}, got {show_value(value)}")
        return converted

    def section(self, name: str) -> Section:
        value = self.raw(name)
        if value is ABSENT or value is None:
            return Section(self.source, {}, self.path + (name,))
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a JSON object, got {show_value(value)}")
        return Section(self.source, value, self.path + (name,))

    def string(self, name: str, default: str) -> str:
        return self._get(name, default, _as_str, "a string")

    def optional_string(self, name: str) -> str | None:
        return self._get(name, None, _as_str, "a string")

    def boolean(self, name: str, default: bool) -> bool:
        return self._get(name, default, _as_bool, "true or false")

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        number = self.optional_integer(name, low, high)
        return default if number is None else number

    def optional_integer(self, name: str, low: int, high: int | None = None) -> int | None:
        expected = (f"an integer from {low} to {high}" if high is not None
                    else f"an integer of at least {low}")
        number = self._get(name, None, _as_int, expected)
        if number is not None and (number < low or (high is not None and number > high)):
            raise self.fail(name, f"must be {expected}, got {number}")
        return number

    def timespan(self, name: str, default: float) -> float:
        text = self._get(name, None, _as_str, "a TimeSpan string such as \"00:05:00\"")
        if text is None:
            return default
        seconds = self.timespan_value(name, text)
        if seconds <= 0:
            raise self.fail(name, f"must be a positive TimeSpan, got {show_value(text)}")
        return seconds

    def timespan_value(self, name: str, text: str) -> float:
        try:
            return parse_timespan(text)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def strings(self, name: str) -> tuple[str, ...]:
        return self._get(name, (), _as_str_tuple, "a list of strings")

    def string_map(self, name: str) -> Mapping[str, str]:
        section = self.section(name)
        result: dict[str, str] = {}
        for key, value in section.obj.items():
            if not isinstance(value, str):
                raise section.fail(key, f"must be a string, got {show_value(value)}")
            result[key] = value
        return MappingProxyType(result)


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    # .NET configuration stores every value as text, so "true" binds like true.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]+\s*", value):
        return int(value)
    return None


def _as_str_tuple(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None
