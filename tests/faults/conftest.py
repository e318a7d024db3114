"""The fault suite reports its totals at the end of the session (README: "The fault
suite"); FUNCLOCAL_FAULT_REPORT=path also writes them as JSON."""

from __future__ import annotations

import os

import pytest
from workload import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.runs:
        return
    terminalreporter.section("fault suite")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)
    target = os.environ.get("FUNCLOCAL_FAULT_REPORT")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            out.write(FIGURES.to_json())
