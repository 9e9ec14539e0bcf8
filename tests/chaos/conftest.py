from __future__ import annotations

import pytest

from tests.chaos.test_chaos import HEADER
from tests.chaos.test_chaos import SCALE
from tests.chaos.test_chaos import TABLE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TABLE:
        terminalreporter.section("chaos")
        terminalreporter.write_line(f"scale: {SCALE}")
        for line in [HEADER, *TABLE]:
            terminalreporter.write_line(line)
