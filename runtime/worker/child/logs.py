"""What user code logs, as the host reads it: each line of a log record goes to stderr
tagged with the record's level and the function whose invocation logged it, so the host
can filter by host.json's `logging.logLevel` categories and mark warnings and errors.
Plain prints are not tagged: the host shows them as they are.

The tag is `runtime.worker.protocol.LOG_TAG`; `runtime.worker.pool` reads it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys

from runtime.worker.protocol import LOG_LEVEL_ENV, tag_log_line

# The function whose invocation is running in this context (threads get a copy).
current_function: contextvars.ContextVar[str] = contextvars.ContextVar(
    "funclocal_function", default="")


class TaggedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        function = current_function.get()
        return "\n".join(tag_log_line(record.levelno, function, line)
                         for line in text.split("\n"))


def configure() -> None:
    """User code's `logging` calls reach the host console, as in `func start`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TaggedFormatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        root.setLevel(int(os.environ.get(LOG_LEVEL_ENV) or logging.INFO))
    except ValueError:
        root.setLevel(logging.INFO)
    for noisy in ("azure", "urllib3", "asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["configure", "current_function"]
