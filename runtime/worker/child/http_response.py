"""An HTTP function's return value as the client receives it on Azure, built in the worker.

Three layers of the real stack are copied here, in order:
1. the library (azure-functions `http.HttpResponseConverter.encode`): a Content-Type is
   always added (`text/plain; charset=utf-8`, or the mimetype alone when it is not
   `text/*`); headers are flattened into a dict, so of two headers with the same name
   only the last survives; every `Set-Cookie` header is parsed with `SimpleCookie` and
   moved to a cookie list;
2. the Python worker (`bindings/datumdef.py` `parse_to_rpc_http_cookie_list`): one
   RpcHttpCookie per cookie, the expiry parsed with dateutil (an unparseable date fails
   the invocation: 500), Max-Age as a number;
3. the host (`RawScriptResult.ExecuteResultAsync`, ASP.NET Core `ResponseCookies.Append`,
   `HttpBinding.CreateResult`): `content-type` sets the response's Content-Type (the last
   one wins), any other header whose name is already present (case-insensitively) is
   dropped, each cookie becomes its own `Set-Cookie` line in ASP.NET's format; a `str`
   return value is parsed as JSON by the host and may be re-formatted or read as a
   response object.

The result is `HttpResponseData`: status, header pairs in order (Set-Cookie repeated),
body bytes, and notes for the console where Azure's answer would surprise the user.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import format_datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import quote

from azure.functions import _abc as azf_abc
from azure.functions.http import HttpResponseConverter

from runtime.worker.protocol import HttpResponseData

TEXT_PLAIN = "text/plain; charset=utf-8"

# Notes for the console (code, text); the host prints each code once per function.
NOTE_JSON_TEXT = "str-json"
NOTE_JSON_VALUE = "str-json-value"
NOTE_RESPONSE_OBJECT = "str-response-object"
NOTE_DUPLICATE_HEADER = "duplicate-header"


def encode_http_response(result: Any) -> dict[str, Any]:
    """The HttpResponseData payload for an HTTP function's return value. TypeError for a
    value the worker cannot send (None, bytes, dict...: the invocation fails, 500);
    ValueError/TypeError from a cookie the worker cannot convert."""
    if isinstance(result, azf_abc.HttpResponse):
        return _from_http_response(result).to_json()
    if isinstance(result, str):
        return _from_string(result).to_json()
    # meta.get_datum: the converter raises NotImplementedError, the worker a TypeError.
    raise TypeError(f'unable to encode outgoing TypedData: unsupported type '
                    f'"{HttpResponseConverter}" for Python type "{type(result).__name__}"')


# --- func.HttpResponse ------------------------------------------------------------------


def _from_http_response(result: azf_abc.HttpResponse) -> HttpResponseData:
    datum = HttpResponseConverter.encode(result, expected_type=None)
    value = datum.value
    status = int(value["status_code"].value)
    headers = [(str(name), str(item.value)) for name, item in value["headers"].items()]
    cookies: list[SimpleCookie] | None = value.get("cookies")
    body = value["body"].value or b""
    pairs, dropped = host_headers(headers)
    pairs += [("Set-Cookie", line) for line in cookie_lines(cookies)]
    notes: list[tuple[str, str]] = []
    if dropped:
        notes.append((NOTE_DUPLICATE_HEADER, (
            "the response set the header(s) " + ", ".join(f"'{n}'" for n in dropped)
            + " more than once under different capitalisations; the host keeps the first "
            "and drops the rest (\"Duplicate HTTP header from function invocation "
            "removed\").")))
    return HttpResponseData(status, tuple(pairs), bytes(body), notes=tuple(notes))


def host_headers(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """RawScriptResult's header loop: (headers as written, names dropped). Content-Type
    is set (so a later spelling replaces an earlier one); another name already present,
    compared without case, is dropped."""
    content_type: str | None = None
    written: list[tuple[str, str]] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value
        elif lowered in seen:
            dropped.append(name)
        else:
            seen.add(lowered)
            written.append((name, value))
    if content_type is not None:
        written.insert(0, ("Content-Type", content_type))
    return written, dropped


# --- cookies --------------------------------------------------------------------------


def cookie_lines(cookies: list[SimpleCookie] | None) -> list[str]:
    """One Set-Cookie line per cookie, as ASP.NET Core writes the worker's RpcHttpCookie:
    `name=<value, Uri.EscapeDataString'd>; expires=<RFC 1123>; max-age=<s>; domain=<d>;
    path=<p>; secure; samesite=<mode>; httponly`. The worker always sends domain and path
    (empty when the cookie had none), so `domain=; path=` appear then."""
    lines: list[str] = []
    for cookie in cookies or []:
        for name, morsel in cookie.items():
            lines.append(_cookie_line(name, morsel))
    return lines


def _cookie_line(name: str, morsel: Morsel[str]) -> str:
    parts = [f"{name}={quote(morsel.value, safe='-_.~')}"]
    expires = _expires(morsel)
    if expires is not None:
        parts.append(f"expires={format_datetime(expires, usegmt=True)}")
    max_age = _max_age(morsel["max-age"])
    if max_age is not None:
        parts.append(f"max-age={int(max_age)}")
    parts.append(f"domain={_text(morsel['domain'], 'cookie.domain')}")
    parts.append(f"path={_text(morsel['path'], 'cookie.path')}")
    if morsel["secure"]:
        parts.append("secure")
    same_site = str(morsel["samesite"] or "").lower()
    if same_site in ("lax", "strict", "none"):
        parts.append(f"samesite={same_site}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)


def _text(value: Any, name: str) -> str:
    """nullable_converters.to_nullable_string."""
    if isinstance(value, str):
        return value
    raise TypeError(f"A 'str' type was expected instead of a '{type(value)}' type. "
                    f"Cannot parse value {value} of '{name}'.")


def _expires(morsel: Morsel[str]) -> datetime | None:
    """datumdef.parse_cookie_attr_expires, then to_nullable_timestamp (whole seconds).
    A date without a zone is read as UTC, as on Azure's hosts."""
    expires = morsel["expires"]
    if not expires:
        return None
    from dateutil import parser  # the worker's parser (python-dateutil)

    try:
        parsed = parser.parse(expires)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"Can not parse value {expires} of expires in the cookie due to "
                         "invalid format.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(int(parsed.timestamp()), tz=timezone.utc)


