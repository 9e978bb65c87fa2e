"""The suites' side of a run: what the suites check, and the pytest plugins that collect and show their results.

    checks.py           the suites' checks, in matrix order, each with what must hold
    results.py          the result collector: report.json, one result per (check, engine, image) test
    matrix_progress.py  one progress line per finished suite test, in place of pytest's dots

`harness.pytest_plugin` (the fixtures and options) makes the collector with its
report directory and run id, and hands it to the progress lines; both run in the
process that sees every test report (the xdist controller, or the only process).
The report views (`harness.report`) read report.json alone and are given the
checks to show.
"""
