"""Route parameter constraints (`int`, `guid`, `range(1,9)`, `regex(...)`...) as ASP.NET
Core checks them, and the syntax error the template parser raises (pure)."""

from __future__ import annotations

import datetime as _dt
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeAlias


class TemplateSyntax(Exception):
    """A template syntax problem, re-raised by the parser as InvalidRouteTemplate."""


# --------------------------------------------------------------------
# Each check mirrors the .NET parser the ASP.NET constraint uses (invariant culture).

_Check: TypeAlias = Callable[[str], bool]

_WS = "[\t\n\v\f\r ]*"  # .NET NumberStyles.AllowLeading/TrailingWhite
_INTEGER = re.compile(rf"{_WS}[+-]?[0-9]+{_WS}")
_DECIMAL = re.compile(
    rf"{_WS}(?P<lead>[+-])?(?P<num>[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?P<trail>[+-])?{_WS}")
_FLOAT = re.compile(
    rf"{_WS}[+-]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?{_WS}"
    rf"|{_WS}[+-]?(?:infinity|\u221e|nan){_WS}", re.IGNORECASE)
_DECIMAL_MAX = Decimal(2**96 - 1)
_HEX = "[0-9a-fA-F]"
_GUID_D = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_GUID = re.compile(rf"{_HEX}{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\)")
_GUID_X = re.compile(
    rf"\{{0[xX]{_HEX}{{1,8}},0[xX]{_HEX}{{1,4}},0[xX]{_HEX}{{1,4}},"
    rf"\{{0[xX]{_HEX}{{1,2}}(?:,0[xX]{_HEX}{{1,2}}){{7}}\}}\}}")
_DATE = re.compile(
    r"(?P<y1>[0-9]{4})(?P<sep>[-/])(?P<m1>[0-9]{1,2})(?P=sep)(?P<d1>[0-9]{1,2})"
    r"|(?P<m2>[0-9]{1,2})/(?P<d2>[0-9]{1,2})/(?P<y2>[0-9]{4})")
_TIME = re.compile(
    r"(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.[0-9]{1,7})?)?"
    r"(?: ?(?P<ampm>[AaPp][Mm]))?(?P<zone>Z|[+-](?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2}))?)?")
_DATE_TIME_SEPARATOR = re.compile("T| +")


def _to_integer(value: str, bits: int) -> int | None:
    if not _INTEGER.fullmatch(value):
        return None
    number = int(value.strip("\t\n\v\f\r "))
    limit = 1 << (bits - 1)
    return number if -limit <= number < limit else None


def _is_int(value: str) -> bool:
    return _to_integer(value, 32) is not None


def _is_long(value: str) -> bool:
    return _to_integer(value, 64) is not None


def _is_bool(value: str) -> bool:
    return value.strip("\t\n\v\f\r \0").lower() in ("true", "false")


def _is_guid(value: str) -> bool:
    text = value.strip("\t\n\v\f\r ")
    return bool(_GUID.fullmatch(text) or _GUID_X.fullmatch(re.sub(r"\s", "", text)))


def _is_alpha(value: str) -> bool:
    # Not str.isalpha and not a case-insensitive [a-z]: both accept non-ASCII letters.
    return all(ch in string.ascii_letters for ch in value)


def _is_decimal(value: str) -> bool:
    found = _DECIMAL.fullmatch(value)
    if not found or (found["lead"] and found["trail"]):
        return False
    try:
        # copy_abs, unlike abs(), does not round to the context precision (28 digits).
        return Decimal(found["num"].replace(",", "")).copy_abs() <= _DECIMAL_MAX
    except InvalidOperation:
        return False


def _is_float(value: str) -> bool:
    # .NET Core 3.0+ parses out-of-range values as infinity, so there is no range check.
    return _FLOAT.fullmatch(value) is not None


def _is_datetime(value: str) -> bool:
    # An "ISO-ish" subset of DateTime.TryParse: a date, a date and time, or a time.
    text = value.strip("\t\n\v\f\r ")
    date = _DATE.match(text)
    if date is None:
        return _is_time(text)
    try:
        _dt.date(int(date["y1"] or date["y2"]), int(date["m1"] or date["m2"]),
                 int(date["d1"] or date["d2"]))
    except ValueError:
        return False
    rest = text[date.end():]
    separator = _DATE_TIME_SEPARATOR.match(rest)
    return not rest or (separator is not None and _is_time(rest[separator.end():]))


