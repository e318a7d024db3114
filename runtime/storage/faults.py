"""Fault injection for the test suite: crash the host at its Nth storage request, or send
every queue message twice. Off unless FUNCLOCAL_FAULTS is set, e.g.
`FUNCLOCAL_FAULTS=crash_at_request=40` or `FUNCLOCAL_FAULTS=duplicate_sends`.

A crash is a SIGKILL of the host process itself: nothing is flushed, nothing is cleaned
up, exactly as `kill -9` would leave it.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "FUNCLOCAL_FAULTS"


def _parse(text: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key:
            settings[key] = value
    return settings


class Faults:
    def __init__(self, text: str | None) -> None:
        settings = _parse(text or "")
        self.crash_at = int(settings["crash_at_request"]) if "crash_at_request" in settings \
            else None
        self.duplicate_sends = "duplicate_sends" in settings
        self.requests = 0

    def before_request(self, what: str) -> None:
        """Called before every storage operation of the task hub. Idle polls are not
        counted: their number depends on timing, and the point is to land at a chosen
        request of the durable work."""
        if what.startswith("receiving"):
            return
        self.requests += 1
        if self.crash_at is not None and self.requests >= self.crash_at:
            print(f"FAULT: killing the host before storage request {self.requests} ({what})",
                  file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


active = Faults(os.environ.get(ENV))
