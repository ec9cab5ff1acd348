"""The reliability run's totals, gathered across scenarios and printed at the end of the run."""

from __future__ import annotations

import pytest

from .reliability_totals import TOTALS, Totals


@pytest.fixture(scope="session")
def totals() -> Totals:
    return TOTALS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TOTALS.scenarios == 0:
        return
    terminalreporter.section("reliability: fault injection totals")
    for line in TOTALS.lines():
        terminalreporter.write_line(line)
    for violation in TOTALS.violations[:20]:
        terminalreporter.write_line(f"VIOLATION {violation}")
