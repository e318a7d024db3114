"""What funclocal prints, in one place: log lines in the style of `func start`
(`[<UTC ISO>Z] message`), the banner with the function list, and the line for each
function (Core Tools' DisplayFunctionsInfoUtilities)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

from runtime.functions import FunctionSpec

LOGGER_NAME = "funclocal"


class FuncStyleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"[{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z] {text}"


def configure(verbose: bool = False) -> logging.Logger:
    """Send funclocal's logging to stdout in the `func start` format."""
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


def banner(specs: Iterable[FunctionSpec], base_url: str, route_prefix: str, *,
           master_key: str | None = None, host_key: str | None = None,
           durable_key: str | None = None) -> str:
    """The block printed once the host serves: the function list and, with auth on,
    the keys."""
    lines = ["", "Functions:", "", *function_lines(specs, base_url, route_prefix),
             "For detailed output, run funclocal with --verbose flag."]
    if master_key is not None:
        lines += ["", f"Auth is enabled. Master key: {master_key}",
                  f"Host (default) key: {host_key}"]
        if durable_key is not None:
            lines.append(f"Durable Functions system key (durabletask_extension): "
                         f"{durable_key}")
    return "\n".join(lines)


__all__ = ["AzureNotes", "FuncStyleFormatter", "banner", "configure", "function_line",
           "function_lines", "get", "shown_address"]
