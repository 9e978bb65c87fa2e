"""What a suite run on a large user image costs the harness, next to what it costs the engine.

    python bench/suite_cost.py [--size-gib 1] [--engine docker-28.5.2-containerd] [--gzip] [--keep DIR]

Writes a user image of `--size-gib` GiB of layer content (`bench.generate`: a Docker >= 25 save of three
layers shaped like real images), runs ``harness run --image-archive big=… -- --image big`` on one farm
engine (every check that takes an image), and prints, from the run's own report and the CPU time of its
processes: the run's wall time, the seconds the engine spent saving, loading, pushing and pulling (each
test's ``engine_s`` metric, measured around the engine's API calls), the CPU time of the tools the checks
run (``tool_cpu_s``: skopeo compressing and copying), and the harness's own CPU time (the run and its
pytest workers, less the tools': reading, hashing, diffing, writing canonical archives).  Goal: the harness's
own work at most 10 % of the run's wall time.  The engine's daemons are not children of the run (they
start through a double fork), so their CPU is not counted as the harness's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import GiB, Pools, generate_pair  # noqa: E402


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Figures:
    exit: int
    wall_s: float
    harness_cpu_s: float  # the run's processes and their children
    tool_cpu_s: float     # of that, the tools' (skopeo)
    engine_s: dict[str, float]
    outcomes: dict[str, int]
    by_check: dict[str, float]  # the harness's own CPU in each check's tests (worker processes, setup included)


def measure(archive: Path, engine: str, report_dir: Path) -> Figures:
    """One suite run on `archive`; the figures of its report and its processes."""
    cpu_before, started = _children_cpu(), time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "-q", "run", "--farm-engine", engine,
                           "--image-archive", f"big={archive}", "--report-dir", str(report_dir), "--",
                           "--image", "big"], capture_output=True, text=True)
    wall, cpu = time.monotonic() - started, _children_cpu() - cpu_before
    report = json.loads((report_dir / "report.json").read_text())
    engine_s: Counter[str] = Counter()
    for result in report["results"]:
        for kind, seconds in (result["metrics"].get("engine_s") or {}).items():
            engine_s[kind] += seconds
    tools = sum(r["metrics"].get("tool_cpu_s", 0) for r in report["results"])
    by_check: Counter[str] = Counter()
    for result in report["results"]:
        by_check[result["check"]] += result["metrics"].get("harness_cpu_s", 0)
    return Figures(proc.returncode, wall, cpu, tools, dict(engine_s),
                   dict(Counter(r["outcome"] for r in report["results"])), dict(by_check))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--engine", default="docker-28.5.2-containerd", help="farm engine id")
    parser.add_argument("--gzip", action="store_true", help="gzip the layers (as a registry serves them)")
    parser.add_argument("--keep", type=Path, help="keep the image and the report here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="imgharness-suite-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    pair = generate_pair(work / "image", int(args.size_gib * GiB), gzip=args.gzip, pools=Pools())
    os.unlink(pair.b)
    size = pair.a.stat().st_size
    f = measure(pair.a, args.engine, work / "report")
    engine_total = sum(f.engine_s.values())
    print(f"user image: {size / GiB:.2f} GiB archive, {args.size_gib:g} GiB of layer content, "
          f"{'gzip' if args.gzip else 'uncompressed'} layers; engine {args.engine}")
    print(f"run: {sum(f.outcomes.values())} results {f.outcomes}, exit {f.exit}")
    print(f"{'wall time of the run':34} {f.wall_s:8.1f} s")
    for kind, seconds in sorted(f.engine_s.items()):
        print(f"{'engine ' + kind:34} {seconds:8.1f} s")
    print(f"{'engine, all':34} {engine_total:8.1f} s  ({100 * engine_total / f.wall_s:.0f} % of the wall time; "
          "two workers wait on it side by side)")
    own = f.harness_cpu_s - f.tool_cpu_s
    print(f"{'CPU of the run and its children':34} {f.harness_cpu_s:8.1f} s")
    print(f"{'  of which tools (skopeo)':34} {f.tool_cpu_s:8.1f} s")
    print(f"{'  the harness own':34} {own:8.1f} s  ({100 * own / f.wall_s:.1f} % of the wall time; goal ≤ 10 %)")
    for check, seconds in sorted(f.by_check.items(), key=lambda kv: -kv[1]):
        print(f"{'    in ' + check:34} {seconds:8.1f} s")
    print(f"{'    outside the tests':34} {own - sum(f.by_check.values()):8.1f} s  (start-up, collection, the "
          "image's copy under the run's tags, reports)")
    if not args.keep:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    else:
        print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
