"""Shared fixtures. `support` is importable because pytest puts this directory on sys.path
(tests/ has no __init__.py); the logic lives in tests/support/."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.azurite import running_azurite, unique_hub_name
from support.fault_figures import PROPERTY, Figures

from runtime.storage.connection import StorageEndpoints

# `pytester` runs test files through the test harness's plugin (test_testing_plugin.py).
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
async def azurite() -> AsyncIterator[StorageEndpoints]:
    """One in-memory Azurite for the whole session; a failure to start fails the tests."""
    async with running_azurite() as endpoints:
        yield endpoints


@pytest.fixture
def task_hub_name(request: pytest.FixtureRequest) -> str:
    return unique_hub_name(request.node.name)


_REPO = Path(__file__).resolve().parents[1]
# What running Python and the linters leave anywhere: not the tests' doing.
_CACHES = ("__pycache__/", ".mypy_cache/", ".ruff_cache/", ".pytest_cache/")
_UNTRACKED_BEFORE = pytest.StashKey[set[str]]()


def _untracked() -> set[str]:
    listing = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=matching", "--untracked-files=normal"],
        cwd=_REPO, capture_output=True, text=True, check=False).stdout
    return {line[3:] for line in listing.splitlines()
            if line[:2] in ("??", "!!") and not line.endswith(_CACHES)}


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests write only in temporary folders: an app's Azurite data (`.azurite/`), a build
    or anything else new in the checkout fails the run. Checked once, by the process that
    sees the whole run (the controller under pytest-xdist), so that one worker's files in
    flight are not taken for another's leftovers."""
    if not _is_xdist_worker(session.config):
        session.config.stash[_UNTRACKED_BEFORE] = _untracked()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _is_xdist_worker(session.config) or _UNTRACKED_BEFORE not in session.config.stash:
        return
    left = sorted(_untracked() - session.config.stash[_UNTRACKED_BEFORE])
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: the tests left these in the source tree: {left}",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def funclocal_azurite(azurite: StorageEndpoints) -> StorageEndpoints:
    """The test harness's environments on Azurite (tests/examples) use the suite's
    Azurite rather than starting their own (the plugin's own start is tested through
    pytester in tests/integration/test_testing_plugin.py)."""
    return azurite


# --- the fault suite's totals (tests/faults/) -----------------------------------------------
# Here, not in tests/faults/conftest.py: under pytest-xdist the controller, which prints the
# summary, loads only this conftest.

_FAULT_TOTALS = pytest.StashKey[Figures]()
_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config
    config.stash[_FAULT_TOTALS] = Figures()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Called in each xdist worker and again in the controller: only the process that
    # prints the summary counts, and a test's figures arrive with its teardown report.
    if report.when != "teardown" or _config is None or _is_xdist_worker(_config):
        return
    for name, value in report.user_properties:
        if name == PROPERTY:
            _config.stash[_FAULT_TOTALS].add(Figures.from_json(str(value)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    totals = config.stash.get(_FAULT_TOTALS, None)
    if totals is None or not (totals.runs or totals.partitions_per_host):
        return
    terminalreporter.section("fault suite")
    for line in totals.lines():
        terminalreporter.write_line(line)
    target = os.environ.get("FUNCLOCAL_FAULT_REPORT")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            out.write(totals.to_json())
