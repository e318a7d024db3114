"""Output of the command line: aligned tables and short times for people, JSON for
scripts."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from runtime.durable import history

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns left-aligned under upper-case headers, two spaces apart; the last column
    is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *[list(r) for r in rows]]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def clip(text: str, width: int = 60) -> str:
    """One line of at most `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def shown(value: Any) -> str:
    """A JSON value as a table cell: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def when(value: Any) -> str:
    """A time as `2026-05-01 12:00:00Z` (the input may be text or a datetime)."""
    return history.readable_time(value)


def precise(value: Any) -> str:
    """A history time with milliseconds: `12:00:00.123`, the date when it is not today's."""
    if not isinstance(value, str):
        return when(value)
    try:
        moment = history.parse_timestamp(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def duration(seconds: float | None) -> str:
    """`850 ms`, `12.3 s`, `4 min 5 s`, `2 h 10 min`."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes} min {secs} s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min"


def between(start: Any, end: Any) -> float | None:
    """Seconds from one history time to another (None when either is missing)."""
    try:
        first = history.parse_timestamp(str(start))
        last = history.parse_timestamp(str(end))
    except ValueError:
        return None
    return (last - first).total_seconds()


def parse_moment(text: str, now: datetime) -> datetime:
    """A time given on the command line: ISO 8601 (`2026-05-01`, `2026-05-01T12:00Z`; no
    zone means UTC) or an age (`30m`, `2h`, `7d`: that long before `now`). ValueError
    with the accepted forms otherwise."""
    text = text.strip()
    relative = _RELATIVE.match(text.lower())
    if relative:
        return now - timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2)])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not a time: use ISO 8601 (2026-05-01, "
                         "2026-05-01T12:00:00Z) or an age such as 30m, 2h, 7d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


__all__ = ["between", "clip", "duration", "parse_moment", "precise", "print_json", "shown",
           "table", "when"]
