"""HTTP route templates in ASP.NET Core syntax, parsed and matched (pure).

A template such as `products/{category:alpha}/{id:int?}` is parsed once into segments;
matching a request path yields the route values the worker hands to Python as strings.
Constraints (`int`, `regex(...)`, ...) are in `route_constraints.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import unquote

from runtime.errors import RouteError
from runtime.http.route_constraints import Constraint, make_constraint
from runtime.http.route_constraints import TemplateSyntax as _Syntax

__all__ = ["FunctionRouteError", "InvalidRouteTemplate", "RouteConflict", "RouteTemplate",
           "decode_path"]


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


# --- template syntax ----------------------------------------------------------------


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Parameter:
    name: str
    constraints: tuple[Constraint, ...] = ()
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
    constraints: list[Constraint] = []
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
        constraints.append(make_constraint(cname, argument))
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


_ENCODED_SLASH = re.compile(r"(%2[fF])")


def decode_path(raw: str) -> str:
    """A request path as Kestrel hands it to routing: percent-escapes decoded, except an
    encoded '/' (%2F), which stays as written so it never splits a segment. So route
    values keep '%2F' literally (ASP.NET Core: UrlDecoder.DecodeInPlace leaves %2F)."""
    pieces = _ENCODED_SLASH.split(raw)
    return "".join(piece if index % 2 else unquote(piece, errors="replace")
                   for index, piece in enumerate(pieces))


def _split_path(path: str) -> list[str]:
    path = path.removeprefix("/").removesuffix("/")
    return [decode_path(segment) for segment in path.split("/")] if path else []


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
        """Route values for the raw (still percent-encoded) `path` relative to the route
        prefix, or None. Values are decoded as `decode_path` does."""
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
