"""Exit codes a user's CI can branch on: 0 passed, 1 a check failed (all measured), 3 not measured,
2 usage, 6 report not written — from the report's outcomes, for `run`, `baseline` and `compare`.

The `run` cases here need no engine: an engine that cannot be reached gives `error` results.
`tests/test_report_run.py` shows 0 and 1 on a farm engine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.exit_status import of_outcomes, of_run
from tests.reportkit import ENGINES, make_report, write

ROOT = Path(__file__).resolve().parents[1]


def test_outcomes_give_the_code() -> None:
    assert of_outcomes(["pass", "skipped"]) == 0
    assert of_outcomes(["pass", "fail"]) == 1
    assert of_outcomes(["fail", "error", "pass"]) == 3
    report = {"results": [{"outcome": "pass"}, {"outcome": "fail"}]}
    assert of_run(1, report, interrupted=False) == 1
    assert of_run(0, {"results": [{"outcome": "pass"}]}, interrupted=False) == 0
    assert of_run(1, {"results": [{"outcome": "error"}]}, interrupted=False) == 3
    assert of_run(4, None, interrupted=False) == 2           # pytest usage error
    assert of_run(5, {"results": []}, interrupted=False) == 2  # nothing selected
    assert of_run(2, {"results": []}, interrupted=False) == 3  # a suite failed to collect
    assert of_run(3, None, interrupted=False) == 3           # pytest's internal error
    assert of_run(6, None, interrupted=False) == 6
    assert of_run(2, report, interrupted=True) == 130


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "-q", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_run_exit_codes_without_a_farm(tmp_path: Path) -> None:
    gone = f"unix://{tmp_path}/no-such.sock"
    proc = _run("run", "--engine", gone, "--report-dir", str(tmp_path / "r3"), "--",
                "suites/test_round_trip.py", "--image", "basic")
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {r["outcome"] for r in json.loads((tmp_path / "r3" / "report.json").read_text())["results"]} == {"error"}
    proc = _run("run", "--engine", gone, "--report-dir", str(tmp_path / "r2"), "--", "-k", "no_such_check")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = _run("run", "--farm-engine", "docker-0.0-nothing", "--report-dir", str(tmp_path / "r2b"))
    assert proc.returncode == 2 and "unknown farm engine" in proc.stderr, proc.stderr[-2000:]


def test_run_exits_6_when_the_report_cannot_be_written_even_with_errors(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={full / 'filler'}", "bs=4k", "count=64"], capture_output=True)
        proc = _run("run", "--engine", f"unix://{tmp_path}/no-such.sock", "--report-dir", str(full), "--",
                    "suites/test_round_trip.py", "--image", "basic")
    finally:
        subprocess.run(["umount", str(full)], check=True)
    assert proc.returncode == 6, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("imgharness: error:")]
    # report.json, junit.xml and pytest's log, each kept elsewhere and said where
    assert len(lines) == 3 and all("No space left on device" in x for x in lines), proc.stderr[-2000:]
    kept = [Path(x.rsplit(" ", 1)[1]) for x in lines]
    assert sorted(k.name for k in kept) == ["junit.xml", "pytest.log", "report.json"]
    assert json.loads(next(k for k in kept if k.name == "report.json").read_text())["results"]
    assert "Traceback" not in proc.stderr
    for k in kept:
        shutil.rmtree(k.parent, ignore_errors=True)  # junit.xml and pytest.log share one temp dir


def test_run_exits_6_before_running_when_the_report_dir_cannot_be_made(tmp_path: Path) -> None:
    proc = _run("run", "--engine", f"unix://{tmp_path}/no-such.sock", "--report-dir", "/proc/imgharness-report")
    assert proc.returncode == 6, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.startswith("imgharness: error: cannot write to /proc/imgharness-report")
    assert "Traceback" not in proc.stderr


def _with_error(engine: str) -> dict[tuple[str, str, str], dict[str, object]]:
    return {("round-trip", engine, "basic"): {"outcome": "error", "message": "EngineUnavailable: gone"}}


def test_compare_exits_3_when_a_result_could_not_be_measured(tmp_path: Path) -> None:
    a = write(make_report(host="h1"), tmp_path / "a.json")
    b = write(make_report(host="h2", changes=_with_error(ENGINES[0])), tmp_path / "b.json")
    proc = _run("compare", str(a), str(b), "-o", str(tmp_path / "out"))
    assert proc.returncode == 3 and "1 results could not be measured" in proc.stdout, proc.stdout + proc.stderr


def test_compare_exits_6_when_it_cannot_write(tmp_path: Path) -> None:
    a = write(make_report(host="h1"), tmp_path / "a.json")
    b = write(make_report(host="h2"), tmp_path / "b.json")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output directory should be")
    proc = _run("compare", str(a), str(b), "-o", str(blocked / "out"))
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert proc.stderr.startswith("imgharness: error: cannot write") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_baseline_exits_3_when_a_result_could_not_be_measured(tmp_path: Path, side: str) -> None:
    engine = ENGINES[0]
    good = write(make_report(engines=(engine,)), tmp_path / "good.json")
    holed = write(make_report(engines=(engine,), changes=_with_error(engine)), tmp_path / "holed.json")
    base = tmp_path / "baseline.json"
    proc = _run("baseline", "record", "--engine", engine, "--from-report",
                str(holed if side == "baseline" else good), "-o", str(base))
    assert proc.returncode == (3 if side == "baseline" else 0), proc.stdout + proc.stderr
    assert base.exists(), "a baseline with holes is still written, and says so"
    proc = _run("baseline", "check", str(base), "--engine", engine, "--from-report",
                str(good if side == "baseline" else holed))
    assert proc.returncode == 3 and "could not be measured" in proc.stdout, proc.stdout + proc.stderr
