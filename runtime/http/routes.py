"""HTTP route templates (ASP.NET Core syntax) and the host's route table (pure).

A template such as `products/{category:alpha}/{id:int?}` is parsed once into segments;
matching a request path yields the route values the worker hands to Python as strings.
The table applies the host's startup rules (built-in prefixes, duplicate routes) and picks
the most specific template for a request, so `users/me` wins over `users/{id}`.
"""

from __future__ import annotations

import datetime as _dt
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeAlias
from urllib.parse import unquote

from runtime.errors import RouteError

__all__ = [
    "BUILT_IN_ROUTE_CONFLICT",
    "FunctionRouteError",
    "InvalidRouteTemplate",
    "MethodNotAllowed",
    "RouteConflict",
    "RouteEntry",
    "RouteMatch",
    "RouteTable",
    "RouteTemplate",
]

BUILT_IN_ROUTE_CONFLICT = "The specified route conflicts with one or more built in routes."
_RESERVED_PREFIXES = ("admin", "runtime")


# --- errors -------------------------------------------------------------------------


class InvalidRouteTemplate(RouteError):
    """A route template does not follow the ASP.NET Core template syntax."""

    def __init__(self, template: str, detail: str) -> None:
        self.template = template
        self.detail = detail
        super().__init__(f"The route template '{template}' is invalid: {detail}")


class FunctionRouteError(RouteError):
    """A function's HTTP route was rejected at startup; the host skips that function."""

    def __init__(self, function_name: str, message: str) -> None:
        self.function_name = function_name
        self.detail = message
        super().__init__(message)


class RouteConflict(FunctionRouteError):
    """The route clashes with a built-in route or with an earlier function's route."""

    def __init__(self, function_name: str, message: str, *,
                 other_function: str | None = None) -> None:
        self.other_function = other_function
        super().__init__(function_name, message)


class _Syntax(Exception):
    """Internal: a template syntax problem, re-raised as InvalidRouteTemplate."""


# --- constraints --------------------------------------------------------------------
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
class _Constraint:
    text: str  # as written, e.g. "range(1,5)"
    check: _Check = field(repr=False, compare=False)


def _make_constraint(name: str, argument: str | None) -> _Constraint:
    text = name if argument is None else f"{name}({argument})"
    key = name.lower()  # ASP.NET's constraint map is case-insensitive
    if key in _SIMPLE_CHECKS:
        if argument is not None:
            raise _Syntax(f"The constraint '{name}' does not take arguments.")
        return _Constraint(text, _SIMPLE_CHECKS[key])
    if key not in _ARGUMENT_COUNTS:
        known = ", ".join([*_SIMPLE_CHECKS, *_ARGUMENT_COUNTS])
        raise _Syntax(f"The constraint reference '{name}' could not be resolved; "
                      f"known constraints are: {known}.")
    if argument is None:
        raise _Syntax(f"The constraint '{name}' needs an argument, as in '{name}(...)'.")
    if key == "regex":
        return _Constraint(text, _regex_check(argument))
    args = [arg.strip() for arg in argument.split(",")]
    if len(args) not in _ARGUMENT_COUNTS[key]:
        raise _Syntax(f"The constraint '{name}' does not take {len(args)} argument(s).")
    numbers = [_integer_argument(text, arg) for arg in args]
    if key in ("min", "max", "range"):
        return _Constraint(text, _bounds_check(key, numbers, _long_value))
    if any(number < 0 for number in numbers):
        raise _Syntax(f"The arguments of constraint '{text}' must not be negative.")
    return _Constraint(text, _bounds_check(key, numbers, _utf16_length))


def _long_value(value: str) -> int | None:
    return _to_integer(value, 64)


