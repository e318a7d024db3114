"""The host's route table of HTTP functions (pure).

The table applies the host's startup rules (built-in prefixes, duplicate routes) and
matches requests as the host does: routes are tried in function-name order
(case-insensitive) and the first whose template and method both match wins
(FunctionMetadataManager orders functions with `OrderBy(f => f.Name,
StringComparer.OrdinalIgnoreCase)`; WebScriptHostHttpRoutesManager maps them in that order
into a legacy first-match RouteCollection, with the methods as an `httpMethod` route
constraint). A path whose routes all refuse the method matches nothing (the host answers
404, never 405). Templates themselves are parsed and matched in `route_template.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from runtime.errors import RouteError
from runtime.http.route_template import (
    FunctionRouteError,
    InvalidRouteTemplate,
    RouteConflict,
    RouteTemplate,
)

__all__ = [
    "BUILT_IN_ROUTE_CONFLICT",
    "FunctionRouteError",
    "InvalidRouteTemplate",
    "RouteConflict",
    "RouteEntry",
    "RouteMatch",
    "RouteTable",
    "RouteTemplate",
    "WrongMethod",
    "host_order",
]

BUILT_IN_ROUTE_CONFLICT = "The specified route conflicts with one or more built in routes."
_RESERVED_PREFIXES = ("admin", "runtime")


def host_order(function_name: str) -> str:
    """Sort key of the host's function order (StringComparer.OrdinalIgnoreCase, which
    compares upper-cased characters)."""
    return function_name.upper()


@dataclass(frozen=True)
class RouteEntry:
    function_name: str
    template: RouteTemplate
    methods: frozenset[str] | None  # upper-case; None = all methods; empty = none


@dataclass(frozen=True)
class RouteMatch:
    """The route that serves a request. `shadowed` is a more specific route (by ASP.NET
    template precedence) that also accepts the request but comes later in the host's
    function-name order, so Azure never reaches it for this request."""

    function_name: str
    route_params: dict[str, str]
    shadowed: RouteEntry | None = None


@dataclass(frozen=True)
class WrongMethod:
    """Routes match the path, but none accepts the method: the host answers 404.
    `functions` are those routes' functions in host order; `allowed` their methods."""

    functions: tuple[str, ...]
    allowed: frozenset[str]


class RouteTable:
    """The HTTP functions of an app, in the host's order (by function name)."""

    def __init__(self, entries: Iterable[RouteEntry] = ()) -> None:
        # sorted() is stable: functions whose names differ only in case keep their order.
        self._entries = tuple(sorted(entries, key=lambda e: host_order(e.function_name)))
        self._by_precedence = tuple(sorted(self._entries,
                                           key=lambda entry: entry.template.precedence()))

    @classmethod
    def build(cls, routes: Iterable[tuple[str, str, Iterable[str] | None]],
              ) -> tuple[RouteTable, list[RouteError]]:
        """Validates routes like the host does at startup, in function-name order (so of
        two conflicting routes the later name is rejected, naming the earlier). Rejected
        functions are left out and reported, one error each; the rest are served."""
        entries: list[RouteEntry] = []
        errors: list[RouteError] = []
        for function_name, route, methods in sorted(routes, key=lambda r: host_order(r[0])):
            try:
                entries.append(_validated_entry(function_name, route, methods, entries))
            except FunctionRouteError as exc:
                errors.append(exc)
        return cls(entries), errors

    def resolve(self, method: str, path: str) -> RouteMatch | WrongMethod | None:
        """The route for `method` on the raw `path` (below the route prefix): the first in
        host order whose template and methods match; WrongMethod when templates match
        but no route takes the method; None when no template matches."""
        verb = method.upper()
        refused: list[RouteEntry] = []
        for entry in self._entries:
            values = entry.template.match(path)
            if values is None:
                continue
            if _accepts(entry, verb):
                return RouteMatch(entry.function_name, values,
                                  self._more_specific(entry, verb, path))
            refused.append(entry)
        if not refused:
            return None
        allowed = frozenset().union(*(entry.methods or () for entry in refused))
        return WrongMethod(tuple(entry.function_name for entry in refused), allowed)

    def _more_specific(self, winner: RouteEntry, verb: str, path: str) -> RouteEntry | None:
        rank = winner.template.precedence()
        for entry in self._by_precedence:
            if entry.template.precedence() >= rank:
                return None
            if _accepts(entry, verb) and entry.template.match(path) is not None:
                return entry
        return None

    def never_matched(self) -> list[RouteEntry]:
        """Routes declared with an empty method list: the host never routes to them."""
        return [entry for entry in self._entries if entry.methods == frozenset()]

    def __iter__(self) -> Iterator[RouteEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _accepts(entry: RouteEntry, verb: str) -> bool:
    return entry.methods is None or verb in entry.methods


def _normalised_methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    """None (no `methods`) accepts every method; a list, even an empty one, is the
    HttpMethodRouteConstraint's allowed set (WebJobsCoreScriptBindingProvider keeps an
    empty JSON array as an empty array, which no request method matches)."""
    if methods is None:
        return None
    return frozenset(m.strip().upper() for m in methods if m.strip())


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
        # ScriptHost.HttpRoutesConflict: a null or empty method list counts as "all".
        if not verbs or not other.methods or verbs & other.methods:
            raise RouteConflict(
                function_name,
                "The route specified conflicts with the route defined by function "
                f"'{other.function_name}'.", other_function=other.function_name)
    return RouteEntry(function_name, template, verbs)
