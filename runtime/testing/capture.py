"""The host's console output, captured per test environment.

The host logs what `func start` prints (function invocations, orchestration outcomes,
what user code prints or logs, prefixed `[worker <pid>]`) under the `funclocal` and
`runtime` loggers; while an environment is open, a handler keeps those lines for it,
formatted as the console shows them. Environments open at the same time in one
process see each other's lines.
"""

from __future__ import annotations

import logging
import threading

from runtime.console import LOGGER_NAME, FuncStyleFormatter

_LOGGERS = (LOGGER_NAME, "runtime")


class Console(logging.Handler):
    """The console lines of one environment (`lines`, `text`), from open to close."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(FuncStyleFormatter())
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)

    @property
    def lines(self) -> list[str]:
        """Every line so far, as the console prints it (`[time] message`)."""
        with self._guard:
            records = list(self.records)
        return [line for r in records for line in self.format(r).splitlines()]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def clear(self) -> None:
        """Forget the lines so far (to assert on what comes next)."""
        with self._guard:
            self.records.clear()

    def __contains__(self, fragment: object) -> bool:
        return isinstance(fragment, str) and fragment in self.text

    def attach(self) -> None:
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self)

    def detach(self) -> None:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self)


__all__ = ["Console"]
