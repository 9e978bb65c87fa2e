"""`imgharness run`: the main job — the verification suites against the selected engines, with a report.

Runs `pytest suites/` (two workers by default) and writes ``<report-dir>/report.json``,
``junit.xml`` and ``index.html`` (also when checks fail); the default report dir is
``reports/<run-id>/``.  Progress goes to stderr: the farm coming up, then one
line per finished test in place of pytest's dots (``-q``: none); pytest's own
output goes to ``pytest.log`` there.  Then the run's summary (`harness.report.summary`).  Exit codes are
pytest's: 0 every check passed, 1 some check failed or errored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Sequence

from harness import progress
from harness.errors import UsageError
from harness.plugins import options
from harness.report.report_json import new_run_id

if TYPE_CHECKING:
    from harness.engines.lease import FarmLease

SUITES = Path(__file__).resolve().parents[2] / "suites"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the verification suites and write a report")
    add_engine_options(p)
    p.add_argument("--report-dir", type=Path, help="default: reports/<run-id>/")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: more pytest arguments")
    p.set_defaults(func=run)


def add_engine_options(p: argparse.ArgumentParser, *, engine: bool = True) -> None:
    """The options that choose engines and how the suites run (shared with `baseline`), as the pytest plugin
    declares them (`harness.plugins.options`)."""
    for option in (options.ENGINE, options.ENGINES_FILE, options.FARM_ENGINE) if engine else ():
        option.add_to(p)
    options.REPEAT.add_to(p)
    p.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (default 2; 0 = in process)")


def run(args: argparse.Namespace) -> int:
    run_id = new_run_id()
    report_dir = args.report_dir or Path("reports") / run_id
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    code = run_suites(report_dir, run_id=run_id, engines=args.engine, engines_file=args.engines_file,
                      farm_engines=args.farm_engine, repeat=args.repeat, workers=args.workers,
                      pytest_args=extra, quiet=args.quiet, log=report_dir / "pytest.log")
    from harness.plugins.checks import CHECKS
    from harness.report.summary import run_summary

    print(run_summary(report_dir, CHECKS), end="")
    return code


def run_suites(report_dir: Path, *, run_id: str | None = None, engines: Sequence[str] = (),
               engines_file: str | None = None, farm_engines: Sequence[str] = (), repeat: int = 3,
               workers: str = "2", pytest_args: Sequence[str] = (), quiet: bool = False,
               log: Path | None = None) -> int:
    """pytest over the suites into `report_dir` (report.json, junit.xml, index.html); pytest's exit code.
    With `log`, pytest's own output goes to that file, leaving stdout to the caller's answer."""
    if not SUITES.is_dir():
        raise UsageError(f"no suites directory at {SUITES}")
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "index.html"):  # never render a previous run's report as this one's
        (report_dir / stale).unlink(missing_ok=True)
    extra = list(pytest_args)
    targets = [] if any(Path(a.split("::")[0]).exists() for a in extra if not a.startswith("-")) else [str(SUITES)]
    argv = [*targets, "-p", "no:cacheprovider", *options.REPORT_DIR.argv(report_dir),
            *options.RUN_ID.argv(run_id or new_run_id()), f"--junitxml={report_dir / 'junit.xml'}",
            *options.REPEAT.argv(repeat), "-rfE"]
    if workers != "0":
        argv += ["-n", workers, "--dist", "loadgroup"]
    argv += ["-q"] if quiet else options.PROGRESS_LINES.argv(True)
    argv += [*options.ENGINE.argv(engines), *options.ENGINES_FILE.argv(engines_file),
             *options.FARM_ENGINE.argv(farm_engines)]
    import pytest

    uses_farm = "--farm" in extra or (not engines and not engines_file and "--no-farm" not in extra)
    lease = _start_farm(farm_engines) if uses_farm else None
    try:
        with _open_log(log) if log else contextlib.nullcontext(sys.stdout) as out, contextlib.redirect_stdout(out):
            code = int(pytest.main(argv + extra))
    finally:
        if lease is not None:
            lease.release()
    _write_html(report_dir)
    return code


def _open_log(path: Path) -> IO[str]:
    """`path` for pytest's output, or a temp file (one line says where) when the report dir refuses it: the
    run goes on, and the report is kept elsewhere the same way if it cannot be written either."""
    try:
        return open(path, "w")
    except OSError as e:
        kept = Path(tempfile.mkdtemp(prefix="imgharness-log-")) / path.name
        print(f"imgharness: cannot write {path} ({e.strerror or e}); pytest's output goes to {kept}", file=sys.stderr)
        return open(kept, "w")


def _start_farm(ids: Sequence[str]) -> FarmLease:
    """Bring the farm up here, with progress, under a lease of its own: the test processes find it
    running, and the last lease given back stops what leases started, as before."""
    from harness.engines.farm import Farm
    from harness.engines.lease import FarmLease

    lease = FarmLease(Farm(), token=f"run-{os.getpid()}")
    progress.say("farm: checking engines")
    for st in lease.acquire(list(ids) or None, progress.say):
        progress.say(f"farm: {st.id} {'ready' if st.healthy else 'FAILED: ' + (st.error or 'not running')}")
    return lease


def _write_html(report_dir: Path) -> None:
    from harness.plugins.checks import CHECKS
    from harness.report.report_json import load_report, write_atomically
    from harness.report.html import render_html

    report = report_dir / "report.json"
    if not report.exists():
        print(f"imgharness: no {report}: the run stopped before its results were written; no index.html",
              file=sys.stderr)
        return
    write_atomically(report_dir / "index.html", render_html(load_report(report), CHECKS))
