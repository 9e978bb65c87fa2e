"""The README's measured figures are what its committed report.json gives: they change only with a new run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness.plugins.checks import CHECKS
from harness.report.report_json import load_report
from harness.report.tables import blocks, fill
from tests.reportkit import README, committed_report, drifting, make_report, write


def test_the_readme_figures_are_the_committed_reports() -> None:
    text = README.read_text()
    found = blocks(text)
    assert {m.group("kind") for m in found} >= {"matrix", "unmeasured", "baseline"}
    assert {m.group("report") for m in found} == {str(committed_report().relative_to(README.parent))}
    report = load_report(committed_report())
    assert len(report["results"]) > 100 and len(report["engines"]) >= 6, "commit the report of a full run"
    assert fill(text, report, found[0].group("report"), CHECKS) == text, \
        "README.md's tables differ from its committed report: run `make readme` (or readme-tables --write)"


def test_the_matrix_block_names_the_run_and_every_engine() -> None:
    report = load_report(committed_report())
    [matrix] = [m for m in blocks(README.read_text()) if m.group("kind") == "matrix"]
    body = matrix.group("body")
    run = report["run"]
    assert f"Run `{run['id']}` on host `{run['host']}`, started {run['started']}" in body
    header = next(line for line in body.splitlines() if line.startswith("| check |"))
    assert header.count("|") == len(report["engines"]) + 2
    assert sum(line.startswith("| ") for line in body.splitlines()) == 1 + len({r["check"] for r in report["results"]})


def test_writing_copies_the_run_beside_the_readme_and_names_it(tmp_path: Path) -> None:
    """`readme-tables NEW --write` (what `make readme` runs) takes a new run's report into docs/reports/ and
    points every block at it; without --write it only checks, exit 1 when the README is stale."""
    readme = tmp_path / "README.md"
    shutil.copy(README, readme)
    old = committed_report()
    (tmp_path / old.relative_to(README.parent)).parent.mkdir(parents=True)
    shutil.copy(old, tmp_path / old.relative_to(README.parent))
    new = write(make_report(engines=("docker-26.1.5-overlay2", "docker-28.5.2-overlay2", "docker-26.1.5-containerd",
                                     "docker-28.5.2-containerd", "podman-4.3.1-overlay", "podman-5.4.2-overlay"),
                            run_id="20270101-000000-bbbbbb", changes=drifting("docker-26.1.5-overlay2")),
                tmp_path / "reports" / "20270101-000000-bbbbbb" / "report.json")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness", "readme-tables", "--readme", str(readme), *args],
                              capture_output=True, text=True, timeout=120)

    assert cli().returncode == 0
    stale = cli(str(new))
    assert stale.returncode == 1 and "first difference" in stale.stdout
    done = cli(str(new), "--write")
    assert done.returncode == 0, done.stderr
    committed = tmp_path / "docs/reports/20270101-000000-bbbbbb/report.json"
    assert committed.read_bytes() == new.read_bytes()
    text = readme.read_text()
    assert "docs/reports/20270101-000000-bbbbbb/report.json" in text and str(old.parent.name) not in text
    assert "**fail**: repeated saves differ for basic (mtime of blobs/sha256, index.json)" in text
    assert cli().returncode == 0
