"""Daemon restarts under load: every farm engine restarted N times by two processes at once, while each
also saves images, as two xdist workers do in a suite run.

    python bench/restarts.py [--rounds 20] [--engine ID ...] [--workers 2]

Runs a farm of its own (a fresh home under /tmp, the shared package cache),
started as `imgharness run` starts it: by this process, under a lease, before
the workers start; it then waits, as `run` waits for pytest.  Each worker takes
a lease too, owns every other engine (an xdist group per engine) and, round
after round, restarts each of its engines through
the suites' own path (`EngineSession.restart`), then saves the corpus image from
every engine it owns, the restarted one through the new connection; every save
is read back whole.  Meanwhile the other worker restarts and saves its own. A
restart that fails, a save that fails or is cut short, and a zombie left to
either worker or to this process is a failure.  Prints a line per engine and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.engines.farm import DEFAULT_ENGINES, Farm, default_home, package_cache
from harness.engines.lease import FarmLease

IMAGE = "basic"


def zombies_of(pid: int) -> list[int]:
    """Zombie processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def worker(engine_ids: list[str], all_ids: list[str], rounds: int, namespace: str, shared: Path) -> None:
    """One worker: prints one JSON line per restart and per save."""
    from harness.archive import read_archive
    from harness.corpus import BUSYBOX, build_corpus
    from harness.engines.session import EngineSession, EngineSlot
    from harness.errors import HarnessError
    from harness.subjects import RunSubjects, Subject

    def emit(**event: object) -> None:
        print(json.dumps(event), flush=True)

    slots = tuple(EngineSlot(i, None, True) for i in all_ids)
    session = EngineSession(slots, True, namespace)
    corpus = RunSubjects({name: Subject(name, path) for name, path in build_corpus(default_home(), [IMAGE]).items()},
                         namespace, shared / "corpus", BUSYBOX.provision(package_cache(default_home())) / "bin" / "busybox")
    mine = [s for s in slots if s.id in engine_ids]
    try:
        tags = {s.id: corpus.ensure(session.engine(s), IMAGE) for s in mine}
        for r in range(rounds):
            for slot in mine:
                start = time.monotonic()
                try:
                    session.restart(session.engine(slot))
                    session.errors.pop(slot.id, None)  # the next round tries again
                    emit(kind="restart", engine=slot.id, ok=True, s=round(time.monotonic() - start, 2))
                except HarnessError as e:
                    session.errors.pop(slot.id, None)
                    emit(kind="restart", engine=slot.id, ok=False, s=round(time.monotonic() - start, 2), error=str(e))
                for other in mine:
                    dest = shared / f"save-{os.getpid()}-{other.id}.tar"
                    start = time.monotonic()
                    try:
                        digest = session.engine(other).save(tags[other.id], dest)
                        read_archive(dest)
                        emit(kind="save", engine=other.id, ok=True, s=round(time.monotonic() - start, 2), digest=digest)
                    except HarnessError as e:
                        emit(kind="save", engine=other.id, ok=False, error=str(e))
                    finally:
                        dest.unlink(missing_ok=True)
            zombies = zombies_of(os.getpid())
            if zombies:
                emit(kind="zombies", ok=False, round=r, pids=zombies)
    finally:
        session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", action="append", default=[], help="farm engine ids (default: all)")
    parser.add_argument("--worker", nargs=4, metavar=("IDS", "ALL", "NAMESPACE", "SHARED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        ids, all_ids, namespace, shared = args.worker
        worker(ids.split(","), all_ids.split(","), args.rounds, namespace, Path(shared))
        return 0

    ids = args.engine or [e.id for e in DEFAULT_ENGINES]
    cache = package_cache(default_home())
    home = Path(tempfile.mkdtemp(prefix="imgh-rs-", dir="/tmp"))  # short: unix socket paths stop at 108 bytes
    shared = home / "shared"
    shared.mkdir()
    env = dict(os.environ, IMGHARNESS_HOME=str(home), IMGHARNESS_PACKAGES=str(cache))
    namespace = f"imgharness-run-stress{os.getpid()}"
    started = time.monotonic()
    farm = Farm(home=home, cache=cache)
    os.environ.update(env)  # the lease's farm and the workers' must be the same
    lease = FarmLease(farm, token=f"bench-{os.getpid()}")
    down = [st for st in lease.acquire(ids) if not st.healthy]
    if down:
        print(f"farm did not come up: {[(st.id, st.error) for st in down]}", file=sys.stderr)
        return 1
    logs = [shared / f"worker-{w}.jsonl" for w in range(args.workers)]
    procs = [subprocess.Popen([sys.executable, __file__, "--rounds", str(args.rounds), "--worker",
                               ",".join(ids[w::args.workers]), ",".join(ids), namespace, str(shared)],
                              env=env, stdout=log.open("w"))
             for w, log in enumerate(logs)]
    try:
        codes = [proc.wait() for proc in procs]
        events = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
        if zombies := zombies_of(os.getpid()):
            events.append({"kind": "zombies", "ok": False, "pids": zombies})
    finally:
        lease.release()
        farm.down()
        shutil.rmtree(home, ignore_errors=True)
    wall = time.monotonic() - started
    failures = [e for e in events if not e["ok"]]
    print(f"{'engine':<26} {'restarts':>8} {'failed':>6} {'median s':>8} {'max s':>6} {'saves':>6} {'failed':>6}")
    for engine in ids:
        restarts = [e for e in events if e["kind"] == "restart" and e["engine"] == engine]
        saves = [e for e in events if e["kind"] == "save" and e["engine"] == engine]
        times = [e["s"] for e in restarts if e["ok"]] or [0.0]
        print(f"{engine:<26} {len(restarts):>8} {sum(not e['ok'] for e in restarts):>6} "
              f"{statistics.median(times):>8.2f} {max(times):>6.2f} {len(saves):>6} {sum(not e['ok'] for e in saves):>6}")
    for e in failures:
        print(f"FAILED {e['kind']} {e.get('engine', '')}: {e.get('error') or e.get('pids')}")
    print(f"{len(ids)} engines × {args.rounds} restarts, {args.workers} workers: {len(failures)} failures, "
          f"worker exits {codes}, {wall:.0f} s")
    return 1 if failures or any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
