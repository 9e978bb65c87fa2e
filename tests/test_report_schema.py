"""report.json follows its published JSON Schema (harness/report/schema/report-v1.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UsageError
from harness.plugins.checks import CHECKS
from harness.plugins.results import ResultCollector
from harness.report.report_json import load_report
from tests.reportkit import drifting, make_report, validator, write


def _errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(doc)]


def test_fixture_reports_are_valid() -> None:
    assert _errors(make_report(changes=drifting("podman-4.3.1-overlay"))) == []


def _logreport(when: str, outcome: str, data: dict[str, Any]) -> pytest.TestReport:
    return pytest.TestReport("suites/test_x.py::test_y[e-basic]", ("suites/test_x.py", 1, "test_y"), {}, outcome,
                             "E   AssertionError: 3 different archives\nmore" if outcome == "failed" else None,
                             when, user_properties=[("harness", data)], duration=0.5)


def test_collected_document_is_valid_and_redacts_passwords() -> None:
    collector = ResultCollector(None, "20260101-000000-aaaaaa")
    info = {"id": "e", "endpoint": "tcp://ci:s3cret@build-1:2376", "version": "28.5.2", "storage": "containerd",
            "os": "linux", "arch": "amd64"}
    data = {"check": "save-determinism", "engine": "e", "engine_info": info, "image": "basic",
            "findings": [{"category": "mtime", "where": "archive:index.json", "a": 1, "b": 2, "note": "mtime"}],
            "metrics": {"distinct_archives": 2}}
    for when, outcome in (("setup", "passed"), ("call", "failed"), ("teardown", "passed")):
        collector.pytest_runtest_logreport(_logreport(when, outcome, data))
    doc = collector.document()
    assert _errors(doc) == []
    assert doc["engines"][0]["endpoint"] == "tcp://ci:***@build-1:2376"
    assert "s3cret" not in json.dumps(doc)
    [result] = doc["results"]
    assert (result["outcome"], result["message"]) == ("fail", "AssertionError: 3 different archives")


def test_a_chained_failure_is_reported_by_the_exception_the_test_ended_with() -> None:
    """The SDK's cause is printed first in a chain; the message is ours, which names the engine."""
    def inspect() -> None:
        try:
            raise KeyError("404 Client Error for http+docker://localhost/v1.45/images/x/json")
        except KeyError as e:
            raise LookupError("docker-26.1.5-containerd: no such image: x") from e

    with pytest.raises(LookupError) as caught:
        inspect()
    report = _logreport("call", "failed", {"check": "multi-platform", "engine": "e", "image": "basic",
                                           "findings": [], "metrics": {}})
    report.longrepr = caught.getrepr(chain=True)
    collector = ResultCollector(None, "20260101-000000-aaaaaa")
    collector.pytest_runtest_logreport(report)
    [result] = collector.document()["results"]
    assert result["message"] == "LookupError: docker-26.1.5-containerd: no such image: x"


def test_a_skipped_check_says_why() -> None:
    report = _logreport("call", "skipped", {"check": "multi-platform", "engine": "e", "image": "mine",
                                            "findings": [], "metrics": {}})
    report.longrepr = ("suites/test_multiplatform.py", 70, "Skipped: mine is a single-platform image")
    collector = ResultCollector(None, "20260101-000000-aaaaaa")
    collector.pytest_runtest_logreport(report)
    [result] = collector.document()["results"]
    assert (result["outcome"], result["message"]) == ("skipped", "mine is a single-platform image")


def test_an_unreached_engine_still_has_every_field() -> None:
    collector = ResultCollector(None, "20260101-000000-aaaaaa")
    data = {"check": "round-trip", "engine": "tcp://far:2376", "engine_info": None, "image": "basic",
            "findings": [], "metrics": {}}
    collector.pytest_runtest_logreport(_logreport("setup", "failed", data))
    doc = collector.document()
    assert _errors(doc) == []
    assert doc["engines"] == [{"id": "tcp://far:2376", "endpoint": None, "version": None, "storage": None,
                               "os": None, "arch": None}]
    assert doc["results"][0]["outcome"] == "error"


@pytest.mark.parametrize("broken, complaint", [
    (lambda d: d.update(schema=2), "schema"),
    (lambda d: d["results"][0].update(outcome="passed"), "outcome"),
    (lambda d: d["results"][0]["findings"].append({"category": "colour", "where": "x", "a": 1, "b": 2}), "findings"),
    (lambda d: d["engines"][0].update(endpoint="tcp://u:pw@h:2376"), "endpoint"),
    (lambda d: d["results"][0]["metrics"].update(canonical_digest="md5:00"), "canonical_digest"),
])
def test_schema_rejects(broken: Any, complaint: str) -> None:
    doc = make_report()
    broken(doc)
    errors = _errors(doc)
    assert errors and any(complaint in e for e in errors), errors


def test_load_report_names_what_is_wrong(tmp_path: Path) -> None:
    assert load_report(write(make_report(), tmp_path / "ok.json"))["schema"] == 1
    (tmp_path / "bad.json").write_text('{"schema": 7}')
    with pytest.raises(UsageError, match="not a schema-1 report"):
        load_report(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="no such report"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("<html>")
    with pytest.raises(UsageError, match="not a readable report.json"):
        load_report(tmp_path / "junk.json")


def test_tool_versions_go_into_the_run_section_and_the_page() -> None:
    """The skopeo each result ran is named in report.json's run.tools once, with the version it reported."""
    from harness.report.html import render_html

    collector = ResultCollector(None, "20260101-000000-aaaaaa")
    info = {"id": "e", "endpoint": "unix:///e.sock", "version": "28.5.2", "storage": "containerd",
            "os": "linux", "arch": "arm64"}
    for tool in ({"id": "skopeo-1.9.3", "name": "skopeo", "version": "1.9.3"},
                 {"id": "skopeo-1.18", "name": "skopeo", "version": "1.18.0"}):
        data = {"check": "digest-preservation", "engine": "e", "engine_info": info, "image": "basic",
                "findings": [], "metrics": {"digest": "refused", "skopeo_version": tool["version"]}, "tools": [tool]}
        report = _logreport("call", "failed", data)
        report.nodeid = f"suites/test_x.py::test_y[e-basic-{tool['id']}-docker-daemon]"
        collector.pytest_runtest_logreport(report)
    doc = collector.document()
    assert _errors(doc) == []
    assert doc["run"]["tools"] == [{"id": "skopeo-1.18", "name": "skopeo", "version": "1.18.0"},
                                   {"id": "skopeo-1.9.3", "name": "skopeo", "version": "1.9.3"}]
    assert "tools: skopeo 1.18.0 (skopeo-1.18), skopeo 1.9.3 (skopeo-1.9.3)" in render_html(doc, CHECKS)
