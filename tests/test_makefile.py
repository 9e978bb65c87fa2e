"""`make report` reads `run`'s exit status: 1 is a finished run whose engines differ, not a broken job."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("status, make_status, said", [(0, 0, False), (1, 0, True), (3, 2, False), (6, 2, False)])
def test_make_report_takes_exit_1_as_engines_that_differ(tmp_path: Path, status: int, make_status: int,
                                                         said: bool) -> None:
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    fake = tmp_path / "python"  # stands in for `python -m harness run`, exiting as a run would
    fake.write_text(f"#!/bin/sh\necho \"ran: $*\"\nexit {status}\n")
    fake.chmod(0o755)
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), "-o", "setup", "report", f"PYTHON={fake}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == make_status, proc.stdout + proc.stderr
    assert "ran: -m harness run" in proc.stdout
    assert ("the run is complete; the engines differ" in proc.stdout) == said
