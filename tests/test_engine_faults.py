"""Engine faults during a real run: a daemon killed by pid, a socket that disappears, a full report directory.

Each scenario runs the main job (`python -m harness run`) against a farm of its
own (its own home, shared package cache), so killing daemons never touches the
farm other tests use.  The run must finish the healthy engines, mark the broken
ones `error` with what happened, and leave no daemon and no mount behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.engines import daemon
from harness.engines.farm import Farm
from harness.settings import default_home, package_cache

pytestmark = pytest.mark.engines  # farms of their own, broken on purpose

KILLED, VANISHED, HEALTHY = "docker-28.5.2-overlay2", "docker-26.1.5-overlay2", "docker-28.5.2-containerd"


@pytest.fixture
def own_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="imgh-", dir="/tmp"))  # short: unix socket paths stop at 108 bytes
    try:
        yield home
    finally:
        Farm(home=home, cache=package_cache(default_home())).down()
        shutil.rmtree(home, ignore_errors=True)


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, IMGHARNESS_HOME=str(home), IMGHARNESS_PACKAGES=str(package_cache(default_home())))


def _our_processes(home: Path) -> list[int]:
    """Live processes whose command line or working directory points into `home`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if (str(home) in cmd or cwd.startswith(str(home))) and daemon.alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def _mounts_below(*roots: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [p for p in (line.split()[4] for line in lines) if any(p.startswith(str(r)) for r in roots)]


def _break_when_busy(farm: Farm, stop: threading.Event) -> dict[str, Any]:
    """Once each victim has loaded a run image (a test is under way), kill one daemon and delete the
    other's socket.  Returns what was done, for the assertions."""
    done: dict[str, Any] = {}
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline and len(done) < 2:
        for st in farm.status([KILLED, VANISHED]):
            if st.id in done or not st.healthy:
                continue
            sock = st.endpoint[len("unix://"):]
            out = subprocess.run(["docker", "-H", st.endpoint, "images", "--format", "{{.Repository}}"],
                                 capture_output=True, text=True, timeout=30).stdout
            if "imgharness-run-" not in out:
                continue
            if st.id == KILLED:
                assert st.pid is not None
                done[st.id] = {"pid": st.pid, "tree": daemon.descendants(st.pid)}
                os.kill(st.pid, signal.SIGKILL)
            else:
                os.unlink(sock)
                done[st.id] = {"socket": sock}
        time.sleep(0.2)
    return done


def test_killed_daemon_and_vanished_socket_are_errors_and_the_rest_finishes(own_home: Path) -> None:
    farm = Farm(home=own_home, cache=package_cache(default_home()))
    report_dir = own_home / "report"
    stop = threading.Event()
    broken: dict[str, Any] = {}
    saboteur = threading.Thread(target=lambda: broken.update(_break_when_busy(farm, stop)))
    saboteur.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "-q", "run", "--report-dir", str(report_dir), "--repeat", "4",
             *(a for e in (KILLED, VANISHED, HEALTHY) for a in ("--farm-engine", e)),
             "--", "--image", "large", "--image", "basic", "-k", "repeated_saves or round_trip"],
            capture_output=True, text=True, timeout=900, env=_env(own_home))
    finally:
        stop.set()
        saboteur.join()
    assert set(broken) == {KILLED, VANISHED}, f"the saboteur never saw both victims busy: {broken}"
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    report = json.loads((report_dir / "report.json").read_text())
    by_engine: dict[str, list[dict[str, Any]]] = {}
    for r in report["results"]:
        by_engine.setdefault(r["engine"], []).append(r)
    for victim in (KILLED, VANISHED):
        errors = [r for r in by_engine[victim] if r["outcome"] == "error"]
        assert errors, f"{victim}: no result marked error: {[r['outcome'] for r in by_engine[victim]]}"
        assert all(r["message"] for r in errors)
    healthy = by_engine[HEALTHY]
    assert len(healthy) == 4 and all(r["outcome"] in ("pass", "fail") for r in healthy), healthy
    leftovers = [p for p in broken[KILLED]["tree"] if daemon.alive(p)]
    assert leftovers == [] and _our_processes(own_home) == [], "daemons of the run are still alive"
    run_dirs = [farm.run_dir(farm.engines[e]) for e in (KILLED, VANISHED, HEALTHY)]
    assert _mounts_below(own_home, *run_dirs) == [], "mounts left behind"


def test_a_full_report_directory_keeps_the_results_and_says_so(own_home: Path) -> None:
    report_dir = own_home / "full"
    report_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(report_dir)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={report_dir / 'filler'}", "bs=4k", "count=64"],
                       capture_output=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "suites/test_round_trip.py", "-p", "no:cacheprovider", "-q",
             "--farm-engine", HEALTHY, "--image", "basic", "--report-dir", str(report_dir)],
            capture_output=True, text=True, timeout=600, env=_env(own_home), cwd=Path(__file__).parents[1])
    finally:
        subprocess.run(["umount", str(report_dir)], check=True)
    assert proc.returncode == 6, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("imgharness: error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr[-2000:]
    kept = Path(lines[0].rsplit(" ", 1)[1])
    results = json.loads(kept.read_text())["results"]
    assert [r["outcome"] for r in results] == ["pass"]
    shutil.rmtree(kept.parent)
