"""runtime/http/builtin.py: declared routes of the built-in endpoints, and the path below
their prefix."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from aiohttp import web

from runtime.http.builtin import Route, Routes, split_path

PREFIX = "/runtime/webhooks/durabletask"


async def nothing(request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
    return web.Response(status=204)


async def other(request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
    return web.Response(status=205)


def route(method: str, template: str) -> Route:
    return Route(method, template, nothing)


@pytest.mark.parametrize(("raw_path", "prefix", "expected"), [
    (f"{PREFIX}/instances/abc", PREFIX, ["instances", "abc"]),
    (f"{PREFIX}/instances/", PREFIX, ["instances"]),
    (f"{PREFIX}/instances", PREFIX + "/", ["instances"]),
    (PREFIX, PREFIX, []),
    (PREFIX + "/", PREFIX, []),
    # the prefix compares without regard to case; the rest keeps its case and encoding
    ("/Runtime/WEBHOOKS/durableTask/Instances/A%2FB", PREFIX, ["Instances", "A%2FB"]),
    (f"{PREFIX}/a//b", PREFIX, ["a", "", "b"]),
    # not below the prefix
    (f"{PREFIX}x/instances", PREFIX, None),
    ("/runtime/webhooks", PREFIX, None),
    ("/api/instances", PREFIX, None),
    ("/", PREFIX, None),
    ("/admin/host/status", "/admin", ["host", "status"]),
])
def test_split_path(raw_path: str, prefix: str, expected: list[str] | None) -> None:
    assert split_path(raw_path, prefix) == expected


@pytest.mark.parametrize(("template", "method", "parts", "expected"), [
    ("instances", "GET", ["instances"], {}),
    ("instances", "get", ["INSTANCES"], {}),  # methods and literals ignore case
    ("instances", "GET", ["Instances"], {}),
    ("instances", "POST", ["instances"], None),
    ("instances", "GET", [], None),
    ("instances", "GET", ["instances", "x"], None),
    ("instances/{instanceId}", "GET", ["instances", "Abc"], {"instanceId": "Abc"}),
    ("instances/{instanceId}", "GET", ["instances", "a%20b"], {"instanceId": "a b"}),
    ("instances/{instanceId}", "GET", ["instances", "a%2Fb"], {"instanceId": "a/b"}),
    ("instances/{instanceId}", "GET", ["instances", "%C3%A9"], {"instanceId": "é"}),
    ("instances/{instanceId}", "GET", ["instances", ""], None),  # an empty value
    ("instances/{instanceId}", "GET", ["instances"], None),
    ("instances/{instanceId}/raiseEvent/{eventName}", "POST",
     ["instances", "i1", "RAISEEVENT", "Go"], {"instanceId": "i1", "eventName": "Go"}),
    ("instances/{instanceId}/raiseEvent/{eventName}", "POST",
     ["instances", "i1", "raise", "Go"], None),
    ("/host/status/", "GET", ["host", "status"], {}),
    ("", "GET", [], {}),
    ("", "GET", ["x"], None),
])
def test_route_match(template: str, method: str, parts: list[str],
                     expected: dict[str, str] | None) -> None:
    methods = "POST" if "raiseEvent" in template else "GET"
    assert route(methods, template).match(method, parts) == expected


def test_route_segments() -> None:
    assert route("GET", "/a/{b}/c/").segments == ["a", "{b}", "c"]
    assert route("GET", "").segments == []


def test_routes_find_the_first_match_in_order() -> None:
    routes = Routes([Route("GET", "instances/{id}", nothing),
                     Route("GET", "instances/{other}", other),
                     Route("DELETE", "instances/{id}", other)])
    found = routes.find("GET", ["instances", "x"])
    assert found is not None
    handler, values = found
    assert handler is nothing and values == {"id": "x"}
    found = routes.find("DELETE", ["instances", "y"])
    assert found is not None and found[0] is other
    assert routes.find("PUT", ["instances", "x"]) is None
    assert routes.find("GET", ["elsewhere"]) is None
