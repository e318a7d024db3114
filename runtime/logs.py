"""Console logging in the style of `func start`: `[<UTC ISO>Z] message`."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

LOGGER_NAME = "funclocal"


class FuncStyleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"[{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z] {text}"


def configure(verbose: bool = False) -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FuncStyleFormatter())
    # "runtime" covers modules that log under their own module name.
    for name in (LOGGER_NAME, "runtime"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False
    return logging.getLogger(LOGGER_NAME)


def get(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)
