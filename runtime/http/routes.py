"""The host's route table of HTTP functions (pure).

The table applies the host's startup rules (built-in prefixes, duplicate routes) and picks
the most specific template for a request, so `users/me` wins over `users/{id}`. Templates
themselves are parsed and matched in `route_template.py`.
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
    "MethodNotAllowed",
    "RouteConflict",
    "RouteEntry",
    "RouteMatch",
    "RouteTable",
    "RouteTemplate",
]

BUILT_IN_ROUTE_CONFLICT = "The specified route conflicts with one or more built in routes."
_RESERVED_PREFIXES = ("admin", "runtime")


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
