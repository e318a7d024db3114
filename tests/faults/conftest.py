"""The fault suite reports its totals at the end of the session (README: "The fault
suite"); FUNCLOCAL_FAULT_REPORT=path also writes them as JSON.

Each test measures into `workload.FIGURES`; its figures travel in its report (so that they
reach the controller when pytest-xdist runs tests in worker processes), and the process that
prints the summary adds them up."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from workload import FIGURES, Figures

_PROPERTY = "funclocal_fault_figures"
_TOTALS = Figures()


@pytest.fixture(autouse=True)
def _figures_in_report(request: pytest.FixtureRequest) -> Iterator[None]:
    FIGURES.take()
    yield
    measured = FIGURES.take()
    if measured.runs or measured.partitions_per_host:
        request.node.user_properties.append((_PROPERTY, measured.to_json()))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Called in each xdist worker and again in the controller; only the process whose
    # terminal prints the summary counts (a worker has `workerinput`).
    if report.when != "teardown" or _in_worker:
        return
    for name, value in report.user_properties:
        if name == _PROPERTY:
            _TOTALS.add(Figures.from_json(str(value)))


_in_worker = False


def pytest_configure(config: pytest.Config) -> None:
    global _in_worker
    _in_worker = hasattr(config, "workerinput")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TOTALS.runs and not _TOTALS.partitions_per_host:
        return
    terminalreporter.section("fault suite")
    for line in _TOTALS.lines():
        terminalreporter.write_line(line)
    target = os.environ.get("FUNCLOCAL_FAULT_REPORT")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            out.write(_TOTALS.to_json())
