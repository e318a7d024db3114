"""An HTTP request as the Functions host hands it to a Python function, and the
function's answer written back (the host side of the conversion; the worker side is
`worker/child/invocation.py` and `worker/child/http_response.py`).

Sources: HOST `src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs`
`ToRpcHttp` (non-nullable branch: the Python worker declares neither
`UseNullableValueDictionaryForHttp` nor `IgnoreEmptyValuedRpcHttpHeaders`), with Kestrel's
request parsing under it (paths decoded except %2F, QueryCollection case-insensitive).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from aiohttp import web

from runtime.http.route_template import decode_path
from runtime.worker.protocol import HttpRequestData, HttpResponseData

# RFC 3986 pchar plus '/': what PathString.ToUriComponent leaves as is.
_PATH_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "-._~!$&'()*+,;=:@/")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def query_params(query_string: str) -> dict[str, str]:
    """`req.params`: keys and values URL-decoded ('+' is a space); keys merged without
    regard to case under their first spelling (QueryCollection is OrdinalIgnoreCase);
    repeated values joined by "," skipping empty ones (StringValues.ToString); a key
    whose values are all empty is left out (`if (!string.IsNullOrEmpty(value))`).
    Malformed pairs are read as best they can be, never an error."""
    values: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True, errors="replace"):
        name = spelling.setdefault(key.upper(), key)
        values.setdefault(name, []).append(value)
    joined = {name: ",".join(v for v in items if v) for name, items in values.items()}
    return {name: value for name, value in joined.items() if value}


def request_headers(request: web.BaseRequest) -> dict[str, str]:
    """Header names lower-cased (`ToLowerInvariant`); a header sent on several lines is
    one entry, its non-empty values joined by "," with no space; an empty value is kept
    as ""."""
    merged: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        merged.setdefault(key.lower(), []).append(value)
    return {key: ",".join(v for v in items if v) for key, items in merged.items()}


def escape_path(decoded: str) -> str:
    """PathString.ToUriComponent: characters outside RFC 3986's pchar set and '/' are
    percent-encoded (UTF-8, upper-case hex); a '%' that starts an escape is kept."""
    out: list[str] = []
    index = 0
    while index < len(decoded):
        char = decoded[index]
        if char in _PATH_SAFE:
            out.append(char)
        elif char == "%" and _ESCAPE.match(decoded, index):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        index += 1
    return "".join(out)


def request_url(request: web.BaseRequest) -> str:
    """`req.url`: `{scheme}://{Host header}{path}{query}` — the path decoded by the
    server and escaped again, the query string exactly as sent (with its '?')."""
    raw = request.raw_path
    path, mark, query = raw.partition("?")
    scheme = "https" if request.secure else "http"
    host = request.headers.get("Host", "")
    return f"{scheme}://{host}{escape_path(decode_path(path))}{mark}{query}"


def has_body(request: web.BaseRequest) -> bool:
    """The host passes a body only `if (request.Body != null && request.ContentLength >
    0)`: a chunked request (no Content-Length) reaches the function with an empty body
    (azure-functions-host#7930)."""
    return bool(request.content_length and request.content_length > 0)


def request_data(request: web.Request, body: bytes,
                 route_params: dict[str, str]) -> HttpRequestData:
    """The request for the worker; `body` is what was read from the client."""
    return HttpRequestData(
        method=request.method, url=request_url(request), headers=request_headers(request),
        params=query_params(request.rel_url.raw_query_string),
        route_params=route_params, body=body if has_body(request) else b"")


def web_response(answer: HttpResponseData) -> web.Response:
    """The function's answer as written: status, headers in order (Set-Cookie repeated),
    body. The server adds Content-Length, Date and Server."""
    response = web.Response(status=answer.status, body=answer.body)
    for name, value in answer.headers:
        response.headers.add(name, value)
    return response


__all__ = ["escape_path", "has_body", "query_params", "request_data", "request_headers",
           "request_url", "web_response"]
