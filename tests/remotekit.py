"""What the remote-engine tests share: one round-trip suite run against an engine given by URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_round_trip(endpoint: str, report: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`harness run --engine ENDPOINT` of the round-trip check on the basic image, in process (-n 0)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", "--engine", endpoint, "-n", "0", "--report-dir", str(report),
         "--", "--no-farm", "suites/test_round_trip.py", "--image", "basic"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, **(env or {})),
        cwd=Path(__file__).parents[1])
