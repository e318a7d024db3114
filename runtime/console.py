"""What funclocal prints, in one place: log lines in the style of `func start`
(`[<UTC ISO>Z] message`), the banner with the function list, and the line for each
function (Core Tools' DisplayFunctionsInfoUtilities)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TextIO

from runtime.functions import FunctionSpec

LOGGER_NAME = "funclocal"


# Level names of host.json `logging.logLevel` (.NET's LogLevel) and Python's levels.
LEVELS = {"trace": logging.DEBUG - 5, "debug": logging.DEBUG, "information": logging.INFO,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
          "none": logging.CRITICAL + 10}
_MARKS = {logging.WARNING: ("Warning: ", "\x1b[33m"), logging.ERROR: ("Error: ", "\x1b[31m")}
_RESET = "\x1b[0m"


class FuncStyleFormatter(logging.Formatter):
    """`[<UTC ISO>Z] message`, warnings and errors marked (`Warning: `, `Error: `) and, on
    a terminal, coloured yellow and red as Core Tools colours them."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        level = logging.ERROR if record.levelno >= logging.ERROR else record.levelno
        mark, color = _MARKS.get(level, ("", ""))
        line = f"[{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z] {mark}{text}"
        return f"{color}{line}{_RESET}" if color and self.color else line


def use_color(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def configure(verbose: bool = False) -> logging.Logger:
    """Send funclocal's logging to stdout in the `func start` format."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FuncStyleFormatter(color=use_color(sys.stdout)))
    # "runtime" covers modules that log under their own module name.
    for name in (LOGGER_NAME, "runtime"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False
    return logging.getLogger(LOGGER_NAME)


class LogLevels:
    """host.json `logging.logLevel` (categories `default`, `Function`, `Function.<name>`,
    `Function.<name>.User`...: the longest matching prefix wins, as in .NET's logging
    filters) with `logging.console.isEnabled`; `--verbose` lowers every level to Debug.
    Function logs use the category `Function.<name>` (Executing/Executed lines) and
    `Function.<name>.User` (what user code logs)."""

    def __init__(self, levels: Mapping[str, str] | None = None, *, verbose: bool = False,
                 console_enabled: bool = True) -> None:
        self.verbose = verbose
        self.console_enabled = console_enabled
        self._levels = {key.lower(): parse_level(value)
                        for key, value in (levels or {}).items()}
        self._cache: dict[str, int] = {}

    def level_for(self, category: str) -> int:
        """The least level shown for `category` (Python's numbers)."""
        found = self._cache.get(category)
        if found is None:
            lowered = category.lower()
            best, best_len = self._levels.get("default", logging.INFO), -1
            for key, level in self._levels.items():
                if key != "default" and (lowered == key or lowered.startswith(key + ".")) \
                        and len(key) > best_len:
                    best, best_len = level, len(key)
            found = self._cache[category] = min(best, logging.DEBUG) if self.verbose else best
        return found

    def shows(self, category: str, level: int) -> bool:
        return self.console_enabled and level >= self.level_for(category)

    def minimum(self) -> int:
        """The least level any category shows (what workers need to send at all)."""
        if self.verbose:
            return logging.DEBUG
        return min([logging.INFO, *self._levels.values()])


def parse_level(text: str) -> int:
    """A .NET LogLevel name (`Information`, `Debug`...) as Python's level; ValueError
    for an unknown name."""
    try:
        return LEVELS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"'{text}' is not a log level; use one of Trace, Debug, "
                         "Information, Warning, Error, Critical or None") from None


def get(name: str = "") -> logging.Logger:
    """funclocal's logger (`name` is a child, e.g. "durable")."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class AzureNotes:
    """Console lines telling the user what Azure will do where funclocal copies a
    behaviour that surprises (a 404 for a method, a page of 100 instances...). Each key is
    printed once per host process, so a client that repeats the request does not flood
    the console. Keys are small tuples, e.g. ("method", function, verb)."""

    PREFIX = "On Azure: "

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: set[tuple[str, ...]] = set()

    def once(self, key: tuple[str, ...], message: str) -> bool:
        """Print `message` as a warning unless `key` was printed before; True if printed."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._logger.warning("%s%s", self.PREFIX, message)
        return True


def shown_address(address: str) -> str:
    """How a bind address appears in URLs printed for people."""
    return "localhost" if address in ("127.0.0.1", "0.0.0.0", "::", "localhost") else address


def function_line(spec: FunctionSpec, base_url: str, route_prefix: str) -> str:
    """`\\tname: [GET,POST] http://localhost:7071/api/route`, or `\\tname: trigger`."""
    if spec.is_http:
        methods = ",".join(sorted(spec.methods)) if spec.methods is not None else "GET,POST"
        prefix = f"/{route_prefix}" if route_prefix else ""
        return f"\t{spec.name}: [{methods}] {base_url}{prefix}/{spec.route}"
    return f"\t{spec.name}: {spec.trigger_type}"


def function_lines(specs: Iterable[FunctionSpec], base_url: str,
                   route_prefix: str) -> list[str]:
    """The function list as `func start` prints it: each line, then a blank one."""
    lines: list[str] = []
    for spec in specs:
        lines += [function_line(spec, base_url, route_prefix), ""]
    return lines


def disabled_lines(specs: Iterable[FunctionSpec]) -> list[str]:
    return [f"Function {spec.name} is disabled." for spec in specs]


def banner(specs: Iterable[FunctionSpec], base_url: str, route_prefix: str, *,
           master_key: str | None = None, host_key: str | None = None,
           durable_key: str | None = None, verbose: bool = False,
           disabled: Iterable[FunctionSpec] = ()) -> str:
    """The block printed once the host serves: the function list, the disabled
    functions (`Function X is disabled.`, as Core Tools lists them) and, with auth on,
    the keys."""
    lines = ["", "Functions:", "", *function_lines(specs, base_url, route_prefix),
             *disabled_lines(disabled),
             *([] if verbose else ["For detailed output, run funclocal with --verbose flag."])]
    if master_key is not None:
        lines += ["", f"Auth is enabled. Master key: {master_key}",
                  f"Host (default) key: {host_key}"]
        if durable_key is not None:
            lines.append(f"Durable Functions system key (durabletask_extension): "
                         f"{durable_key}")
    return "\n".join(lines)


__all__ = ["AzureNotes", "FuncStyleFormatter", "LogLevels", "banner", "configure",
           "disabled_lines",
           "function_line", "function_lines", "get", "parse_level", "shown_address",
           "use_color"]
