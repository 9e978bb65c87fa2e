"""Starting and stopping the daemons the farm owns, by pid and only those.

A daemon is started in its own session with its own data root, exec root,
pidfile, unix socket and log file.  Stopping walks the daemon's process tree
(dockerd starts its own containerd and shims) *before* signalling it, so that
every process we started, and nothing else, is ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.errors import EngineUnavailable


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one daemon process."""

    argv: tuple[str, ...]
    env: dict[str, str]
    log: Path
    cwd: Path


def start(launch: Launch) -> int:
    """Start a daemon detached from our session; return its pid."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    with open(launch.log, "ab") as log:
        try:
            proc = subprocess.Popen(
                launch.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=launch.env, cwd=launch.cwd, start_new_session=True, close_fds=True)
        except OSError as e:
            raise EngineUnavailable(f"cannot start {launch.argv[0]}: {e}") from e
    return proc.pid


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot): tells a pid apart from a reused one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """All processes below `pid`, depth first, read from /proc/<pid>/task/*/children."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            for k in kids:
                if k not in found:
                    found.append(k)
                    stack.append(k)
    return found


def session_members(leader: int, born_after: int | None) -> list[int]:
    """Processes still in the session `leader` started (ours, since we start every daemon with setsid),
    born after it: what a killed daemon leaves behind (its containerd, shims) even once reparented."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, sid, started = int(stat.parent.name), int(fields[3]), int(fields[19])
        if sid == leader and pid != leader and (born_after is None or started >= born_after):
            members.append(pid)
    return members


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid: int, *, started: int | None = None, timeout: float = 30.0) -> None:
    """Stop `pid` and every process below it: SIGTERM, wait, then SIGKILL what is left.

    `started` is the start time recorded when we launched it.  A daemon that was
    killed leaves its session behind (containerd, shims): those are stopped too.
    If the pid now belongs to another process (reused), that process is never
    signalled, and of the session only what was born before it counts as ours.
    """
    reused = alive(pid) and started is not None and start_time(pid) != started
    leftovers = []
    if started is not None:
        newcomer = start_time(pid) if reused else None
        leftovers = [(p, t) for p in session_members(pid, started)
                     if (t := start_time(p)) is not None and (newcomer is None or t < newcomer)]
    if reused or not alive(pid):
        _stop_all(leftovers)
        return
    tree = descendants(pid)
    owned = [(p, start_time(p)) for p in tree] + [m for m in leftovers if m[0] not in tree]
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if alive(pid):
        _signal(pid, signal.SIGKILL)
    _reap(pid)
    _stop_all(owned)  # dockerd stops its containerd itself; what is still alive goes now
    for _ in range(50):
        _reap(pid)
        if not alive(pid):
            break
        time.sleep(0.1)


def _stop_all(procs: Sequence[tuple[int, int | None]], grace: float = 10.0) -> None:
    """SIGTERM, a grace period, then SIGKILL — for each (pid, start time) still the same process."""
    rest = [(p, t) for p, t in procs if alive(p) and start_time(p) == t]
    for p, _ in rest:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(p) for p, _ in rest) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p, t in rest:
        if alive(p) and start_time(p) == t:
            _signal(p, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
