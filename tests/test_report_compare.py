"""compare: reports of several hosts (different engine sets) become one matrix; image digests that differ show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.report.compare import host_differences, merge
from harness.plugins.checks import CHECKS as SUITE_CHECKS
from harness.report.html import cell_id, render_html
from tests.reportkit import ENGINES, make_report, validator, write

OTHER = "sha256:" + "0f" * 32


def _two_hosts() -> tuple[dict, dict]:
    a = make_report(host="ci-a", run_id="r-a")
    b = make_report(host="ci-b", run_id="r-b", engines=(ENGINES[0], "docker-20.10.24-overlay2"), changes={
        ("reference-conformance", ENGINES[0], "large"): {"metrics": {"canonical_digest": OTHER}}})
    b["results"] = [r for r in b["results"]
                    if not (r["check"] == "pull-resume" and r["engine"] == "docker-20.10.24-overlay2")]
    return a, b


def test_merge_keys_engines_by_host_and_keeps_every_result() -> None:
    a, b = _two_hosts()
    merged = merge([a, b])
    assert list(validator().iter_errors(merged)) == []
    keys = [e["id"] for e in merged["engines"]]
    assert keys == [f"ci-a/{e}" for e in ENGINES] + [f"ci-b/{ENGINES[0]}", "ci-b/docker-20.10.24-overlay2"]
    assert merged["engines"][3]["engine"] == ENGINES[0] and merged["engines"][3]["host"] == "ci-b"
    assert len(merged["results"]) == len(a["results"]) + len(b["results"])
    assert {s["label"] for s in merged["run"]["sources"]} == {"ci-a", "ci-b"}


def test_an_image_that_differs_between_hosts_is_named_with_its_digests() -> None:
    merged = merge(_two_hosts())
    [diff] = merged["host_differences"]
    assert diff["image"] == "large"
    assert diff["digests"][OTHER] == [f"ci-b/{ENGINES[0]}"]
    assert len(next(iter(diff["digests"].values()))) == 4  # the common digest first
    assert host_differences(merge([make_report(host="x"), make_report(host="y")])) == []


def test_one_host_twice_is_told_apart_by_run() -> None:
    merged = merge([make_report(host="vm", run_id="r1"), make_report(host="vm", run_id="r2")])
    assert {e["id"].split("/")[0] for e in merged["engines"]} == {"vm~r1", "vm~r2"}


def test_merged_matrix_renders_every_host_row_and_an_empty_cell_where_nothing_ran() -> None:
    page = render_html(merge(_two_hosts()), SUITE_CHECKS)
    assert f'data-cell="{cell_id("delta", "ci-b/docker-20.10.24-overlay2")}"' in page
    row = page.split("<th>ci-b/docker-20.10.24-overlay2", 1)[1].split("</tr>", 1)[0]
    assert row.count('title="not run"') == 1
    assert "Merged from 2 runs" in page and "more than one canonical digest" in page


def test_compare_command(tmp_path: Path) -> None:
    a, b = _two_hosts()
    paths = [str(write(a, tmp_path / "a" / "report.json")), str(write(b, tmp_path / "b" / "report.json"))]
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", *paths, "-o", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "large: 2 canonical digests" in proc.stdout and f"ci-b/{ENGINES[0]}" in proc.stdout
    merged = json.loads((tmp_path / "out" / "report.json").read_text())
    assert merged["host_differences"] and (tmp_path / "out" / "index.html").exists()

    same = [str(write(make_report(host=h), tmp_path / h / "report.json")) for h in ("h1", "h2")]
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", *same, "-o", str(tmp_path / "same")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "one canonical digest" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", same[0]], capture_output=True, text=True)
    assert proc.returncode == 2 and "at least two reports" in proc.stderr
