"""Progress of a suite run as one line per finished test, in place of pytest's dots."""

from __future__ import annotations

from typing import Any

import pytest

from harness import progress
from harness.plugins.results import ResultCollector


class MatrixProgress:
    """One progress line per finished suite test (check, engine, image, outcome), counted against the
    tests collected, in place of pytest's dots.  It reads the outcome `collector` settled on, so
    progress and report always agree."""

    def __init__(self, collector: ResultCollector) -> None:
        self.collector = collector
        self.session: pytest.Session | None = None
        self.done = 0

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        category, letter, word = yield
        if dict(report.user_properties).get("harness"):
            return category, "", word  # still counted and named in the summary; our line replaces the dot
        return category, letter, word

    @pytest.hookimpl(trylast=True)  # after the collector settled the outcome
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown" or self.session is None:
            return
        result = self.collector.results.get(report.nodeid)
        if result is None:
            return
        self.done += 1
        total = self.session.testscollected
        progress.say(f"[{self.done:>{len(str(total))}}/{total}] {result['check']} · {result['engine'] or '-'} · "
                     f"{result['image'] or '-'}: {result['outcome'] or 'error'} ({result['duration_s']:.1f} s)")
