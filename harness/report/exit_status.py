"""Exit codes a user's CI can branch on, read from a report's outcomes (pytest's convention).

    0    every check passed (or was skipped where it does not apply)
    1    a check failed, and every result was measured
    2    usage error: bad arguments, or a selection that matches no check
    3    some result is `error`: the harness could not measure it (or the run stopped before any result)
    6    the report could not be written where asked (it is kept in a temp dir; one line says where)
    130  interrupted (Ctrl-C)

`run`, `baseline` and `compare` all follow it.  The code comes from report.json,
never from pytest's own exit status, which says 1 both for an engine that is
inconsistent and for one that could not be measured.
"""

from __future__ import annotations

from typing import Any, Iterable

PASSED, CHECK_FAILED, USAGE, NOT_MEASURED, REPORT_NOT_WRITTEN, INTERRUPTED = 0, 1, 2, 3, 6, 130
_PYTEST_OK, _PYTEST_FAILED, _PYTEST_USAGE, _PYTEST_NO_TESTS = 0, 1, 4, 5  # pytest.ExitCode, without importing pytest


def of_outcomes(outcomes: Iterable[str]) -> int:
    """3 if any result is an error, else 1 if any failed, else 0."""
    seen = set(outcomes)
    return NOT_MEASURED if "error" in seen else CHECK_FAILED if "fail" in seen else PASSED


def of_report(report: dict[str, Any]) -> int:
    return of_outcomes(r["outcome"] for r in report["results"])


def of_run(pytest_status: int, report: dict[str, Any] | None, *, interrupted: bool) -> int:
    """A suite run's exit code from what pytest said and the report it left (None: no report.json)."""
    if interrupted:
        return INTERRUPTED
    if pytest_status == REPORT_NOT_WRITTEN:
        return REPORT_NOT_WRITTEN
    if pytest_status in (_PYTEST_USAGE, _PYTEST_NO_TESTS):
        return USAGE
    if pytest_status not in (_PYTEST_OK, _PYTEST_FAILED) or report is None:
        return NOT_MEASURED  # an internal error, or a suite that failed to collect: checks were not measured
    return of_report(report) if report["results"] else USAGE