def _max_age(value: Any) -> float | None:
    """nullable_converters.to_nullable_double: '' is no value; text must be a number."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise TypeError(
                f"Cannot parse value {value} of 'cookie.maxAge' to float.") from None
    return None


# --- str: the host's JSON sniffing (HttpBinding.CreateResult) --------------------------


def _from_string(text: str) -> HttpResponseData:
    try:
        content: Any = json.loads(text) if text.strip() else None
    except ValueError:
        return HttpResponseData(200, (("Content-Type", TEXT_PLAIN),), text.encode("utf-8"))
    if isinstance(content, dict):
        body_key = next((k for k in content if k.lower() == "body"), None)
        if body_key is not None:
            return _response_object(content, body_key)
        note = (NOTE_JSON_TEXT, "the function returned a str holding a JSON object; the "
                "host parses it and sends it re-indented as text/plain. Return "
                "func.HttpResponse(text, mimetype='application/json') to send it as is.")
        return HttpResponseData(200, (("Content-Type", TEXT_PLAIN),),
                                _indented(content).encode("utf-8"), notes=(note,))
    note = (NOTE_JSON_VALUE, "the function returned a str that is JSON; the host parses it "
            "and sends it re-formatted as .NET prints the value (e.g. 'true' → 'True', "
            "'\"x\"' → 'x', '[1]' indented). Return func.HttpResponse(text) to send it as "
            "is.")
    sent = _indented(content) if isinstance(content, list) else _dotnet_text(content)
    return HttpResponseData(200, (("Content-Type", TEXT_PLAIN),), sent.encode("utf-8"),
                            notes=(note,) if sent != text else ())


def _response_object(content: dict[str, Any], body_key: str) -> HttpResponseData:
    """ParseResponseObject: `body` is the content; `headers`, `statusCode` (or `status`)
    apply; cookies given in JSON are not read (their type never matches)."""
    headers: list[tuple[str, str]] = []
    header_key = next((k for k in content if k.lower() == "headers"), None)
    if header_key is not None and isinstance(content[header_key], dict):
        for name, value in content[header_key].items():
            if value is None:
                raise TypeError(f"The header '{name}' of the response object is null.")
            headers.append((str(name), _dotnet_text(value)))
    pairs, _ = host_headers(headers)
    content_type = next((v for n, v in pairs if n == "Content-Type"), None)
    if content_type is None:
        pairs.insert(0, ("Content-Type", TEXT_PLAIN))
    elif "charset=" not in content_type.lower():
        # TextOutputFormatter adds the charset it writes with.
        pairs[0] = ("Content-Type", f"{content_type}; charset=utf-8")
    body = content[body_key]
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False) \
        if isinstance(body, dict) else _dotnet_text(body)
    note = (NOTE_RESPONSE_OBJECT, "the function returned a str holding a JSON object with "
            "a 'body' key; the host reads it as a response object (body, headers, "
            "statusCode/status) rather than sending the text.")
    return HttpResponseData(_status(content), tuple(pairs), text.encode("utf-8"),
                            notes=(note,))


def _status(content: dict[str, Any]) -> int:
    """TryParseStatusCode: `statusCode` first, else `status`; a number or numeric text;
    anything else leaves 200."""
    for wanted in ("statuscode", "status"):
        key = next((k for k in content if k.lower() == wanted), None)
        if key is None:
            continue
        value = content[key]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        return 200
    return 200


def _indented(value: Any) -> str:
    """JToken.ToString(): Newtonsoft's indented JSON (two spaces, LF on Linux hosts)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _dotnet_text(value: Any) -> str:
    """What the host writes for a parsed JSON value: its .NET ToString()."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _dotnet_double(value)
    if isinstance(value, list):  # ExpandoObjectConverter reads arrays as List<object>
        return "System.Collections.Generic.List`1[System.Object]"
    return "System.Dynamic.ExpandoObject"


def _dotnet_double(value: float) -> str:
    """double.ToString() on .NET Core 3.0+: the shortest round-trip digits, in
    scientific notation (`1E+15`, `1E-05`) when the exponent is below -4 or 15 or more."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)) or "0"
    scientific = len(text) - 1 + exponent
    prefix = "-" if sign else ""
    if value == 0:
        return prefix + "0"
    if scientific >= 15 or scientific < -4:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}E{'+' if scientific >= 0 else '-'}{abs(scientific):02d}"
    return prefix + format(Decimal(repr(abs(value))).normalize(), "f")


__all__ = ["cookie_lines", "encode_http_response", "host_headers"]
