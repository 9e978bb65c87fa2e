"""End to end: `imgharness run` on one farm engine writes report.json, junit.xml, index.html and pytest.log,
shows progress lines only, and ends with a summary whose counts are the report's and the page's.

The run uses a farm home of its own (engine packages from the shared cache), so it
never disturbs a farm someone else is using; it stops what it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from harness.settings import default_home, package_cache
from tests.reportkit import nonzero, page_counts, summary_counts, validator

pytestmark = pytest.mark.engines  # `run` on a farm of its own

ENGINE = "docker-28.5.2-overlay2"


@pytest.fixture
def own_farm_home() -> Iterator[dict[str, str]]:
    home = tempfile.mkdtemp(prefix="imgh-e2e-", dir="/tmp")  # short: daemon sockets live below it
    env = {**os.environ, "IMGHARNESS_HOME": home,
           "IMGHARNESS_PACKAGES": str(package_cache(default_home()))}
    try:
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "harness", "engines", "down"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(home, ignore_errors=True)


def test_run_on_the_farm_writes_three_files(own_farm_home: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--farm-engine", ENGINE, "--report-dir", str(out), "--repeat", "2",
         "--", "suites/test_reference_conformance.py", "suites/test_save_determinism.py", "--image", "basic"],
        env=own_farm_home, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "junit.xml", "pytest.log", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert list(validator().iter_errors(report)) == []
    assert report["engines"][0]["id"] == ENGINE
    [conformance] = [r for r in report["results"] if r["check"] == "reference-conformance"]
    assert conformance["metrics"]["canonical_digest"].startswith("sha256:")
    page = (out / "index.html").read_text()
    assert f'data-cell="cell=save-determinism/{ENGINE}"' in page
    assert f"farm: {ENGINE} ready" in proc.stderr
    # the terminal shows progress lines only; pytest's own output is in pytest.log
    assert all(line.startswith("· ") for line in proc.stderr.splitlines()), proc.stderr
    assert sum(line.startswith("· [") for line in proc.stderr.splitlines()) == 3
    assert "passed" in (out / "pytest.log").read_text() or "failed" in (out / "pytest.log").read_text()
    # then the run's summary, whose counts are report.json's and the page's
    totals, per_engine = summary_counts(proc.stdout)
    page_totals, page_engines = page_counts(page)
    from_json = dict(Counter(r["outcome"] for r in report["results"]))
    assert nonzero(totals) == nonzero(page_totals) == from_json
    assert nonzero(per_engine[ENGINE]) == nonzero(page_engines[ENGINE]) == from_json
    assert f"page:       {out / 'index.html'}" in proc.stdout and f"pytest log: {out / 'pytest.log'}" in proc.stdout
