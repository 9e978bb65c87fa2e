"""Starting and stopping the daemons the farm owns, by pid and only those.

A daemon is started in its own session with its own data root, exec root,
pidfile, unix socket and log file, through a short-lived intermediate process
(a double fork): the daemon is reparented to init, which reaps it when it exits,
so it never lingers as a zombie of whichever test process started it.  Under
xdist one worker may restart a daemon another started; moby's pid-file check
takes a zombie for a running daemon ("pid file found, ensure docker is not
running").  Stopping walks the daemon's process tree (dockerd starts its own
containerd and shims) *before* signalling it, so that every process we started,
and nothing else, is ended, and returns once all of them are gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


# The intermediate (a Python of its own, started with ours and not the daemon's environment, whose
# LD_LIBRARY_PATH may point at another suite's libraries): read the daemon's environment from stdin,
# fork, let the child become a session leader and exec the daemon (stdin /dev/null, output to the log,
# which is the intermediate's stderr), print the child's pid and exit at once.
_DETACH = """
import json, os, sys
env = json.loads(sys.stdin.read())
pid = os.fork()
if pid == 0:
    os.setsid()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    try:
        os.execvpe(sys.argv[1], sys.argv[1:], env)
    except OSError as e:
        sys.stderr.write(f"cannot start {sys.argv[1]}: {e}\\n")
        os._exit(127)
print(pid, flush=True)
"""


def start(launch: Launch) -> int:
    """Start a daemon detached from our session and from our process (init is its parent); return its pid."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    with open(launch.log, "ab") as log:
        try:
            out, _ = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _DETACH, *launch.argv], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, cwd=launch.cwd, close_fds=True,
            ).communicate(json.dumps(launch.env).encode(), timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            raise EngineUnavailable(f"cannot start {launch.argv[0]}: {e}") from e
    try:
        return int(out)
    except ValueError:
        raise EngineUnavailable(f"cannot start {launch.argv[0]}: see {launch.log}") from None


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


def stop(pid: int, *, started: int | None = None, timeout: float = 30.0) -> None:
    """Stop `pid` and every process below it: SIGTERM, wait, then SIGKILL what is left; return once all
    of them are gone (a zombie counts as gone: it holds nothing but its pid, and init reaps it).

    `started` is the start time recorded when we launched it.  A daemon that was
    killed leaves its session behind (containerd, shims): those are stopped too.
    If the pid now belongs to another process (reused), that process is never
    signalled, and of the session only what was born before it counts as ours.
    Raises `EngineUnavailable` when a process survives SIGKILL (stuck in the kernel).
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
    _wait_gone([pid], timeout)
    # dockerd stops its containerd itself; what is still alive (the daemon too, if it hung) goes now
    _stop_all([(pid, start_time(pid)), *owned])


def _stop_all(procs: Sequence[tuple[int, int | None]], grace: float = 10.0) -> None:
    """SIGTERM, a grace period, then SIGKILL — for each (pid, start time) still the same process — and
    wait until they are gone."""
    rest = [(p, t) for p, t in procs if alive(p) and start_time(p) == t]
    for p, _ in rest:
        _signal(p, signal.SIGTERM)
    if _wait_gone([p for p, _ in rest], grace):
        return
    for p, t in rest:
        if alive(p) and start_time(p) == t:
            _signal(p, signal.SIGKILL)
    if not _wait_gone([p for p, _ in rest], grace):
        stuck = [p for p, _ in rest if alive(p)]
        raise EngineUnavailable(f"processes {stuck} are still running after SIGKILL")


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    """Wait up to `timeout` seconds for every pid to exit; True when they all did."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def release_pid_file(path: Path) -> None:
    """Remove a pid file whose process is gone or a zombie.  dockerd refuses to start while its pid file
    names a pid that still exists, and a zombie still exists until its parent reaps it; dockerd's
    containerd supervisor takes one for a running containerd and waits on it.  A pid file naming a live
    process is left for the daemon to refuse."""
    try:
        pid = int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pid = 0
    if not pid or not alive(pid):
        path.unlink(missing_ok=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
