"""The HTTP rows of docs/compatibility.md: each test id is a row's id, and each test asserts
what a client sees from the host serving tests/apps/http_compat (one host per module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.host import APPS, HostProcess, RawResponse, raw_request, start_host

APP = APPS / "http_compat"
ON_AZURE = "On Azure: "


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    process = start_host(APP)
    yield process
    process.stop()


def call(host: HostProcess, method: str, path: str, *,
         headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
         chunked: bool = False) -> RawResponse:
    return raw_request(host.url(path), method, headers=headers, body=body, chunked=chunked)


def echo(host: HostProcess, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = call(host, method, "/api/echo" + path, **kwargs)
    assert response.status == 200, response.body
    return dict(response.json())


def notes(host: HostProcess, fragment: str) -> list[str]:
    return [line for line in host.output if ON_AZURE in line and fragment in line]


# -- A. the request as the function sees it ---------------------------------------------

def test_req_method(host: HostProcess) -> None:
    assert echo(host, "PURGE", "/x")["method"] == "PURGE"
    assert echo(host, "PATCH", "/x")["method"] == "PATCH"


def test_req_url(host: HostProcess) -> None:
    seen = echo(host, "GET", "/a%20b/%41%2Fc?x=1+2&y=%zz&z")
    assert seen["url"] == f"{host.base}/api/echo/a%20b/A%2Fc?x=1+2&y=%zz&z"


def test_req_header_names(host: HostProcess) -> None:
    seen = echo(host, "GET", "/x", headers=[("X-Custom-Header", "Value")])
    assert seen["headers"]["x-custom-header"] == "Value"
    assert all(name == name.lower() for name in seen["headers"])
    assert seen["headers"]["host"] == f"127.0.0.1:{host.port}"


def test_req_header_repeated(host: HostProcess) -> None:
    seen = echo(host, "GET", "/x", headers=[("X-Multi", "a"), ("X-Multi", ""),
                                            ("X-Multi", "b, c")])
    assert seen["headers"]["x-multi"] == "a,b, c"


def test_req_header_empty(host: HostProcess) -> None:
    assert echo(host, "GET", "/x", headers=[("X-Empty", "")])["headers"]["x-empty"] == ""


def test_req_query(host: HostProcess) -> None:
    seen = echo(host, "GET", "/x?a=1&A=2&b=&c=x+y&c=&d=%C3%A9&e")
    assert seen["params"] == {"a": "1,2", "c": "x y", "d": "é"}


def test_req_route_values(host: HostProcess) -> None:
    assert call(host, "GET", "/api/typed/7").json() == {"id": "7"}
    assert call(host, "GET", "/api/typed/7/Ann%20Lee").json() == {"id": "7", "name": "Ann Lee"}
    assert call(host, "GET", "/api/typed/7/a%2Fb").json() == {"id": "7", "name": "a%2Fb"}
    assert echo(host, "GET", "/one/two/three")["route_params"] == {
        "first": "one", "rest": "two/three"}


def test_req_body_bytes(host: HostProcess) -> None:
    seen = echo(host, "POST", "/x", body=b'{"n": 1}', headers=[("Content-Type", "text/plain")])
    assert (seen["body"], seen["body_type"], seen["json"]) == ('{"n": 1}', "bytes", {"n": 1})


def test_req_get_json_error(host: HostProcess) -> None:
    seen = echo(host, "POST", "/x", body=b"{not json",
                headers=[("Content-Type", "application/json")])
    assert seen["json_error"] == "HTTP request does not contain valid JSON data"
    assert echo(host, "GET", "/x")["json_error"] == \
        "HTTP request does not contain valid JSON data"


def test_req_no_body(host: HostProcess) -> None:
    assert echo(host, "GET", "/x")["body"] == ""


def test_req_chunked_body(host: HostProcess) -> None:
    seen = echo(host, "POST", "/x", body=b"sent in chunks", chunked=True)
    assert seen["body"] == ""
    host.wait_for_log("Functions.echo received a request body without Content-Length")


def test_req_form(host: HostProcess) -> None:
    seen = echo(host, "POST", "/x", body=b"a=1&b=two+words",
                headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert seen["form"] == {"a": "1", "b": "two words"}
    assert seen["body"] == "a=1&b=two+words"


# -- B. the answer as the client gets it -------------------------------------------------

@pytest.mark.parametrize(("case", "status", "content_type", "body"), [
    ("plain", 200, "text/plain; charset=utf-8", b"hi"),
    ("json-mimetype", 200, "application/json", b'{"a":1}'),
    ("html-mimetype", 200, "text/html; charset=utf-8", b"<p>"),
    ("header-content-type", 200, "application/xml", b"<x/>"),
    ("binary", 200, "application/octet-stream", b"\x00\xff"),
    ("status", 201, "text/plain; charset=utf-8", b"made"),
    ("no-content", 204, "text/plain; charset=utf-8", b""),
])
def test_resp_http_response(host: HostProcess, case: str, status: int, content_type: str,
                            body: bytes) -> None:
    response = call(host, "GET", f"/api/answer/{case}")
    assert (response.status, response.body) == (status, body)
    assert response.all("content-type") == [content_type]


def test_resp_headers(host: HostProcess) -> None:
    assert call(host, "GET", "/api/answer/status").header("location") == "/api/x"


def test_resp_same_header_twice(host: HostProcess) -> None:
    assert call(host, "GET", "/api/answer/same-name").all("x-twice") == ["2"]


def test_resp_header_case_variants(host: HostProcess) -> None:
    assert call(host, "GET", "/api/answer/case-variants").all("x-case") == ["first"]
    host.wait_for_log("Functions.answer: the response set the header(s) 'x-case'")


@pytest.mark.parametrize(("case", "lines"), [
    ("two", ["first=1; domain=; path=", "second=2; domain=; path="]),
    ("attributes", ["foo3=42; expires=Thu, 12 Jan 2017 13:55:08 GMT; max-age=10000000; "
                    "domain=example.com; path=/; secure; httponly"]),
    ("defaults", ["foo=bar; domain=; path="]),
    ("escaped", ["v=a%20b%2Cc; domain=; path=; samesite=lax"]),
    ("two-in-one", ["a=1; domain=; path=", "b=2; domain=; path="]),
    ("empty", []),
    ("unparseable", []),
])
def test_resp_cookies(host: HostProcess, case: str, lines: list[str]) -> None:
    response = call(host, "GET", f"/api/cookies/{case}")
    assert (response.status, response.body) == (200, b"ok")
    assert response.all("set-cookie") == lines


def test_resp_cookie_bad_expires(host: HostProcess) -> None:
    response = call(host, "GET", "/api/cookies/bad-expires")
    assert (response.status, response.body) == (500, b"")
    host.wait_for_log("Can not parse value Dummy of expires in the cookie")


@pytest.mark.parametrize(("case", "status", "headers", "body"), [
    ("str", 200, {}, b"plain text"),
    ("str-json-object", 200, {},
     b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": {\n    "c": null\n  }\n}'),
    ("str-json-true", 200, {}, b"True"),
    ("str-json-string", 200, {}, b"quoted"),
    ("str-response-object", 202, {"x-from": "str"}, b"from a str"),
])
def test_resp_str(host: HostProcess, case: str, status: int, headers: dict[str, str],
                  body: bytes) -> None:
    response = call(host, "GET", f"/api/answer/{case}")
    assert (response.status, response.body) == (status, body)
    assert response.header("content-type") == "text/plain; charset=utf-8"
    for name, value in headers.items():
        assert response.header(name) == value


def test_resp_str_json_note(host: HostProcess) -> None:
    call(host, "GET", "/api/answer/str-json-true")
    host.wait_for_log("Functions.answer: the function returned a str that is JSON")


@pytest.mark.parametrize("case", ["none", "bytes", "dict", "raise"])
def test_resp_failure(host: HostProcess, case: str) -> None:
    response = call(host, "GET", f"/api/answer/{case}")
    assert (response.status, response.body) == (500, b"")
    assert response.header("content-type") is None


def test_resp_none_message(host: HostProcess) -> None:
    call(host, "GET", "/api/answer/none")
    host.wait_for_log('unable to encode outgoing TypedData: unsupported type '
                      '"<class \'azure.functions.http.HttpResponseConverter\'>" for Python '
                      'type "NoneType"')


def test_resp_head(host: HostProcess) -> None:
    response = call(host, "HEAD", "/api/head-ok")
    assert (response.status, response.body) == (200, b"")
    assert response.header("x-method") == "HEAD"


# -- C. routing ---------------------------------------------------------------------------

def test_route_wrong_method(host: HostProcess) -> None:
    for _ in range(3):
        response = call(host, "DELETE", "/api/catalog")
        assert (response.status, response.body) == (404, b"")
        assert response.header("allow") is None
    assert call(host, "POST", "/api/catalog").body == b"catalog POST"
    lines = notes(host, "DELETE /api/catalog answers 404")
    assert len(lines) == 1
    assert "'catalog' (route 'catalog') accept(s) only GET, POST" in lines[0]
    assert "Azure answers 404 (not 405)" in lines[0]


def test_route_head_is_not_get(host: HostProcess) -> None:
    assert call(host, "HEAD", "/api/typed/1").status == 404
    assert call(host, "OPTIONS", "/api/typed/1").status == 404


def test_route_no_methods(host: HostProcess) -> None:
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"):
        assert call(host, method, "/api/echo/x").status == 200, method


def test_route_empty_methods(host: HostProcess) -> None:
    assert call(host, "GET", "/api/never").status == 404
    assert call(host, "POST", "/api/never").status == 404
    host.wait_for_log("the function 'never' declares methods=[]")


def test_route_function_name_order(host: HostProcess) -> None:
    response = call(host, "GET", "/api/products/list")
    assert (response.status, response.body) == (200, b"Details list")
    line = notes(host, "GET /api/products/list is served by 'Details'")
    assert len(line) == 1 and "'List' (route 'products/list') is more specific" in line[0]


def test_route_conflict_order(host: HostProcess) -> None:
    assert call(host, "GET", "/api/clash").body == b"alpha"
    host.wait_for_log("The function 'zeta_clash' is skipped: The route specified conflicts "
                      "with the route defined by function 'alpha_clash'.")


def test_route_case_and_slash(host: HostProcess) -> None:
    assert call(host, "GET", "/API/Products/7/").body == b"Details 7"


def test_route_constraint(host: HostProcess) -> None:
    assert call(host, "GET", "/api/typed/seven").status == 404


def test_route_default(host: HostProcess) -> None:
    assert call(host, "GET", "/api/DefaultRoute").body == b"default route"
    assert call(host, "GET", "/api/defaultroute").body == b"default route"


def test_route_unknown(host: HostProcess) -> None:
    for path in ("/api/nothing", "/nothing", "/api"):
        response = call(host, "GET", path)
        assert (response.status, response.body) == (404, b"")
        assert response.header("content-type") is None


def test_route_homepage(host: HostProcess) -> None:
    for method in ("GET", "POST"):
        response = call(host, method, "/")
        assert response.status == 200
        assert response.header("content-type") == "text/html"
        assert b"<title>Your Azure Function App is up and running.</title>" in response.body


def test_route_homepage_disabled() -> None:
    process = start_host(APP, env={"AzureWebJobsDisableHomepage": "true"})
    try:
        response = raw_request(process.url("/"))
        assert (response.status, response.body) == (204, b"")
    finally:
        process.stop()


def test_echo_payload_is_json(host: HostProcess) -> None:
    """The app's echo answers JSON the tests above read (a guard for the helpers)."""
    assert json.loads(call(host, "GET", "/api/echo/x").body)["route_params"] == {"first": "x"}
