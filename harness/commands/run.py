"""`imgharness run`: the main job — the verification suites against the selected engines, with a report.

Runs `pytest suites/` (two workers by default) and writes ``<report-dir>/report.json``
and ``junit.xml``; the default report dir is ``reports/<run-id>/``.  Exit codes
are pytest's: 0 every check passed, 1 some check failed or errored.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import pytest

from harness.errors import UsageError

SUITES = Path(__file__).resolve().parents[2] / "suites"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the verification suites and write a report")
    p.add_argument("--engine", action="append", default=[], help="engine to test (repeatable; default: the farm)")
    p.add_argument("--engines-file", help="inventory of engines (TOML)")
    p.add_argument("--farm-engine", action="append", default=[], help="only these farm engines")
    p.add_argument("--repeat", type=int, default=3, help="saves per check (default 3)")
    p.add_argument("--report-dir", type=Path, help="default: reports/<run-id>/")
    p.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (default 2; 0 = in process)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: more pytest arguments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not SUITES.is_dir():
        raise UsageError(f"no suites directory at {SUITES}")
    report_dir = args.report_dir or Path("reports") / (time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6])
    report_dir.mkdir(parents=True, exist_ok=True)
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    targets = [] if any(Path(a.split("::")[0]).exists() for a in extra if not a.startswith("-")) else [str(SUITES)]
    argv = [*targets, "-p", "no:cacheprovider", "--report-dir", str(report_dir),
            f"--junitxml={report_dir / 'junit.xml'}", f"--repeat={args.repeat}", "-rfE"]
    if args.workers != "0":
        argv += ["-n", args.workers, "--dist", "loadgroup"]
    if args.quiet:
        argv.append("-q")
    for e in args.engine:
        argv += ["--engine", e]
    if args.engines_file:
        argv += ["--engines-file", args.engines_file]
    for e in args.farm_engine:
        argv += ["--farm-engine", e]
    code = int(pytest.main(argv + extra))
    print(f"report: {report_dir / 'report.json'}")
    return code
