"""Query parameters of the built-in APIs, read as the extension reads them: names without
regard to case, booleans true only for "true", dates in any ISO 8601 form."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from runtime.clock import utc
from runtime.durable.history import parse_timestamp
from runtime.errors import InvalidArgument


def param(request: web.Request, name: str) -> str | None:
    """The first value of the query parameter `name` (any case), or None."""
    for key, value in request.query.items():
        if key.lower() == name.lower():
            return value
    return None


def flag(request: web.Request, name: str, default: bool) -> bool:
    """A boolean parameter (bool.TryParse: "true" in any case is true)."""
    value = param(request, name)
    return default if value is None else value.strip().lower() == "true"


def parse_time(value: str | None, name: str) -> datetime | None:
    """A query's date and time (UTC when no zone is given); InvalidArgument if bad."""
    if not value:
        return None
    try:
        return parse_timestamp(value)  # any fraction length, as .NET writes them
    except ValueError:
        pass
    try:  # other ISO 8601 forms, such as a date alone
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"'{name}' is not a valid date and time: '{value}'.") from None
    return utc(parsed)


__all__ = ["flag", "param", "parse_time"]
