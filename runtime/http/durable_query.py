"""How the Durable extension's HTTP API reads a query string (pure).

Sources (EXT = azure-functions-durable-extension, src/WebJobs.Extensions.DurableTask):
`HttpRequestMessageExtensions.GetQueryNameValuePairs` splits on '&', trims and
`WebUtility.UrlDecode`s each name and value into a case-insensitive NameValueCollection
(a repeated name reads as its values joined by ","); `HttpApiHandler`'s
`TryGet*QueryParameterValue` helpers parse with .NET's `TryParse`: a value that does not
parse is ignored silently and the default applies — never an error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

# OrchestrationRuntimeStatus (and DurableTask.Core.OrchestrationStatus: the same numbers,
# without Unknown).
RUNTIME_STATUSES = {"Unknown": -1, "Running": 0, "Completed": 1, "ContinuedAsNew": 2,
                    "Failed": 3, "Canceled": 4, "Terminated": 5, "Pending": 6,
                    "Suspended": 7}
_BY_NUMBER = {number: name for name, number in RUNTIME_STATUSES.items()}

_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_DOUBLE = re.compile(r"\s*[+-]?(?=[0-9,]*\.?[0-9])[0-9,]*(\.[0-9]*)?([eE][+-]?[0-9]+)?\s*")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
                  r"\s*(Z|[+-]\d{2}:?\d{2})?")


class QueryValues:
    """GetQueryNameValuePairs over a raw query string (without its '?')."""

    def __init__(self, query: str) -> None:
        self._values: dict[str, list[str]] = {}
        for part in query.split("&") if query else []:
            name, equals, value = part.partition("=")
            if not equals:  # no '=': the whole part is a value with an empty name
                name, value = "", part
            key = unquote_plus(name.strip(), errors="replace")
            self._values.setdefault(key.upper(), []).append(
                unquote_plus(value.strip(), errors="replace"))

    def get(self, name: str) -> str | None:
        """The NameValueCollection indexer: the values joined by ",", or None."""
        values = self._values.get(name.upper())
        return None if values is None else ",".join(values)

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name.upper(), []))


def parse_bool(value: str | None) -> bool | None:
    """bool.TryParse: 'true' or 'false' in any case, surrounding spaces allowed."""
    text = (value or "").strip().lower()
    return {"true": True, "false": False}.get(text)


def parse_int(value: str | None) -> int | None:
    """int.TryParse: an optionally signed decimal within Int32."""
    if value is None or not _INT.fullmatch(value):
        return None
    number = int(value)
    return number if -2**31 <= number < 2**31 else None


_SPECIAL = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf,
            "-infinity": -math.inf}


def parse_double(value: str | None) -> float | None:
    """double.TryParse (NumberStyles.Float | AllowThousands, invariant culture), which
    also reads NaN and (+/-)Infinity in any case."""
    if value is None:
        return None
    special = _SPECIAL.get(value.strip().lower())
    if special is not None:
        return special
    if not _DOUBLE.fullmatch(value):
        return None
    return float(value.replace(",", ""))


def parse_datetime(value: str | None) -> datetime | None:
    """DateTime.TryParse for the ISO 8601 forms clients send (`2024-01-02`,
    `2024-01-02T03:04:05.123Z`, with an offset or without a zone, read as UTC: the
    hosts run in UTC). None for anything else."""
    match = _ISO.fullmatch((value or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                          int(second or 0), min(999999, round(float(fraction or 0) * 1e6)),
                          tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        parsed -= timedelta(minutes=sign * (int(digits[:2]) * 60 + int(digits[2:])))
    return parsed


def parse_statuses(values: Iterable[str]) -> list[str]:
    """TryGetIEnumerableQueryParameterValue<OrchestrationRuntimeStatus>: every value split
    on ',', each piece read with Enum.TryParse — names are case-sensitive ('running' is
    dropped), spaces around them are allowed, numbers are accepted (an undefined number
    is kept and matches no instance). Pieces that do not parse are dropped; an empty
    result means no status filter."""
    found: list[str] = []
    for piece in (p.strip() for value in values for p in value.split(",")):
        if piece in RUNTIME_STATUSES:
            found.append(piece)
        elif _INT.fullmatch(piece):
            found.append(_BY_NUMBER.get(int(piece), piece))
    return found




def read_json(text: str, *, whole: bool) -> Any:
    """Parse JSON as the extension does: `JsonConvert.DeserializeObject` (`whole`: text
    after the value is an error; empty or blank text is null) or `JToken.Load` (the first
    value only; empty text is an error). ValueError carries Newtonsoft's wording."""
    stripped = text.strip()
    if not stripped:
        if whole:
            return None
        raise ValueError("Error reading JToken from JsonReader. Path '', line 0, "
                         "position 0.")
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    try:
        value, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise ValueError(f"Unexpected end when reading JSON. Path '', line "
                             f"{exc.lineno}, position {exc.colno - 1}.") from None
        raise ValueError(f"Unexpected character encountered while parsing value: "
                         f"{text[exc.pos]}. Path '', line {exc.lineno}, position "
                         f"{exc.colno - 1}.") from None
    if whole and text[end:].strip():
        extra = text[end:].lstrip()[0]
        raise ValueError("Additional text encountered after finished reading JSON "
                         f"content: {extra}. Path '', line 1, position {end}.")
    return value


__all__ = ["RUNTIME_STATUSES", "QueryValues", "parse_bool", "parse_datetime", "parse_double",
           "parse_int", "parse_statuses", "read_json"]
