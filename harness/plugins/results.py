"""Collecting suite results into `report.json`: one result per (check, engine, image) test.

Runs in the process that sees every test report (the xdist controller, or the
only process); workers ship each result's data in `report.user_properties`.
The document follows ``harness/report/schema/report-v1.json``; `imgharness run`
passes its run id (``--run-id``) so the report names the directory it is in.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from harness import __version__
from harness.engines.spec import redact_url
from harness.errors import ReportNotWritten
from harness.report.exit_status import REPORT_NOT_WRITTEN
from harness.report.report_json import SCHEMA_VERSION, write_or_keep

ENGINE_FIELDS = ("id", "endpoint", "version", "storage", "os", "arch")


def _outcome(report: pytest.TestReport, previous: str | None) -> str:
    if report.when == "call":
        return "pass" if report.passed else "skipped" if report.skipped else "fail"
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return previous or "error"


class ResultCollector:
    """Gathers harness results from test reports and writes the run's report.json into `report_dir` (none
    without one)."""

    def __init__(self, report_dir: Path | None, run_id: str) -> None:
        self.report_dir = report_dir
        self.run_id = run_id
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.results: dict[str, dict[str, Any]] = {}
        self.engines: dict[str, dict[str, Any]] = {}
        self.tools: dict[str, dict[str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data: dict[str, Any] | None = dict(report.user_properties).get("harness")  # type: ignore[assignment]
        if not data:
            return
        res = self.results.setdefault(report.nodeid, {
            "check": data["check"], "engine": data["engine"], "image": data["image"], "test": report.nodeid,
            "outcome": None, "duration_s": 0.0, "findings": [], "metrics": {}, "message": ""})
        if report.when == "setup" and report.passed:
            res["outcome"] = None
        elif report.when == "teardown" and report.passed:
            pass
        else:
            res["outcome"] = "error" if data.get("error") else _outcome(report, res["outcome"])
            if data.get("error"):
                res["message"] = data["error"][:500]
            if report.failed and data.get("refused"):  # an engine refused the image: measured, not an error
                res["outcome"], res["message"] = "fail", data["refused"][:500]
        res["duration_s"] = round(res["duration_s"] + report.duration, 3)
        if data["image"]:  # a test may name its image during the call, after the setup report
            res["image"] = data["image"]
        if data["findings"]:
            res["findings"] = data["findings"]
        res["metrics"].update(data["metrics"])
        if report.failed and not res["message"]:
            res["message"] = _first_line(report)
        if report.skipped and isinstance(report.longrepr, tuple):  # why the check does not apply
            res["message"] = str(report.longrepr[2]).removeprefix("Skipped: ")[:500]
        if data.get("engine_info"):
            self.engines[data["engine"]] = data["engine_info"]
        for tool in data.get("tools") or []:
            self.tools[tool["id"]] = tool

    def document(self) -> dict[str, Any]:
        used = sorted({r["engine"] for r in self.results.values()} - {""})  # "": a check that needs no engine
        engines = [_engine_entry(e, self.engines.get(e, {})) for e in used]
        return {
            "schema": SCHEMA_VERSION,
            "run": {"id": self.run_id, "started": self.started, "host": platform.node(),
                    "harness_version": __version__, **({"tools": [self.tools[k] for k in sorted(self.tools)]}
                                                       if self.tools else {})},
            "engines": engines,
            "results": [dict(r, outcome=r["outcome"] or "error") for r in self.results.values()],
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report_dir = self.report_dir
        if report_dir is None:
            return
        try:
            write_or_keep(report_dir / "report.json", json.dumps(self.document(), indent=2))
        except ReportNotWritten as e:
            sys.stderr.write(f"imgharness: error: {e}\n")
            session.exitstatus = REPORT_NOT_WRITTEN


def _engine_entry(engine_id: str, info: dict[str, Any]) -> dict[str, Any]:
    """Every schema field, null where the engine was never reached; the endpoint without its password."""
    entry = {key: info.get(key) for key in ENGINE_FIELDS}
    entry["id"] = engine_id
    if entry["endpoint"]:
        entry["endpoint"] = redact_url(str(entry["endpoint"]))
    return entry


def _first_line(report: pytest.TestReport) -> str:
    """The exception the test ended with, in a line: of a chain, the last raised (ours, naming the engine),
    not the SDK's cause printed first."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message.strip():
        return crash.message.strip().splitlines()[0][:500]
    text = str(report.longrepr or "")
    for line in text.splitlines():
        if line.startswith("E "):
            return line[2:].strip()[:500]
    return text.strip().splitlines()[-1][:500] if text.strip() else ""