def _integer_argument(constraint: str, arg: str) -> int:
    number = _to_integer(arg, 64)
    if number is None:
        raise _Syntax(f"The argument '{arg}' of constraint '{constraint}' is not an integer.")
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
            raise _Syntax(f"The constraint '{kind}({low},{high})' has a minimum greater "
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
        raise _Syntax(f"The regular expression '{pattern}' is invalid: {exc}.") from None
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


# --- template syntax ----------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Parameter:
    name: str
    constraints: tuple[_Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(constraint.check(value) for constraint in self.constraints)


_Part: TypeAlias = "_Literal | _Parameter"

_LITERAL, _COMPLEX, _CONSTRAINED, _PARAMETER, _CATCH_ALL = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class _Segment:
    text: str
    parts: tuple[_Part, ...]

    @property
    def kind(self) -> int:
        """ASP.NET's inbound precedence digit: lower is more specific."""
        if len(self.parts) > 1:
            return _COMPLEX
        part = self.parts[0]
        if isinstance(part, _Literal):
            return _LITERAL
        if part.catch_all:
            return _CATCH_ALL
        return _CONSTRAINED if part.constraints else _PARAMETER

    @property
    def omittable(self) -> bool:
        """True when a request may leave this segment out."""
        part = self.parts[0]
        return (len(self.parts) == 1 and isinstance(part, _Parameter)
                and (part.optional or part.default is not None or part.catch_all))


def _parse_template(text: str) -> tuple[_Segment, ...]:
    body = text[2:] if text.startswith("~/") else text.removeprefix("/")
    body = body.removesuffix("/")
    try:
        segments = tuple(_Segment(raw, _check_segment(raw, parts))
                         for raw, parts in _scan(body))
        _check_template(segments)
    except _Syntax as exc:
        raise InvalidRouteTemplate(text, str(exc)) from None
    return segments


def _scan(body: str) -> list[tuple[str, tuple[_Part, ...]]]:
    segments: list[tuple[str, tuple[_Part, ...]]] = []
    parts: list[_Part] = []
    literal: list[str] = []
    start = i = 0

    def flush_literal() -> None:
        if literal:
            parts.append(_Literal("".join(literal)))
            literal.clear()

    while i < len(body):
        ch = body[i]
        if ch in "{}" and body.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
        elif ch == "{":
            flush_literal()
            inner, i = _scan_parameter(body, i + 1)
            parts.append(_parse_parameter(inner))
        elif ch == "}":
            raise _Syntax("A '}' in a literal must be escaped as '}}', and each '}' that "
                          "closes a parameter needs a matching '{'.")
        elif ch == "/":
            flush_literal()
            if not parts:
                raise _Syntax("The separator '/' cannot appear consecutively or at the start; "
                              "it must be separated by a parameter or a literal value.")
            segments.append((body[start:i], tuple(parts)))
            parts = []
            start = i = i + 1
        elif ch == "?":
            raise _Syntax("Literal sections cannot contain the '?' character.")
        else:
            literal.append(ch)
            i += 1
    flush_literal()
    if parts:
        segments.append((body[start:], tuple(parts)))
    elif segments:
        raise _Syntax("The separator '/' cannot appear consecutively; it must be separated "
                      "by a parameter or a literal value.")
    return segments


def _scan_parameter(body: str, i: int) -> tuple[str, int]:
    """Reads up to the parameter's closing '}', undoing '{{' and '}}' escapes."""
    inner: list[str] = []
    while i < len(body):
        ch = body[i]
        if ch in "{}" and body.startswith(ch * 2, i):
            inner.append(ch)
            i += 2
        elif ch == "}":
            return "".join(inner), i + 1
        elif ch == "{":
            raise _Syntax("In a route parameter, '{' and '}' must be escaped with '{{' and '}}'.")
        else:
            inner.append(ch)
            i += 1
    raise _Syntax("There is an incomplete parameter in the route template. Check that each "
                  "'{' character has a matching '}' character.")


def _parse_parameter(inner: str) -> _Parameter:
    text = inner
    catch_all = text.startswith("*")
    text = text[2:] if text.startswith("**") else text.removeprefix("*")
    optional = text.endswith("?")
    text = text.removesuffix("?")
    end = min((text.index(ch) for ch in ":=" if ch in text), default=len(text))
    name, rest = text[:end], text[end:]
    if not name or any(ch in "{}/?*" for ch in name):
        raise _Syntax(
            f"The route parameter name '{name}' is invalid. Route parameter names must be "
            "non-empty and cannot contain these characters: '{', '}', '/'. The '?' character "
            "marks a parameter as optional, and can occur only at the end of the parameter. "
            "The '*' character marks a parameter as catch-all, and can occur only at the start "
            "of the parameter.")
    constraints: list[_Constraint] = []
    default: str | None = None
    i = 0
    while i < len(rest):
        if rest[i] == "=":
            default = rest[i + 1:]
            break
        j = i + 1  # rest[i] is ':'
        while j < len(rest) and rest[j] not in ":=(":
            j += 1
        cname, argument = rest[i + 1:j], None
        if not cname:
            raise _Syntax(f"The parameter '{name}' has an empty constraint name.")
        if j < len(rest) and rest[j] == "(":
            close = _closing_paren(rest, j, cname)
            argument, j = rest[j + 1:close], close + 1
            if j < len(rest) and rest[j] not in ":=":
                raise _Syntax(f"Unexpected text '{rest[j:]}' after the constraint "
                              f"'{cname}(...)' of parameter '{name}'.")
        constraints.append(_make_constraint(cname, argument))
        i = j
    if optional and catch_all:
        raise _Syntax("A catch-all parameter cannot be marked optional.")
    if optional and default is not None:
        raise _Syntax("An optional parameter cannot have default value.")
    return _Parameter(name, tuple(constraints), optional, default, catch_all)


def _closing_paren(text: str, open_index: int, constraint: str) -> int:
    """Finds the ')' closing the argument list, skipping escapes and [...] classes."""
    depth, i, in_class = 0, open_index, False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            # A ']' first in a class ("[]...]" or "[^]...]") is a literal, not its end.
            if text.startswith("^", i):
                i += 1
            if text.startswith("]", i):
                i += 1
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _Syntax(f"The arguments of constraint '{constraint}' have an unbalanced '('.")


def _check_segment(raw: str, parts: tuple[_Part, ...]) -> tuple[_Part, ...]:
    if len(parts) == 1:
        return parts
    for index, part in enumerate(parts):
        if not isinstance(part, _Parameter):
            continue
        if part.catch_all:
            raise _Syntax("A path segment that contains more than one section, such as a "
                          "literal section or a parameter, cannot contain a catch-all "
                          f"parameter (segment '{raw}').")
        if index > 0 and isinstance(parts[index - 1], _Parameter):
            raise _Syntax(f"A path segment cannot contain two consecutive parameters (segment "
                          f"'{raw}'). They must be separated by a '/' or by a literal string.")
        if part.optional:
            before = parts[index - 1]
            if index != len(parts) - 1:
                raise _Syntax(f"An optional parameter must be at the end of the segment. In "
                              f"the segment '{raw}', optional parameter '{part.name}' is "
                              "followed by more text.")
            if not isinstance(before, _Literal) or before.text != ".":
                raise _Syntax(f"In the segment '{raw}', the optional parameter '{part.name}' "
                              "must be preceded by a period (.).")
    return parts


def _check_template(segments: tuple[_Segment, ...]) -> None:
    seen: set[str] = set()
    omittable: _Segment | None = None
    for index, segment in enumerate(segments):
        for part in segment.parts:
            if isinstance(part, _Parameter):
                if part.name.lower() in seen:
                    raise _Syntax(f"The route parameter name '{part.name}' appears more than "
                                  "one time in the route template.")
                seen.add(part.name.lower())
        if segment.kind == _CATCH_ALL and index != len(segments) - 1:
            raise _Syntax("A catch-all parameter can only appear as the last segment of the "
                          "route template.")
        if omittable is not None and not segment.omittable:
            raise _Syntax(f"The segment '{segment.text}' is required but follows the optional "
                          f"segment '{omittable.text}'; only optional parameters, parameters "
                          "with default values or a catch-all parameter may follow it.")
        if segment.omittable and omittable is None:
            omittable = segment


# --- matching -----------------------------------------------------------------------


def _split_path(path: str) -> list[str]:
    # Splitting before decoding keeps an encoded '/' (%2F) inside its segment's value.
    path = path.removeprefix("/").removesuffix("/")
    return [unquote(segment) for segment in path.split("/")] if path else []


def _same_text(left: str, right: str) -> bool:
    return len(left) == len(right) and left.lower() == right.lower()


def _bind(parameter: _Parameter, value: str | None, values: dict[str, str]) -> bool:
    if not value:
        if parameter.default is not None:
            value = parameter.default
        elif parameter.optional or (parameter.catch_all and not parameter.constraints):
            return True  # absent from the route values, as in ASP.NET
        else:
            return False  # like ASP.NET, a constrained catch-all needs a value
    if not parameter.accepts(value):
        return False
    values[parameter.name] = value
    return True


def _match_complex(parts: tuple[_Part, ...], value: str) -> dict[str, str] | None:
    last = parts[-1]
    if isinstance(last, _Parameter) and last.optional:
        found = _match_parts(parts, value)
        if found is not None or value.endswith("."):
            return found
        return _match_parts(parts[:-2], value)  # "{name}.{ext?}" without ".ext"
    return _match_parts(parts, value)


def _match_parts(parts: tuple[_Part, ...], value: str) -> dict[str, str] | None:
    """ASP.NET's complex-segment rule: walk right to left; each literal takes its right-most
    occurrence that still leaves one character for the parameter to its right. There is no
    backtracking, so `a{b}` does not match "aab" (the same as ASP.NET)."""
    found: dict[str, str] = {}
    end = len(value)
    pending: _Parameter | None = None
    for index in range(len(parts) - 1, -1, -1):
        part = parts[index]
        if isinstance(part, _Parameter):
            pending = part
            continue
        limit = end - 1 if pending is not None else end
        start = next((s for s in range(limit - len(part.text), -1, -1)
                      if _same_text(value[s:s + len(part.text)], part.text)), -1)
        if start < 0 or (index == len(parts) - 1 and start + len(part.text) != len(value)):
            return None
        if pending is not None:
            found[pending.name] = value[start + len(part.text):end]
            pending = None
        end = start
    if pending is not None:
        if end == 0:
            return None
        found[pending.name] = value[:end]
    elif end != 0:
        return None
    return found


# --- public values ------------------------------------------------------------------


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route template; constructing one validates it (raises RouteError)."""

    text: str
    _segments: tuple[_Segment, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_segments", _parse_template(self.text))

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        return cls(text)

    def parameter_names(self) -> tuple[str, ...]:
        return tuple(part.name for segment in self._segments for part in segment.parts
                     if isinstance(part, _Parameter))

    def precedence(self) -> tuple[int, ...]:
        """Sort key: smaller is more specific (literal < complex < constrained < plain
        parameter < catch-all, compared segment by segment from the left)."""
        return tuple(segment.kind for segment in self._segments)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (relative to the route prefix), or None."""
        request = _split_path(path)
        values: dict[str, str] = {}
        for index, segment in enumerate(self._segments):
            part = segment.parts[0]
            kind = segment.kind
            if kind == _CATCH_ALL and isinstance(part, _Parameter):
                return values if _bind(part, "/".join(request[index:]), values) else None
            if index >= len(request):
                # Parsing ensures that once a segment may be left out, so may all later ones.
                if not (segment.omittable and isinstance(part, _Parameter)
                        and _bind(part, None, values)):
                    return None
            elif kind == _COMPLEX:
                captured = _match_complex(segment.parts, request[index])
                if captured is None or not all(
                        _bind(p, captured[p.name], values) for p in segment.parts
                        if isinstance(p, _Parameter) and p.name in captured):
                    return None
            elif isinstance(part, _Literal):
                if not _same_text(request[index], part.text):
                    return None
            elif not _bind(part, request[index], values):
                return None
        return values if len(request) <= len(self._segments) else None


@dataclass(frozen=True)
class RouteEntry:
    function_name: str
    template: RouteTemplate
    methods: frozenset[str] | None  # upper-case; None = all methods


@dataclass(frozen=True)
class RouteMatch:
    function_name: str
    route_params: dict[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    """Some route matches the path, but none accepts the method (405)."""

    allowed: frozenset[str]


class RouteTable:
    """The HTTP functions of an app, ordered for matching by specificity."""

    def __init__(self, entries: Iterable[RouteEntry] = ()) -> None:
        self._entries = tuple(entries)
        # sorted() is stable, so equally specific templates keep registration order.
        self._by_precedence = tuple(sorted(self._entries,
                                           key=lambda entry: entry.template.precedence()))

    @classmethod
    def build(cls, routes: Iterable[tuple[str, str, Iterable[str] | None]],
              ) -> tuple[RouteTable, list[RouteError]]:
        """Validates routes like the host does at startup. Rejected functions are left out
        and reported, one error each; the rest are served."""
        entries: list[RouteEntry] = []
        errors: list[RouteError] = []
        for function_name, route, methods in routes:
            try:
                entries.append(_validated_entry(function_name, route, methods, entries))
            except FunctionRouteError as exc:
                errors.append(exc)
        return cls(entries), errors

    def resolve(self, method: str, path: str) -> RouteMatch | MethodNotAllowed | None:
        verb = method.upper()
        path_matched = False
        allowed: set[str] = set()
        for entry in self._by_precedence:
            values = entry.template.match(path)
            if values is None:
                continue
            if entry.methods is None or verb in entry.methods:
                return RouteMatch(entry.function_name, values)
            path_matched = True
            allowed |= entry.methods
        return MethodNotAllowed(frozenset(allowed)) if path_matched else None

    def __iter__(self) -> Iterator[RouteEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _normalised_methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    verbs = frozenset(m.strip().upper() for m in methods or () if m.strip())
    return verbs or None  # an empty list means no restriction, like a missing one


def _validated_entry(function_name: str, route: str, methods: Iterable[str] | None,
                     accepted: list[RouteEntry]) -> RouteEntry:
    key = route.strip("/").lower()
    if key.startswith(_RESERVED_PREFIXES):
        raise RouteConflict(function_name, BUILT_IN_ROUTE_CONFLICT)
    try:
        template = RouteTemplate.parse(route)
    except InvalidRouteTemplate as exc:
        raise FunctionRouteError(
            function_name,
            f"The route template '{route}' of function '{function_name}' is invalid: "
            f"{exc.detail}") from exc
    verbs = _normalised_methods(methods)
    for other in accepted:
        if other.template.text.strip("/").lower() != key:
            continue
        if verbs is None or other.methods is None or verbs & other.methods:
            raise RouteConflict(
                function_name,
                "The route specified conflicts with the route defined by function "
                f"'{other.function_name}'.", other_function=other.function_name)
    return RouteEntry(function_name, template, verbs)
