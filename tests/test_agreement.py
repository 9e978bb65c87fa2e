"""`bench/agreement.py`: verdicts of several runs side by side; a flipped verdict is named, rates are shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.reportkit import drifting, make_report, write

ROOT = Path(__file__).resolve().parents[1]
ENGINE = "docker-26.1.5-overlay2"


def _agreement(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "agreement.py"), *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_the_same_verdicts_agree_and_a_flip_is_named(tmp_path: Path) -> None:
    runs = [write(make_report(run_id=f"r{i}"), tmp_path / f"r{i}.json") for i in range(3)]
    proc = _agreement(*runs)
    assert proc.returncode == 0 and "66 of 66 verdicts" in proc.stdout and "0 flipped" in proc.stdout, proc.stdout
    assert "concurrent-clients · podman-4.3.1-overlay · basic" in proc.stdout  # a rate, shown per run
    assert "list 0/60" in proc.stdout

    flipped = write(make_report(run_id="r9", changes=drifting(ENGINE)), tmp_path / "r9.json")
    proc = _agreement(runs[0], flipped, runs[1])
    assert proc.returncode == 1, proc.stdout
    assert f"FLIPPED save-determinism · {ENGINE} · basic · repeated_saves_are_byte_identical" in proc.stdout
    assert "r9: fail  AssertionError: 3 different archives" in proc.stdout


def test_a_result_missing_from_a_run_is_named(tmp_path: Path) -> None:
    full = make_report(run_id="a")
    short = make_report(run_id="b")
    short["results"] = [r for r in short["results"] if r["check"] != "delta"]
    proc = _agreement(write(full, tmp_path / "a.json"), write(short, tmp_path / "b.json"))
    assert proc.returncode == 1 and "MISSING delta" in proc.stdout, proc.stdout
