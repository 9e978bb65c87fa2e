"""An installed harness (`pip install .`, not editable, into a fresh virtual environment) finds and runs
its suites from any directory: they ship inside the package as `harness.suites`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines.farm import default_home, package_cache

ROOT = Path(__file__).resolve().parents[1]
ENGINE = "docker-28.5.2-containerd"


@pytest.fixture
def own_farm_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="imgh-", dir="/tmp"))  # short: daemon sockets live below it
    try:
        yield home
    finally:
        env = {**os.environ, "IMGHARNESS_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "harness", "engines", "down"], env=env, capture_output=True, timeout=300)
        shutil.rmtree(home, ignore_errors=True)


def _checkout_copy(dest: Path) -> Path:
    """The files of this checkout (tracked, and new ones git does not ignore), nothing built or cached."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_an_installed_harness_runs_its_suites_from_any_directory(tmp_path: Path, own_farm_home: Path) -> None:
    src = _checkout_copy(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", str(src)],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    shutil.rmtree(src)  # nothing may be read from the source tree any more
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "IMGHARNESS_HOME": str(own_farm_home),
           "IMGHARNESS_PACKAGES": str(package_cache(default_home()))}
    env.pop("PYTHONPATH", None)
    imgharness = str(venv / "bin/imgharness")

    where = subprocess.run([str(venv / "bin/python"), "-c", "import harness.suites as s; print(s.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    usage = subprocess.run([imgharness, "run", "--help"], cwd=elsewhere, capture_output=True, text=True, env=env,
                           timeout=60)
    assert usage.returncode == 0 and "--farm-engine" in usage.stdout, usage.stderr

    proc = subprocess.run([imgharness, "-q", "run", "--farm-engine", ENGINE, "--", "-k", "round_trip",
                           "--image", "basic"], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [report] = elsewhere.glob("reports/*/report.json")
    results = json.loads(report.read_text())["results"]
    assert [(r["check"], r["engine"], r["outcome"]) for r in results] == [("round-trip", ENGINE, "pass")]
    assert results[0]["test"].startswith("suites/test_round_trip.py::")
    assert sorted(p.name for p in report.parent.iterdir()) == ["index.html", "junit.xml", "pytest.log", "report.json"]
