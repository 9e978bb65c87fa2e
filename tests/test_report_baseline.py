"""The upgrade check's logic on fixture reports: what a baseline keeps, what counts as a regression, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.report.baseline import compare, distill, render
from tests.reportkit import CANONICAL, drifting, make_report, write

OLD, NEW = "docker-26.1.5-overlay2", "docker-28.5.2-overlay2"


def _pair(old_changes: dict[Any, Any] | None = None,
          new_changes: dict[Any, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    before = distill(make_report(engines=(OLD,), run_id="r-old", changes=old_changes), OLD)
    after = distill(make_report(engines=(NEW,), run_id="r-new", changes=new_changes), NEW)
    return before, after


def test_a_baseline_keeps_behaviour_not_speed() -> None:
    doc = distill(make_report(engines=(OLD,)), OLD)
    b = doc["behaviour"]
    assert doc["engine"]["id"] == OLD
    assert b["save-determinism · basic · repeated saves are byte identical"] == {
        "outcome": "pass", "facts": {"distinct archives": 1, "drift": []}, "message": ""}
    assert b["digest-preservation · large · copied image keeps its registry digest[skopeo-oci-archive]"]["facts"] == {
        "registry digest": "kept"}
    assert b["pull-resume · large · retry after a cut layer fetches only what is missing"]["facts"] == {
        "pull retry": "resumed", "retry uses Range": True, "partial data left": False}
    conformance = b["reference-conformance · basic · save conforms to the canonical archive"]["facts"]
    assert conformance["canonical digest"] == CANONICAL["basic"] and conformance["archive format"] == "docker-oci"
    assert not any("save_s" in str(v) or "archive_bytes" in str(v) for v in b.values())


def test_the_same_behaviour_on_another_engine_is_no_change() -> None:
    before, after = _pair()
    assert compare(before, after) == []
    assert "0 changes (0 regressions, 0 improvements); 23 results behave the same" in render(before, after, [])


def test_new_nondeterminism_is_a_regression() -> None:
    before, after = _pair(new_changes=drifting(NEW))
    changes = compare(before, after)
    regressions = {(c.what, str(c.before), str(c.after)) for c in changes if c.verdict == "regression"}
    assert ("outcome", "pass", "fail") in regressions
    assert ("distinct archives", "1", "3") in regressions
    assert ("drift", "[]", "['mtime']") in regressions
    text = render(before, after, changes)
    assert "REGRESSION save-determinism · basic · repeated saves are byte identical: distinct archives 1 → 3" in text


def test_gone_nondeterminism_is_an_improvement() -> None:
    changes = compare(*_pair(old_changes=drifting(OLD)))
    assert changes and all(c.verdict == "improvement" for c in changes)
    assert {c.theme for c in changes} == {"outcome", "nondeterminism"}


def test_other_behaviour_changes_are_reported_not_judged() -> None:
    before, after = _pair(new_changes={
        ("repodigests-unique", NEW, "basic"): {"metrics": {"repodigests_after_push": 5, "repodigests_after_pull": 5}},
        ("reference-conformance", NEW, "large"): {"metrics": {"archive_format": "docker-legacy",
                                                              "canonical_digest": "sha256:" + "0e" * 32}},
        ("pull-resume", NEW, "large"): {"metrics": {"retry_bytes": 50_340_152, "retry_used_range": False}},
        ("digest-preservation", NEW, "basic"): {"metrics": {"digest": "changed"}}})
    changes = compare(before, after)
    assert {c.verdict for c in changes} == {"change"}
    by_theme = {(c.theme, c.what, c.before, c.after) for c in changes}
    assert ("RepoDigests", "RepoDigests after push", 2, 5) in by_theme
    assert ("archive format", "archive format", "docker-oci", "docker-legacy") in by_theme
    assert ("image digest", "canonical digest", CANONICAL["large"], "sha256:" + "0e" * 32) in by_theme
    assert ("pull resume", "pull retry", "resumed", "restarted") in by_theme
    assert sum(c.what == "registry digest" for c in changes) == 3  # one per route
    text = render(before, after, changes)
    assert text.index("RepoDigests (2)") < text.index("archive format (1)") < text.index("image digest (1)")


def test_requests_that_start_failing_beside_another_client_are_a_regression() -> None:
    failing = {("concurrent-clients", NEW, "basic"): {"metrics": {"failed": {"list": 9}, "list_failed_pct": 13.0}}}
    before, after = _pair(new_changes=failing)
    regressions = {(c.theme, c.what, str(c.after)) for c in compare(before, after) if c.verdict == "regression"}
    assert ("concurrency", "requests failing beside another client", "['list']") in regressions
    assert all(c.verdict == "improvement" for c in compare(after, before))


def test_results_only_on_one_side_are_coverage_changes() -> None:
    before, after = _pair()
    after["behaviour"].pop(next(iter(after["behaviour"])))
    [change] = compare(before, after)
    assert (change.theme, change.verdict, change.note) == ("coverage", "change", "not run on the candidate")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "-q", "baseline", *args], capture_output=True, text=True)


def test_baseline_commands_from_reports(tmp_path: Path) -> None:
    old = write(make_report(engines=(OLD, "podman-4.3.1-overlay")), tmp_path / "old.json")
    good = write(make_report(engines=(NEW,)), tmp_path / "good.json")
    bad = write(make_report(engines=(NEW,), changes=drifting(NEW, "large")), tmp_path / "bad.json")
    base = tmp_path / "baseline.json"
    proc = _cli("record", "--engine", OLD, "--from-report", str(old), "-o", str(base))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(base.read_text())["engine"]["id"] == OLD
    proc = _cli("check", str(base), "--engine", NEW, "--from-report", str(good))
    assert proc.returncode == 0 and "0 regressions" in proc.stdout, proc.stdout + proc.stderr
    proc = _cli("check", str(base), "--engine", NEW, "--from-report", str(bad))
    assert proc.returncode == 1 and "REGRESSION save-determinism · large" in proc.stdout, proc.stdout + proc.stderr
    proc = _cli("check", str(base), "--engine", "docker-99", "--from-report", str(good))
    assert proc.returncode == 2 and "no engine 'docker-99'" in proc.stderr
    proc = _cli("check", str(good), "--engine", NEW, "--from-report", str(good))
    assert proc.returncode == 2 and "not a baseline" in proc.stderr


def test_results_neither_run_measured_are_listed_apart_not_as_the_same() -> None:
    unmeasured = {("digest-preservation", engine, "basic"): {"outcome": "error", "metrics": {"digest": "not measured"},
                                                             "message": "ToolFailed: skopeo copy failed"}
                  for engine in (OLD, NEW)}
    before, after = _pair(old_changes={k: v for k, v in unmeasured.items() if k[1] == OLD},
                          new_changes={k: v for k, v in unmeasured.items() if k[1] == NEW})
    changes = compare(before, after)
    assert changes == []
    text = render(before, after, changes)
    assert "not measured in either run (3)" in text  # one per route
    assert "digest-preservation · basic · copied image keeps its registry digest[skopeo-oci-archive]: ToolFailed" in text
    assert text.rstrip().endswith("0 changes (0 regressions, 0 improvements); 20 results behave the same; "
                                  "3 not measured in either run")


def test_an_unmeasured_result_has_no_facts_to_regress_from() -> None:
    """A baseline whose restart test could not be measured knows nothing of its drift: a candidate that
    measures drift there changed outcome, but did not regress from deterministic saves."""
    error = {("save-determinism", OLD, "basic"): {"outcome": "error", "metrics": {"distinct_archives": 1},
                                                  "message": "EngineUnavailable: connection lost"}}
    before, after = _pair(old_changes=error, new_changes=drifting(NEW))
    key = "save-determinism · basic · repeated saves are byte identical"
    assert before["behaviour"][key]["facts"] == {}
    changes = [c for c in compare(before, after) if c.key == key]
    assert [(c.what, c.before, c.after, c.verdict) for c in changes] == [("outcome", "error", "fail", "change")]
