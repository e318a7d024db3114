from __future__ import annotations

from urllib.parse import unquote

import pytest

from runtime.errors import RouteError
from runtime.http.routes import (
    BUILT_IN_ROUTE_CONFLICT,
    FunctionRouteError,
    RouteConflict,
    RouteEntry,
    RouteMatch,
    RouteTable,
    RouteTemplate,
    WrongMethod,
)


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate.parse(template).match(path)


# --- literals, paths and plain parameters ---------------------------------------------

@pytest.mark.parametrize(("template", "path", "expected"), [
    # literals compare case-insensitively; slashes at either end are ignored
    ("products/list", "products/list", {}),
    ("products/list", "PRODUCTS/List", {}),
    ("products/list", "/products/list/", {}),
    ("/products/list/", "products/list", {}),
    ("products/list", "products", None),
    ("products/list", "products/list/extra", None),
    ("products/list", "products/lists", None),
    # the empty template is the root only
    ("", "", {}),
    ("", "/", {}),
    ("", "x", None),
    # a parameter takes exactly one non-empty segment
    ("users/{id}", "users/42", {"id": "42"}),
    ("users/{id}", "users/42/", {"id": "42"}),
    ("users/{id}", "users", None),
    ("users/{id}", "users/42/posts", None),
    ("users/{id}/posts/{postId}", "users/7/posts/abc", {"id": "7", "postId": "abc"}),
    ("{a}/{b}", "x/y", {"a": "x", "b": "y"}),
    # segments are percent-decoded as Kestrel decodes a path: all but %2F, which stays
    # encoded in the value (it never separates segments)
    ("users/{id}", "users/a%20b", {"id": "a b"}),
    ("users/{id}", "users/a%2Fb", {"id": "a%2Fb"}),
    ("users/{id}", "users/a%2fb", {"id": "a%2fb"}),
    ("users/{id}", "users/%C3%A9t%C3%A9", {"id": "été"}),
    ("users/{id}", "users/a+b", {"id": "a+b"}),
    ("caf%C3%A9", "café", None),
    ("café", "caf%C3%A9", {}),
    # literal braces are escaped by doubling them
    ("a{{b}}c", "a{b}c", {}),
])
def test_literals_and_parameters(template: str, path: str,
                                 expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


# --- optional, default and catch-all --------------------------------------------------

@pytest.mark.parametrize(("template", "path", "expected"), [
    ("products/{category:alpha}/{id:int?}", "products/shoes/5",
     {"category": "shoes", "id": "5"}),
    ("products/{category:alpha}/{id:int?}", "products/shoes", {"category": "shoes"}),
    ("products/{category:alpha}/{id:int?}", "products/shoes/", {"category": "shoes"}),
    ("products/{category:alpha}/{id:int?}", "products/shoes/x", None),
    ("products/{category:alpha}/{id:int?}", "products", None),
    ("items/{id?}", "items", {}),
    ("{id?}", "", {}),
    ("{id?}", "7", {"id": "7"}),
    # defaults fill in missing segments, and an explicit value wins
    ("pages/{page=1}", "pages", {"page": "1"}),
    ("pages/{page=1}", "pages/3", {"page": "3"}),
    ("pages/{page:int=1}", "pages", {"page": "1"}),
    ("pages/{page:int=1}", "pages/x", None),
    ("pages/{page:int=x}", "pages", None),  # a default that fails its constraint
    ("{controller=Home}/{action=Index}/{id?}", "", {"controller": "Home", "action": "Index"}),
    ("{controller=Home}/{action=Index}/{id?}", "shop",
     {"controller": "shop", "action": "Index"}),
    ("{controller=Home}/{action=Index}/{id?}", "shop/buy/3",
     {"controller": "shop", "action": "buy", "id": "3"}),
    ("{controller=Home}/{action=Index}/{id?}", "shop/buy/3/4", None),
    ("{x=a:b}", "", {"x": "a:b"}),
    # catch-all: the rest of the path including slashes, possibly empty (then absent)
    ("files/{*path}", "files/a/b/c.txt", {"path": "a/b/c.txt"}),
    ("files/{*path}", "files/a/b/", {"path": "a/b"}),
    ("files/{*path}", "files/one", {"path": "one"}),
    ("files/{*path}", "files", {}),
    ("files/{*path}", "files/", {}),
    ("files/{*path}", "other/a", None),
    ("files/{**path}", "files/a/b", {"path": "a/b"}),
    ("files/{*path}", "files/a%2Fb/c%20d", {"path": "a%2Fb/c d"}),
    ("{*all}", "", {}),
    ("{*all}", "x/y", {"all": "x/y"}),
    ("files/{*path=index.html}", "files", {"path": "index.html"}),
    ("files/{*path:minlength(3)}", "files/a/b", {"path": "a/b"}),
    ("files/{*path:minlength(4)}", "files/a/b", None),
    ("files/{*path:alpha}", "files", None),  # a constrained catch-all needs a value
    ("a/{b?}/{*rest}", "a", {}),
    ("a/{b?}/{*rest}", "a/1/2/3", {"b": "1", "rest": "2/3"}),
])
def test_optional_default_and_catch_all(template: str, path: str,
                                        expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


# --- constraints ------------------------------------------------------------------------

INT_MAX, INT_MIN = 2**31 - 1, -(2**31)
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(("constraint", "value", "matches"), [
    ("int", "123", True),
    ("int", "0", True),
    ("int", "-5", True),
    ("int", "+5", True),
    ("int", "007", True),
    ("int", str(INT_MAX), True),
    ("int", str(INT_MIN), True),
    ("int", str(INT_MAX + 1), False),
    ("int", str(INT_MIN - 1), False),
    ("int", "1.0", False),
    ("int", "1e3", False),
    ("int", "0x10", False),
    ("int", "abc", False),
    ("int", "1_000", False),
    ("int", "%D9%A1%D9%A2", False),  # Arabic-Indic digits: not .NET invariant digits
    ("long", str(INT_MAX + 1), True),
    ("long", str(LONG_MAX), True),
    ("long", str(LONG_MIN), True),
    ("long", str(LONG_MAX + 1), False),
    ("long", str(LONG_MIN - 1), False),
    ("long", "12a", False),
    ("bool", "true", True),
    ("bool", "false", True),
    ("bool", "True", True),
    ("bool", "FALSE", True),
    ("bool", "yes", False),
    ("bool", "1", False),
    ("bool", "truee", False),
    ("guid", GUID, True),
    ("guid", GUID.upper(), True),
    ("guid", GUID.replace("-", ""), True),
    ("guid", "{" + GUID + "}", True),
    ("guid", "(" + GUID + ")", True),
    ("guid", "{0x0f8fad5b,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95,0x0e}}", True),
    ("guid", GUID[:-1], False),
    ("guid", GUID + "0", False),
    ("guid", GUID.replace("0", "g"), False),
    ("guid", "{" + GUID, False),
    ("guid", "(" + GUID + "}", False),
    ("guid", "not-a-guid", False),
    ("alpha", "abc", True),
    ("alpha", "ABCdef", True),
    ("alpha", "abc1", False),
    ("alpha", "a-b", False),
    ("alpha", "%C3%A9", False),       # é is a letter, but not an ASCII one
    ("alpha", "%E2%84%AA", False),    # KELVIN SIGN folds to 'k' case-insensitively
    ("datetime", "2024-01-15", True),
    ("datetime", "2024-02-29", True),
    ("datetime", "2024%2F01%2F15", False),  # Kestrel keeps %2F encoded: no date
    ("datetime", "1%2F15%2F2024", False),
    ("datetime", "2024-01-15T10:30", True),
    ("datetime", "2024-01-15T10:30:00", True),
    ("datetime", "2024-01-15 10:30:00", True),
    ("datetime", "2024-01-15T10:30:00.1234567Z", True),
    ("datetime", "2024-01-15T10:30:00+02:00", True),
    ("datetime", "2024-01-15T10:30:00-0500", True),
    ("datetime", "2024-01-15 10:30 PM", True),
    ("datetime", "10:30", True),
    ("datetime", "2023-02-29", False),
    ("datetime", "2024-13-01", False),
    ("datetime", "2024-01-32", False),
    ("datetime", "0000-01-01", False),
    ("datetime", "2024-01-15T25:00", False),
    ("datetime", "2024-01-15T10:60", False),
    ("datetime", "2024-01-15T", False),
    ("datetime", "2024-01%2F15", False),
    ("datetime", "yesterday", False),
    ("datetime", "20240115", False),
    ("decimal", "1.5", True),
    ("decimal", "-1.5", True),
    ("decimal", "42", True),
    ("decimal", ".5", True),
    ("decimal", "1,000.25", True),
    ("decimal", "79228162514264337593543950335", True),
    ("decimal", "79228162514264337593543950336", False),
    ("decimal", "1e5", False),
    ("decimal", "1.2.3", False),
    ("decimal", "abc", False),
    ("decimal", "NaN", False),
    ("double", "1.5", True),
    ("double", "-1.5E-3", True),
    ("double", "1e10", True),
    ("double", ".5", True),
    ("double", "1e400", True),  # .NET Core parses overflow as infinity
    ("double", "Infinity", True),
    ("double", "-infinity", True),
    ("double", "NaN", True),
    ("double", "1e", False),
    ("double", "1.2.3", False),
    ("double", "abc", False),
    ("float", "3.25", True),
    ("float", "-2e5", True),
    ("float", "x1", False),
    ("min(1)", "1", True),
    ("min(1)", "100", True),
    ("min(1)", "0", False),
    ("min(1)", "-1", False),
    ("min(1)", "abc", False),
    ("min(-5)", "-5", True),
    ("max(10)", "10", True),
    ("max(10)", "-3", True),
    ("max(10)", "11", False),
    ("max(10)", "1.5", False),
    ("range(1,5)", "1", True),
    ("range(1,5)", "5", True),
    ("range(1,5)", "0", False),
    ("range(1,5)", "6", False),
    ("range( 1 , 5 )", "3", True),
    ("range(-5,-1)", "-3", True),
    ("minlength(3)", "abc", True),
    ("minlength(3)", "ab", False),
    ("maxlength(3)", "abc", True),
    ("maxlength(3)", "abcd", False),
    ("length(3)", "abc", True),
    ("length(3)", "ab", False),
    ("length(3)", "abcd", False),
    ("length(2,4)", "ab", True),
    ("length(2,4)", "abcd", True),
    ("length(2,4)", "a", False),
    ("length(2,4)", "abcde", False),
    ("length(2)", "%F0%9F%98%80", True),  # one emoji is two UTF-16 code units in .NET
    ("length(1)", "%C3%A9", True),
    # regex: case-insensitive, unanchored unless the pattern anchors itself
    (r"regex(^\d{{3}}$)", "123", True),
    (r"regex(^\d{{3}}$)", "1234", False),
    (r"regex(\d)", "a1b", True),
    (r"regex(\d)", "abc", False),
    ("regex(^abc$)", "ABC", True),
    ("regex(abc)", "xxABCxx", True),
    ("regex(^abc$)", "xabc", False),
    ("regex(^[a-z]{{2,3}}$)", "abc", True),
    ("regex(^[a-z]{{2,3}}$)", "abcd", False),
    ("regex(^(foo|bar)$)", "Bar", True),
    ("regex(^(foo|bar)$)", "baz", False),
    ("regex(^(?:x(y))+$)", "xyxy", True),
    ("regex(^a:b$)", "a:b", True),
    ("regex(^a=b$)", "a=b", True),
    ("regex(^[()]+$)", "()(", True),
    (r"regex(^\(x\)$)", "(x)", True),
    ("regex(^[]a]+$)", "a]a", True),
    (r"regex(^(?<year>\d{{4}})-\k<year>$)", "2024-2024", True),
    (r"regex(^(?<year>\d{{4}})-\k<year>$)", "2024-2025", False),
    # chains: every constraint must hold
    ("int:min(1)", "1", True),
    ("int:min(1)", "0", False),
    ("int:min(1)", "abc", False),
    ("int:range(1,10)", "10", True),
    ("int:range(1,10)", "11", False),
    ("min(1):int", str(INT_MAX + 1), False),
    ("alpha:length(2)", "ab", True),
    ("alpha:length(2)", "a1", False),
    ("alpha:length(2)", "abc", False),
    ("regex(^a):maxlength(3)", "abc", True),
    ("regex(^a):maxlength(3)", "abcd", False),
    # constraint names are case-insensitive, as in ASP.NET
    ("INT", "5", True),
    ("Int", "x", False),
    ("MinLength(2)", "ab", True),
])
def test_constraints(constraint: str, value: str, matches: bool) -> None:
    expected = {"v": unquote(value)} if matches else None
    assert match(f"x/{{v:{constraint}}}", f"x/{value}") == expected


# --- complex segments -------------------------------------------------------------------

@pytest.mark.parametrize(("template", "path", "expected"), [
    ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
    ("files/{name}.{ext}", "files/archive.tar.gz", {"name": "archive.tar", "ext": "gz"}),
    ("files/{name}.{ext}", "files/README", None),
    ("files/{name}.{ext}", "files/.gitignore", None),
    ("files/{name}.{ext}", "files/name.", None),
    ("files/{name}.{ext?}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
    ("files/{name}.{ext?}", "files/report", {"name": "report"}),
    ("files/{name}.{ext?}", "files/report.", None),
    ("v{version:int}/status", "v2/status", {"version": "2"}),
    ("v{version:int}/status", "V2/status", {"version": "2"}),
    ("v{version:int}/status", "vx/status", None),
    ("v{version:int}/status", "v/status", None),
    ("{id}-summary", "42-summary", {"id": "42"}),
    ("{id}-summary", "42-SUMMARY", {"id": "42"}),
    ("{id}-summary", "42-summaryx", None),
    ("{id}-summary", "-summary", None),
    ("pre{a}mid{b}post", "preXmidYpost", {"a": "X", "b": "Y"}),
    ("pre{a}mid{b}post", "preXmidYpostZ", None),
    ("pre{a}mid{b}post", "prmidYpost", None),
    ("{from}-{to}", "1-2-3", {"from": "1-2", "to": "3"}),
    # ASP.NET matches right to left without backtracking (its documented example)
    ("a{b}c{d}", "abcd", {"b": "b", "d": "d"}),
    ("a{b}c{d}", "aabcd", None),
    ("{name:alpha}.{ext:length(3)}", "photo.jpg", {"name": "photo", "ext": "jpg"}),
    ("{name:alpha}.{ext:length(3)}", "photo.jpeg", None),
    ("{name:alpha}.{ext:length(3)}", "ph0to.jpg", None),
])
def test_complex_segments(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


# --- template validation ----------------------------------------------------------------

@pytest.mark.parametrize(("template", "message"), [
    ("a//b", "cannot appear consecutively"),
    ("a/b//", "cannot appear consecutively"),
    ("{id", "incomplete parameter"),
    ("users/{id", "incomplete parameter"),
    ("a}", "must be escaped as '}}'"),
    ("{a{b}", "must be escaped with '{{' and '}}'"),
    ("{}", "route parameter name '' is invalid"),
    ("{a?b}", "route parameter name 'a?b' is invalid"),
    ("{a*}", "route parameter name 'a*' is invalid"),
    ("a?b", "cannot contain the '?' character"),
    ("{a}/{A}", "'A' appears more than one time"),
    ("{a}.{a}", "'a' appears more than one time"),
    ("{a}{b}", "two consecutive parameters"),
    ("{*rest}/more", "catch-all parameter can only appear as the last segment"),
    ("x{*rest}", "cannot contain a catch-all parameter"),
    ("{*rest?}", "catch-all parameter cannot be marked optional"),
    ("{id=1?}", "optional parameter cannot have default value"),
    ("{id?}/details", "'details' is required but follows the optional segment '{id?}'"),
    ("{id=1}/{name}", "'{name}' is required but follows the optional segment '{id=1}'"),
    ("{a?}/{b}.{c}", "is required but follows"),
    ("{name}.{ext?}.bak", "optional parameter must be at the end of the segment"),
    ("{name}-{ext?}", "must be preceded by a period"),
    ("{id:foo}", "constraint reference 'foo' could not be resolved"),
    ("{id:int:nope(3)}", "constraint reference 'nope' could not be resolved"),
    ("{id:}", "empty constraint name"),
    ("{id:int(5)}", "'int' does not take arguments"),
    ("{id:min}", "'min' needs an argument"),
    ("{id:regex}", "'regex' needs an argument"),
    ("{id:min(1,2)}", "does not take 2 argument(s)"),
    ("{id:range(1)}", "does not take 1 argument(s)"),
    ("{id:length(1,2,3)}", "does not take 3 argument(s)"),
    ("{id:min(one)}", "argument 'one' of constraint 'min(one)' is not an integer"),
    ("{id:max(1.5)}", "is not an integer"),
    ("{id:range(5,1)}", "minimum greater than its maximum"),
    ("{id:length(4,2)}", "minimum greater than its maximum"),
    ("{id:minlength(-1)}", "must not be negative"),
    ("{id:regex(()}", "unbalanced '('"),
    ("{id:regex(a}", "unbalanced '('"),
    ("{id:regex([a)}", "unbalanced '('"),
    ("{id:regex(a)b}", "Unexpected text 'b'"),
    ("{id:regex(a[)}", "unbalanced '('"),
    ("{id:regex(*a)}", "regular expression '*a' is invalid"),
])
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(RouteError) as caught:
        RouteTemplate.parse(template)
    assert message in str(caught.value)
    assert f"'{template}'" in str(caught.value)


@pytest.mark.parametrize("template", [
    "", "/", "api", "~/x", "{a}/{b?}", "{a=1}/{b=2}/{*c}", "{id:regex(^a{{1,3}}$):minlength(1)}",
    "{name}.{ext?}", "{x:range(-10,-1)}", "a/{b}/c-{d}.e",
])
def test_good_templates_parse(template: str) -> None:
    assert RouteTemplate.parse(template).text == template


def test_parameter_names_are_in_template_order() -> None:
    template = RouteTemplate.parse("a/{first:int}/x{second}.{third?}/{*rest}")
    assert template.parameter_names() == ("first", "second", "third", "rest")
    assert RouteTemplate.parse("static/page").parameter_names() == ()


def test_templates_are_values() -> None:
    assert RouteTemplate.parse("users/{id}") == RouteTemplate("users/{id}")
    assert hash(RouteTemplate("users/{id}")) == hash(RouteTemplate.parse("users/{id}"))
    assert RouteTemplate("a") != RouteTemplate("b")


# --- route table: resolution ------------------------------------------------------------

def table(*routes: tuple[str, str, list[str] | None]) -> RouteTable:
    built, errors = RouteTable.build(routes)
    assert errors == []
    return built


@pytest.mark.parametrize(("routes", "path", "winner"), [
    # the host tries routes in function-name order (case-insensitive), first match wins,
    # however specific a later template is (azure-functions-host#9876)
    ([("by_id", "users/{id}"), ("me", "users/me")], "users/me", "by_id"),
    ([("me", "users/me"), ("by_id", "users/{id}")], "users/me", "by_id"),
    ([("A_me", "users/me"), ("by_id", "users/{id}")], "users/ME", "A_me"),
    ([("by_id", "users/{id}"), ("me", "users/me")], "users/7", "by_id"),
    ([("by_name", "items/{name}"), ("by_id", "items/{id:int}")], "items/5", "by_id"),
    ([("by_name", "items/{name}"), ("by_id", "items/{id:int}")], "items/five", "by_name"),
    ([("Details", "products/{id}"), ("List", "products/list")], "products/list", "Details"),
    ([("fallback", "{*path}"), ("home", "home")], "home", "fallback"),
    ([("a_home", "home"), ("fallback", "{*path}")], "home", "a_home"),
    ([("a_home", "home"), ("fallback", "{*path}")], "elsewhere/x", "fallback"),
    # names that differ only in case keep their registration order
    ([("first", "a/{x}"), ("FIRST", "a/{y}")], "a/1", "first"),
    ([("second", "a/{y}"), ("first", "a/{x}")], "a/1", "first"),
])
def test_host_order(routes: list[tuple[str, str]], path: str, winner: str) -> None:
    routes_table = table(*((name, route, None) for name, route in routes))
    found = routes_table.resolve("GET", path)
    assert isinstance(found, RouteMatch)
    assert found.function_name == winner


def test_a_more_specific_route_reached_later_is_reported() -> None:
    routes = table(("Details", "products/{id}", None), ("List", "products/list", None))
    found = routes.resolve("GET", "products/list")
    assert isinstance(found, RouteMatch)
    assert found.function_name == "Details"
    assert found.shadowed is not None and found.shadowed.function_name == "List"
    other = routes.resolve("GET", "products/7")
    assert isinstance(other, RouteMatch) and other.shadowed is None


def test_resolve_returns_route_params() -> None:
    routes = table(("get_order", "orders/{id:int}/{part?}", ["get"]))
    assert routes.resolve("GET", "/orders/12/lines") == RouteMatch(
        "get_order", {"id": "12", "part": "lines"})
    assert routes.resolve("get", "orders/12") == RouteMatch("get_order", {"id": "12"})


def test_unknown_path_is_none() -> None:
    routes = table(("a", "orders/{id:int}", ["GET"]))
    assert routes.resolve("GET", "orders/abc") is None
    assert routes.resolve("GET", "customers") is None
    assert RouteTable().resolve("GET", "") is None


def test_a_known_path_with_another_method_is_a_wrong_method() -> None:
    routes = table(("read", "orders/{id}", ["GET", "HEAD"]),
                   ("write", "orders/{key}", ["put"]),
                   ("other", "misc", ["POST"]))
    assert routes.resolve("DELETE", "orders/1") == WrongMethod(
        ("read", "write"), frozenset({"GET", "HEAD", "PUT"}))
    assert routes.resolve("put", "orders/1") == RouteMatch("write", {"key": "1"})
    assert routes.resolve("DELETE", "nowhere") is None


def test_method_filter_falls_through_to_the_next_route() -> None:
    routes = table(("me", "users/me", ["GET"]), ("update", "users/{id}", ["POST"]))
    assert routes.resolve("POST", "users/me") == RouteMatch("update", {"id": "me"})
    assert routes.resolve("GET", "users/me") == RouteMatch("me", {})
    assert routes.resolve("GET", "users/5") == WrongMethod(("update",), frozenset({"POST"}))


def test_get_does_not_imply_head() -> None:
    routes = table(("page", "page", ["GET"]))
    assert routes.resolve("HEAD", "page") == WrongMethod(("page",), frozenset({"GET"}))


def test_no_methods_means_every_method() -> None:
    routes = table(("anything", "x", None))
    assert [entry.methods for entry in routes] == [None]
    for verb in ("GET", "POST", "PATCH", "OPTIONS", "HEAD", "PURGE"):
        assert routes.resolve(verb, "x") == RouteMatch("anything", {})


@pytest.mark.parametrize("methods", [[], ["  "]])
def test_an_empty_method_list_matches_no_method(methods: list[str]) -> None:
    routes = table(("nothing", "x", methods))
    assert [entry.methods for entry in routes] == [frozenset()]
    assert routes.never_matched() == list(routes)
    assert routes.resolve("GET", "x") == WrongMethod(("nothing",), frozenset())


def test_table_iterates_entries_in_host_order() -> None:
    routes = table(("b", "{*all}", ["post", " get "]), ("a", "a", None))
    assert len(routes) == 2
    assert list(routes) == [
        RouteEntry("a", RouteTemplate("a"), None),
        RouteEntry("b", RouteTemplate("{*all}"), frozenset({"GET", "POST"})),
    ]


def test_table_from_entries() -> None:
    entry = RouteEntry("f", RouteTemplate.parse("f/{x}"), frozenset({"GET"}))
    routes = RouteTable([entry])
    assert list(routes) == [entry]
    assert routes.resolve("GET", "f/1") == RouteMatch("f", {"x": "1"})


# --- route table: startup validation ----------------------------------------------------

@pytest.mark.parametrize("route", [
    "admin", "admin/functions", "/Admin/x", "ADMIN", "runtime", "runtime/webhooks/durabletask",
    "RunTime/x", "administrator", "runtimes/{id}",
])
def test_built_in_prefixes_are_rejected(route: str) -> None:
    routes, errors = RouteTable.build([("ok", "fine", None), ("bad", route, ["GET"])])
    assert [entry.function_name for entry in routes] == ["ok"]
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, RouteConflict)
    assert str(error) == BUILT_IN_ROUTE_CONFLICT
    assert error.function_name == "bad"


@pytest.mark.parametrize(("first", "second"), [
    (("orders", None), ("orders", None)),
    (("orders", ["GET"]), ("Orders", ["get", "POST"])),
    (("orders", None), ("/orders/", ["DELETE"])),
    (("orders/{id}", ["POST"]), ("ORDERS/{id}", None)),
    (("orders/{id:int}", ["PUT", "GET"]), ("orders/{id:int}", ["put"])),
])
def test_same_route_with_overlapping_methods_conflicts(
        first: tuple[str, list[str] | None], second: tuple[str, list[str] | None]) -> None:
    routes, errors = RouteTable.build([("one", *first), ("two", *second)])
    assert [entry.function_name for entry in routes] == ["one"]
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, RouteConflict)
    assert str(error) == "The route specified conflicts with the route defined by function 'one'."
    assert error.function_name == "two"
    assert error.other_function == "one"


def test_same_route_with_disjoint_methods_is_fine() -> None:
    routes, errors = RouteTable.build([
        ("read", "orders/{id}", ["GET"]),
        ("write", "Orders/{id}", ["POST", "PUT"]),
    ])
    assert errors == []
    assert routes.resolve("GET", "orders/1") == RouteMatch("read", {"id": "1"})
    assert routes.resolve("PUT", "orders/1") == RouteMatch("write", {"id": "1"})
    assert routes.resolve("PATCH", "orders/1") == WrongMethod(
        ("read", "write"), frozenset({"GET", "POST", "PUT"}))


def test_different_parameter_names_are_different_routes() -> None:
    # The host compares route text, not what the templates match.
    _, errors = RouteTable.build([("a", "x/{id}", None), ("b", "x/{key}", None)])
    assert errors == []


def test_rejected_functions_do_not_block_later_ones() -> None:
    # Validated in function-name order: of two clashing routes the later name is
    # rejected and the message names the earlier one (ScriptHost.ValidateFunction).
    routes, errors = RouteTable.build([
        ("broken", "orders/{id", None),
        ("orders", "orders", None),
        ("dup", "orders", ["GET"]),
        ("admin_page", "admin/x", None),
        ("admin_again", "admin/x", None),
        ("other", "other", None),
    ])
    assert [entry.function_name for entry in routes] == ["dup", "other"]
    assert all(isinstance(e, FunctionRouteError) for e in errors)
    assert [(type(e), e.function_name) for e in errors if isinstance(e, FunctionRouteError)] == [
        (RouteConflict, "admin_again"), (RouteConflict, "admin_page"),
        (FunctionRouteError, "broken"), (RouteConflict, "orders"),
    ]
    assert str(errors[3]) == (
        "The route specified conflicts with the route defined by function 'dup'.")


def test_an_empty_method_list_conflicts_like_all_methods() -> None:
    _, errors = RouteTable.build([("a", "x", []), ("b", "x", ["GET"])])
    assert [str(e) for e in errors] == [
        "The route specified conflicts with the route defined by function 'a'."]


def test_a_bad_template_names_the_function_and_the_problem() -> None:
    _, errors = RouteTable.build([("get_item", "items/{id:integer}", ["GET"])])
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, FunctionRouteError)
    assert isinstance(error, RouteError)
    assert error.function_name == "get_item"
    assert "get_item" in str(error)
    assert "items/{id:integer}" in str(error)
    assert "constraint reference 'integer' could not be resolved" in str(error)
