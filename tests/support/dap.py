"""A minimal Debug Adapter Protocol client: what VS Code does when it attaches to
debugpy, enough to prove a debugger reaches the right worker process."""

from __future__ import annotations

import json
import socket
import time
from typing import Any


class DapClient:
    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.seq = 0
        self.messages: list[dict[str, Any]] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command,
                           "arguments": arguments or {}}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(head.split(b":")[1])
        while len(rest) < length:
            self.buffer = head + b"\r\n\r\n" + rest
            self._fill()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        message: dict[str, Any] = json.loads(rest[:length])
        self.messages.append(message)
        return message

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the debug adapter closed the connection")
        self.buffer += data

    def wait_for(self, kind: str, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next message of `kind` ("response" or "event") named `name`; earlier ones
        already read count too."""
        key = "command" if kind == "response" else "event"
        for message in self.messages:
            if message.get("type") == kind and message.get(key) == name:
                self.messages.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read()
            if message.get("type") == kind and message.get(key) == name:
                self.messages.remove(message)
                return message
        raise AssertionError(f"no {kind} {name!r} within {timeout}s")

    def attach(self) -> int:
        """Attach as VS Code does; returns the debugged process id."""
        self.send("initialize", {"adapterID": "debugpy", "clientID": "funclocal-tests",
                                 "pathFormat": "path", "linesStartAt1": True,
                                 "columnsStartAt1": True})
        self.wait_for("response", "initialize")
        self.send("attach", {"justMyCode": True})
        self.wait_for("event", "initialized")
        self.send("configurationDone")
        self.wait_for("response", "configurationDone")
        process = self.wait_for("event", "process")
        return int(process["body"]["systemProcessId"])
