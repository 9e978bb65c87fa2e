"""Daemon restarts that always work: what a restart leaves behind never stops the next start.

Each test runs a farm of its own (its own home, the shared package cache).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines import daemon
from harness.engines.farm import Farm, default_home, package_cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_farm() -> Iterator[Farm]:
    home = Path(tempfile.mkdtemp(prefix="imgh-", dir="/tmp"))  # short: unix socket paths stop at 108 bytes
    farm = Farm(home=home, cache=package_cache(default_home()))
    try:
        yield farm
    finally:
        farm.down()
        shutil.rmtree(home, ignore_errors=True)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("engine_id", ["docker-20.10.24-overlay2", "docker-28.5.2-containerd"])
def test_a_pid_file_naming_a_zombie_does_not_stop_a_restart(own_farm: Farm, engine_id: str) -> None:
    """dockerd refuses to start while its pid file names a pid that exists (and its containerd supervisor
    waits on a containerd pid that exists): a zombie exists until its parent reaps it.  A daemon killed
    while another process, which never reaps, is its parent leaves exactly that."""
    [st] = own_farm.up([engine_id])
    assert st.healthy and st.pid, st.error
    zombie = subprocess.Popen(["true"])  # ours, and not reaped until the end: a zombie
    try:
        deadline = time.monotonic() + 10
        while _state(zombie.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(zombie.pid) == "Z"
        daemon.stop(st.pid, started=st.started)  # gone, but it could not remove its own pid file
        fe = own_farm.engines[engine_id]
        pid_files = [own_farm.root / engine_id / "docker.pid",
                     own_farm.run_dir(fe) / "exec" / "containerd" / "containerd.pid"]
        for pid_file in pid_files:
            pid_file.write_text(f"{zombie.pid}\n")
        after = own_farm.restart(engine_id)
        assert after.healthy, after.error
        assert after.pid != st.pid and daemon.alive(after.pid)
        assert _state(zombie.pid) == "Z", "the zombie must have been left alone, only its pid file released"
    finally:
        zombie.wait()


def test_a_killed_daemon_restarts_and_its_containerd_is_gone(own_farm: Farm) -> None:
    """After SIGKILL dockerd's pid file stays behind and the containerd it started keeps running: the
    restart ends that containerd before the new daemon starts its own."""
    [st] = own_farm.up(["docker-26.1.5-containerd"])
    assert st.healthy and st.pid, st.error
    tree = daemon.descendants(st.pid)
    assert tree, "dockerd should have started its own containerd"
    os.kill(st.pid, signal.SIGKILL)
    after = own_farm.restart("docker-26.1.5-containerd")
    assert after.healthy, after.error
    assert [p for p in tree if daemon.alive(p)] == [], "the old containerd was left running"


def test_restarts_under_load_by_two_processes_never_fail() -> None:
    """`bench/restarts.py` for two rounds: two workers restart every engine of a farm the parent started
    and save from all of them; no restart or save fails, no zombie is left to any of them."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "restarts.py"), "--rounds", "2"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " 0 failures" in proc.stdout, proc.stdout
