"""The HTTP conversions as pure functions: the host side (runtime/http/conversion.py) and
the worker side (runtime/worker/child/http_response.py), with the real azure-functions
library. The integration suite (tests/integration/test_compat_http.py) covers them end
to end."""

from __future__ import annotations

from typing import Any

import azure.functions as func
import pytest

from runtime.http.conversion import escape_path, query_params
from runtime.worker.child.http_response import encode_http_response, host_headers
from runtime.worker.protocol import HttpResponseData


def answer(value: Any) -> HttpResponseData:
    return HttpResponseData.from_json(encode_http_response(value))


@pytest.mark.parametrize(("query", "params"), [
    ("a=1&a=2", {"a": "1,2"}),
    ("a=1&A=2", {"a": "1,2"}),
    ("a=&a=x&b=&c", {"a": "x"}),
    ("q=x+y%21", {"q": "x y!"}),
    ("%zz=%&k=%E2%82", {"%zz": "%", "k": "\ufffd"}),
    ("", {}),
])
def test_query_params(query: str, params: dict[str, str]) -> None:
    assert query_params(query) == params


@pytest.mark.parametrize(("decoded", "escaped"), [
    ("/api/a b", "/api/a%20b"),
    ("/api/A%2Fc", "/api/A%2Fc"),
    ("/api/é", "/api/%C3%A9"),
    ("/api/100%", "/api/100%25"),
    ("/api/a:b@c!$&'()*+,;=~", "/api/a:b@c!$&'()*+,;=~"),
])
def test_escape_path(decoded: str, escaped: str) -> None:
    assert escape_path(decoded) == escaped


def test_host_headers_keep_the_first_of_each_name_and_set_content_type() -> None:
    written, dropped = host_headers([("X-A", "1"), ("content-type", "a/b"), ("x-a", "2"),
                                     ("Content-Type", "c/d")])
    assert written == [("Content-Type", "c/d"), ("X-A", "1")]
    assert dropped == ["x-a"]


def test_every_set_cookie_becomes_its_own_line() -> None:
    response = func.HttpResponse("ok")
    response.headers.add("Set-Cookie", "first=1")
    response.headers.add("Set-Cookie", "second=2; Max-Age=60; SameSite=Strict; HttpOnly")
    assert [v for k, v in answer(response).headers if k == "Set-Cookie"] == [
        "first=1; domain=; path=",
        "second=2; max-age=60; domain=; path=; samesite=strict; httponly"]


@pytest.mark.parametrize("cookie", ["foo=bar; Expires=Dummy", "foo=bar; Max-Age=Dummy"])
def test_a_cookie_the_worker_cannot_convert_fails_the_invocation(cookie: str) -> None:
    response = func.HttpResponse("ok")
    response.headers.add("Set-Cookie", cookie)
    with pytest.raises((ValueError, TypeError)):
        encode_http_response(response)


@pytest.mark.parametrize(("text", "body"), [
    ("1.50", b"1.5"), ("1e15", b"1E+15"), ("0.00001", b"1E-05"), ("0.0001", b"0.0001"),
    ("-2.0", b"-2"), ("12", b"12"), ("false", b"False"), ("null", b""), ("", b""),
    ("[]", b"[]"), ("{}", b"{}"),
])
def test_a_json_str_is_written_as_dotnet_prints_it(text: str, body: bytes) -> None:
    assert answer(text).body == body


def test_a_response_object_in_a_str() -> None:
    sent = answer('{"Body": {"a": [1]}, "status": "418", "headers": {"X-N": 5, '
                  '"Content-Type": "application/json"}}')
    assert sent.status == 418
    assert sent.body == b'{"a":[1]}'
    assert ("Content-Type", "application/json; charset=utf-8") in sent.headers
    assert ("X-N", "5") in sent.headers
    assert [code for code, _ in sent.notes] == ["str-response-object"]


@pytest.mark.parametrize("value", [None, b"x", {"a": 1}, 3])
def test_other_return_values_fail(value: object) -> None:
    with pytest.raises(TypeError, match="unable to encode outgoing TypedData"):
        encode_http_response(value)
