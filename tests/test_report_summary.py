"""The run's terminal summary: a view of report.json whose counts are the page's, worst findings first."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.plugins.checks import CHECKS
from harness.report.html import render_html
from harness.report.report_json import load_report
from harness.report.summary import render_summary, run_summary, worst_lines
from tests.reportkit import (CONFIG_DRIFT, ENGINES, committed_report, drifting, make_report, nonzero, page_counts,
                             summary_counts)

E0, E1, E2 = ENGINES

STAGED = {**drifting(E0), ("reference-conformance", E1, "basic"): {"outcome": "fail", "findings": CONFIG_DRIFT},
          ("digest-preservation", E2, "large"): {"outcome": "error", "message": "skopeo copy failed"},
          ("round-trip", E2, "basic"): {"outcome": "skipped"}}


@pytest.mark.parametrize("source", ["committed run", "staged"])
def test_summary_report_and_page_count_alike(source: str) -> None:
    report = load_report(committed_report()) if source == "committed run" else make_report(changes=STAGED)
    from_json = Counter(r["outcome"] for r in report["results"])
    per_engine_json = {e["id"]: Counter(r["outcome"] for r in report["results"] if r["engine"] == e["id"])
                       for e in report["engines"]}
    totals, per_engine = summary_counts(render_summary(report, CHECKS))
    page_totals, page_engines = page_counts(render_html(report, CHECKS))
    assert nonzero(totals) == nonzero(page_totals) == dict(from_json)
    assert {e: nonzero(c) for e, c in per_engine.items()} == {e: nonzero(c) for e, c in page_engines.items()} \
        == {e: dict(c) for e, c in per_engine_json.items()}
    if source == "staged":
        assert per_engine[E2] == {"pass": 19, "fail": 0, "error": 3, "skipped": 1}


def test_the_worst_findings_come_first_once_each() -> None:
    report = make_report(changes={**drifting(E0), **drifting(E0, "large"),
                                  ("reference-conformance", E0, "large"): {"outcome": "fail", "findings": CONFIG_DRIFT},
                                  ("pull-resume", E0, "large"): {
                                      "outcome": "fail", "message": "AssertionError: the retry downloaded 50340152 "
                                                                    "of 50340152 bytes again"}})
    lines = worst_lines([r for r in report["results"] if r["engine"] == E0], list(CHECKS), E0)
    assert lines[0].startswith("reference-conformance: config image[0].config:$.config.Env[1]  LANG=C → LANG=C.UTF-8")
    assert lines[1].startswith("pull-resume: the retry downloaded 50340152 of 50340152 bytes again")
    assert lines[2].startswith("reference-conformance: mode ")
    # the same drift of the same entry, found on two images and by two tests, is one line naming both images
    mtimes = [line for line in lines if " mtime " in line]
    assert [line.split(": mtime ")[1].split()[0] for line in mtimes] == ["archive:blobs/sha256", "archive:index.json"]
    assert all(line.endswith("[basic, large]") for line in mtimes)
    assert "2026-11-22 06:19:40 (1795328380) → 2026-11-22 06:19:41 (1795328381)" in mtimes[0]  # UTC


def test_the_summary_says_what_was_not_measured_and_where_the_files_are(tmp_path: Path) -> None:
    report = make_report(changes=STAGED)
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "pytest.log").write_text("")
    text = run_summary(tmp_path, CHECKS)
    assert "  ! not measured: digest-preservation (3)" in text.split(f"\n{E2}: ")[1]
    assert "; 3 results could not be measured (digest-preservation)." in text.replace("\n  ", " ")
    assert text.rstrip().splitlines()[-2:] == [f"report:     {tmp_path / 'report.json'}",
                                                f"pytest log: {tmp_path / 'pytest.log'}"]
    (tmp_path / "report.json").unlink()
    assert run_summary(tmp_path, CHECKS).splitlines()[0] == "no report: the run stopped before its results were written"


def _engine_block(text: str, engine: str) -> list[str]:
    return text.split(f"\n{engine}: ")[1].split("\n\n")[0].splitlines()


def test_an_engine_that_passed_everything_has_no_finding_lines() -> None:
    text = render_summary(make_report(changes=drifting(E0)), CHECKS)
    assert not any(line.startswith("  ✗") for line in _engine_block(text, E1))
    assert any(line.startswith("  ✗ save-determinism: mtime archive:blobs/sha256") for line in _engine_block(text, E0))
