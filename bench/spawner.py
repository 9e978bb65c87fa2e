"""Runs the benchmark's child processes from a small process of its own, so that their peak RSS is theirs.

Linux carries a process's peak RSS across exec, and a child starts as a copy
(or, with vfork, a borrower) of its parent's memory: a child spawned by the
benchmark, which holds a 128 MiB content pool, would report at least that.
This process imports nothing beyond the standard library (run it with
``python -S``), reads one JSON request per line on stdin and answers one per
line on stdout:

    {"argv": [...], "timeout": s|null, "env": {...}|null, "capture": bool}
    → {"code": int|null, "wall": s, "cpu": s, "rss_mb": MB, "stdout": str}

``code`` is null when the child was killed at its timeout, with its process
group (it leads one): it and whatever it started, nothing else.
"""

import json
import os
import signal
import subprocess
import sys
import time


def run(argv, timeout, env, capture):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    out = proc.stdout.read().decode("utf-8", "replace") if capture else ""  # callers capture only small outputs
    deadline = None if timeout is None else start + timeout
    killed = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if proc.stdout is not None:
        proc.stdout.close()
    return {"code": None if killed else proc.returncode, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024, "stdout": out}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(run(req["argv"], req.get("timeout"), req.get("env"), req.get("capture", False))),
              flush=True)


if __name__ == "__main__":
    main()
