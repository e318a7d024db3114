"""Each fault test measures into `FIGURES`; this hands what one test measured to its report,
and tests/conftest.py adds the reports up and prints the suite's totals (README: "The fault
suite"; FUNCLOCAL_FAULT_REPORT=path also writes them as JSON)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fault_figures import FIGURES, PROPERTY


@pytest.fixture(autouse=True)
def _figures_in_report(request: pytest.FixtureRequest) -> Iterator[None]:
    FIGURES.take()
    yield
    measured = FIGURES.take()
    if measured.runs or measured.partitions_per_host:
        request.node.user_properties.append((PROPERTY, measured.to_json()))
