"""What the remote-engine tests share: a dockerd of their own, a free port, one round-trip suite run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from harness.engines import daemon
from harness.engines.farm import DEFAULT_ENGINES
from harness.settings import default_home, package_cache

ENGINE = "docker-28.5.2-overlay2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dockerd_launch(d: Path, *args: str) -> daemon.Launch:
    """How to start the farm's `ENGINE` binaries with everything under `d`, on ``d/docker.sock`` plus `args`."""
    fe = next(e for e in DEFAULT_ENGINES if e.id == ENGINE)
    prefix = fe.source.provision(package_cache(default_home()))
    env = dict(os.environ, PATH=f"{prefix / 'usr/sbin'}:{prefix / 'usr/bin'}:/usr/sbin:/usr/bin:/sbin:/bin")
    argv = (str(prefix / "usr/sbin/dockerd"), "--data-root", str(d / "data"), "--exec-root", str(d / "exec"),
            "--pidfile", str(d / "docker.pid"), "-H", f"unix://{d / 'docker.sock'}", *args,
            "--bridge=none", "--iptables=false")
    return daemon.Launch(argv, env, d / "dockerd.log", d)


def run_round_trip(endpoint: str, report: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`harness run --engine ENDPOINT` of the round-trip check on the basic image, in process (-n 0)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", "--engine", endpoint, "-n", "0", "--report-dir", str(report),
         "--", "--no-farm", "suites/test_round_trip.py", "--image", "basic"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, **(env or {})),
        cwd=Path(__file__).parents[1])