def _is_time(text: str) -> bool:
    time = _TIME.fullmatch(text)
    if time is None:
        return False
    max_hour = 12 if time["ampm"] else 23
    return (int(time["h"]) <= max_hour and int(time["mi"]) <= 59
            and int(time["s"] or 0) <= 59 and int(time["zh"] or 0) <= 14
            and int(time["zm"] or 0) <= 59)


def _utf16_length(value: str) -> int:
    # .NET string lengths count UTF-16 code units, not code points.
    return len(value.encode("utf-16-le")) // 2


_SIMPLE_CHECKS: dict[str, _Check] = {
    "int": _is_int, "long": _is_long, "bool": _is_bool, "guid": _is_guid,
    "alpha": _is_alpha, "datetime": _is_datetime, "decimal": _is_decimal,
    "double": _is_float, "float": _is_float,
}
_ARGUMENT_COUNTS: dict[str, tuple[int, ...]] = {
    "min": (1,), "max": (1,), "range": (2,), "minlength": (1,), "maxlength": (1,),
    "length": (1, 2), "regex": (1,),
}


@dataclass(frozen=True)
class Constraint:
    text: str  # as written, e.g. "range(1,5)"
    check: _Check = field(repr=False, compare=False)


def make_constraint(name: str, argument: str | None) -> Constraint:
    text = name if argument is None else f"{name}({argument})"
    key = name.lower()  # ASP.NET's constraint map is case-insensitive
    if key in _SIMPLE_CHECKS:
        if argument is not None:
            raise TemplateSyntax(f"The constraint '{name}' does not take arguments.")
        return Constraint(text, _SIMPLE_CHECKS[key])
    if key not in _ARGUMENT_COUNTS:
        known = ", ".join([*_SIMPLE_CHECKS, *_ARGUMENT_COUNTS])
        raise TemplateSyntax(f"The constraint reference '{name}' could not be resolved; "
                      f"known constraints are: {known}.")
    if argument is None:
        raise TemplateSyntax(f"The constraint '{name}' needs an argument, as in '{name}(...)'.")
    if key == "regex":
        return Constraint(text, _regex_check(argument))
    args = [arg.strip() for arg in argument.split(",")]
    if len(args) not in _ARGUMENT_COUNTS[key]:
        raise TemplateSyntax(f"The constraint '{name}' does not take {len(args)} argument(s).")
    numbers = [_integer_argument(text, arg) for arg in args]
    if key in ("min", "max", "range"):
        return Constraint(text, _bounds_check(key, numbers, _long_value))
    if any(number < 0 for number in numbers):
        raise TemplateSyntax(f"The arguments of constraint '{text}' must not be negative.")
    return Constraint(text, _bounds_check(key, numbers, _utf16_length))


def _long_value(value: str) -> int | None:
    return _to_integer(value, 64)


def _integer_argument(constraint: str, arg: str) -> int:
    number = _to_integer(arg, 64)
    if number is None:
        raise TemplateSyntax(
            f"The argument '{arg}' of constraint '{constraint}' is not an integer.")
    return number


def _bounds_check(kind: str, numbers: list[int],
                  measure: Callable[[str], int | None]) -> _Check:
    low: int | None
    high: int | None
    if kind in ("min", "minlength"):
        low, high = numbers[0], None
    elif kind in ("max", "maxlength"):
        low, high = None, numbers[0]
    elif len(numbers) == 1:  # length(n)
        low = high = numbers[0]
    else:
        low, high = numbers
        if low > high:
            raise TemplateSyntax(f"The constraint '{kind}({low},{high})' has a minimum greater "
                          "than its maximum.")

    def check(value: str) -> bool:
        measured = measure(value)
        return (measured is not None and (low is None or measured >= low)
                and (high is None or measured <= high))

    return check


def _regex_check(pattern: str) -> _Check:
    # ASP.NET uses IsMatch with IgnoreCase, so the pattern is unanchored unless it says ^...$.
    try:
        compiled = re.compile(_python_regex(pattern), re.IGNORECASE)
    except re.error as exc:
        raise TemplateSyntax(f"The regular expression '{pattern}' is invalid: {exc}.") from None
    return lambda value: compiled.search(value) is not None


def _python_regex(pattern: str) -> str:
    """Translates .NET named groups `(?<n>...)` and `\\k<n>` to Python's spelling."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("\\k<", i) and ">" in pattern[i:]:
            close = pattern.index(">", i)
            out.append(f"(?P={pattern[i + 3:close]})")
            i = close + 1
        elif pattern[i] == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif pattern.startswith("(?<", i) and pattern[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)
