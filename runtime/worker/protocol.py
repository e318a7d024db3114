"""Host <-> worker channel: length-prefixed JSON messages over a local socket.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
Binary payloads (HTTP bodies) travel base64-encoded inside the JSON. The channel is a
socketpair created by the host; the worker's stdout and stderr are separate pipes, so
nothing user code prints can corrupt a frame.

Messages, worker -> host:
  {"type": "hello", "pid": int, "functions": [FunctionInfo...]}          indexed cleanly
  {"type": "hello", "pid": int, "error": str, "traceback": str}          could not index
  {"type": "result", "id": int, "ok": true, "value": <any>}
  {"type": "result", "id": int, "ok": false, "error": {"type","message","traceback"}}
Messages, host -> worker:
  {"type": "invoke", "id": int, "function": str, "invocation_id": str, "inputs": {...}}
  {"type": "shutdown"}
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 512 * 1024 * 1024  # a sanity bound: larger lengths mean a corrupted stream

# Environment variable carrying the channel's file descriptor number into the worker.
CHANNEL_FD_ENV = "FUNCLOCAL_CHANNEL_FD"


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
