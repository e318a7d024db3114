"""Host <-> worker channel: length-prefixed JSON messages over a local socket.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
Binary payloads (HTTP bodies) travel base64-encoded inside the JSON. The channel is a
socketpair created by the host; the worker's stdout and stderr are separate pipes, so
nothing user code prints can corrupt a frame.

Messages, worker -> host:
  {"type": "debug", "port": int, "wait": bool}      debugpy listens there (--debug), first
  {"type": "hello", "pid": int, "functions": [FunctionInfo...], "python": str,
   "sdk": {package: version}}                                            indexed cleanly
  {"type": "hello", "pid": int, "error": str, "traceback": str,
   "missing_module": str | null}                                         could not index
  {"type": "result", "id": int, "ok": true, "value": <any>}
  {"type": "result", "id": int, "ok": false, "error": {"type","message","traceback"}}
Messages, host -> worker:
  {"type": "invoke", "id": int, "function": str, "invocation_id": str, "inputs": {...}}
  {"type": "reindex", "id": int}        import the app afresh; the result's value is
                                        {"functions": [...]} (the test harness)
  {"type": "shutdown"}

On stderr, each line of a log record of user code is tagged (`LOG_TAG`, below) with
its level and function; plain output is not.

`inputs` are keyed by binding name. An HTTP trigger's input is `HttpRequestData`, and
an HTTP function's result value is `HttpResponseData` (below); durable triggers carry
JSON text, and a durableClient input its binding JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 512 * 1024 * 1024  # a sanity bound: larger lengths mean a corrupted stream

# Environment variable carrying the channel's file descriptor number into the worker.
CHANNEL_FD_ENV = "FUNCLOCAL_CHANNEL_FD"
# The least log level (Python's number) the host shows for any category.
LOG_LEVEL_ENV = "FUNCLOCAL_LOG_LEVEL"
# A log line on the worker's stderr: TAG level TAG function TAG text (the ASCII record
# separator, which user output does not contain).
LOG_TAG = "\x1e"


def tag_log_line(level: int, function: str, text: str) -> str:
    return f"{LOG_TAG}{level}{LOG_TAG}{function}{LOG_TAG}{text}"


def parse_log_line(line: str) -> tuple[int, str, str] | None:
    """(level, function name, text) of a tagged stderr line; None for plain output."""
    if not line.startswith(LOG_TAG):
        return None
    parts = line.split(LOG_TAG, 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


def encode_frame(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """Read one message; None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ConnectionError("channel closed in the middle of a frame header") from exc
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ConnectionError(f"frame of {length} bytes exceeds the channel limit")
    payload = await reader.readexactly(length)
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ConnectionError("frame does not hold a JSON object")
    return message


# --- typed payloads of an HTTP invocation ---------------------------------------------
# Both processes build and read these through the classes below, so the shape of the
# payload is written down once.


@dataclass(frozen=True)
class HttpRequestData:
    """An HTTP trigger's request as the host's ToRpcHttp hands it to the worker: the URL
    as `scheme://Host header + escaped path + raw query`, lower-case header names
    (repeated headers joined by "," without empty members), query values decoded and
    joined by "," (empty ones dropped), route values as strings, and the body (empty
    unless the request had a Content-Length above 0)."""

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    route_params: dict[str, str]
    body: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": self.headers,
                "params": self.params, "route_params": self.route_params,
                "body_b64": base64.b64encode(self.body).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HttpRequestData:
        return cls(method=str(data["method"]), url=str(data["url"]),
                   headers=dict(data.get("headers") or {}),
                   params=dict(data.get("params") or {}),
                   route_params=dict(data.get("route_params") or {}),
                   body=base64.b64decode(data.get("body_b64") or ""))


@dataclass(frozen=True)
class HttpResponseData:
    """What the client receives for an HTTP function's answer: status, headers in the
    order written (a name may repeat: one Set-Cookie per cookie), the body, and `notes`
    — (code, text) pairs the host prints once per function where Azure's answer would
    surprise the user (a str re-formatted as JSON, a duplicate header dropped)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    kind: str = "http"
    notes: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status,
                "headers": [list(pair) for pair in self.headers],
                "body_b64": base64.b64encode(self.body).decode("ascii"),
                "notes": [list(note) for note in self.notes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HttpResponseData:
        """Raises ValueError/TypeError/KeyError for a payload of another shape."""
        raw = data.get("headers") or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = tuple((str(k), str(v)) for k, v in pairs)
        notes = tuple((str(code), str(text)) for code, text in data.get("notes") or [])
        return cls(status=int(data.get("status", 200)), headers=headers,
                   body=base64.b64decode(data.get("body_b64") or ""), notes=notes)
