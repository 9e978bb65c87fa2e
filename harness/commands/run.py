"""`imgharness run`: the main job — the verification suites against the selected engines, with a report.

Runs `pytest suites/` (two workers by default) and writes ``<report-dir>/report.json``,
``junit.xml`` and ``index.html`` (also when checks fail); the default report dir is
``reports/<run-id>/``.  Progress goes to stderr: the farm coming up, then one
line per finished test in place of pytest's dots (``-q``: none).  Exit codes come
from the report's outcomes (`harness.report.exit_status`): 0 every check passed,
1 a check failed and every result was measured, 3 some result is an error, 2 a
usage error, 6 the report could not be written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness import progress
from harness.errors import ReportNotWritten, UsageError
from harness.report import exit_status
from harness.report.document import RUN_ID_ENV, new_run_id

if TYPE_CHECKING:
    from harness.engines.lease import FarmLease


def suites_dir() -> Path:
    """The suites' directory: ``suites/`` of a checkout, or ``harness/suites`` of an installed package
    (setup.py maps one to the other)."""
    return Path(str(importlib.resources.files("harness.suites")))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the verification suites and write a report")
    add_engine_options(p)
    p.add_argument("--report-dir", type=Path, help="default: reports/<run-id>/")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: more pytest arguments")
    p.set_defaults(func=run)


def add_engine_options(p: argparse.ArgumentParser, *, engine: bool = True) -> None:
    """The options that choose engines and how the suites run (shared with `baseline`)."""
    if engine:
        p.add_argument("--engine", action="append", default=[], help="engine to test (repeatable; default: the farm)")
        p.add_argument("--engines-file", help="inventory of engines (TOML)")
        p.add_argument("--farm-engine", action="append", default=[], help="only these farm engines")
    p.add_argument("--repeat", type=int, default=3, help="saves per check (default 3)")
    p.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (default 2; 0 = in process)")


def run(args: argparse.Namespace) -> int:
    run_id = new_run_id()
    report_dir = args.report_dir or Path("reports") / run_id
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    code = run_suites(report_dir, run_id=run_id, engines=args.engine, engines_file=args.engines_file,
                      farm_engines=args.farm_engine, repeat=args.repeat, workers=args.workers,
                      pytest_args=extra, quiet=args.quiet)
    if (report_dir / "report.json").exists():
        print(f"report: {report_dir / 'report.json'}")
    if (report_dir / "junit.xml").exists():
        print(f"junit: {report_dir / 'junit.xml'}")
    if (report_dir / "index.html").exists():
        print(f"html: {report_dir / 'index.html'}")
    return code


def run_suites(report_dir: Path, *, run_id: str | None = None, engines: Sequence[str] = (),
               engines_file: str | None = None, farm_engines: Sequence[str] = (), repeat: int = 3,
               workers: str = "2", pytest_args: Sequence[str] = (), quiet: bool = False,
               log: Path | None = None) -> int:
    """pytest over the suites into `report_dir` (report.json, junit.xml, index.html); the exit code the
    report's outcomes give (`harness.report.exit_status`).  With `log`, pytest's own output goes to that
    file, leaving stdout to the caller's answer."""
    suites = suites_dir()
    if not suites.is_dir():
        raise UsageError(f"no suites directory at {suites}")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("report.json", "index.html"):  # never render a previous run's report as this one's
            (report_dir / stale).unlink(missing_ok=True)
    except OSError as e:
        raise ReportNotWritten(f"cannot write to {report_dir} ({e.strerror or e}); nothing was run") from e
    extra = list(pytest_args)
    # pytest's junit writer fails with a traceback where the report dir cannot be written: it writes to a
    # temp dir, and the file is moved into place like the other reports (or kept there, saying so)
    junit = Path(tempfile.mkdtemp(prefix="imgharness-report-")) / "junit.xml"
    targets = [] if any(Path(a.split("::")[0]).exists() for a in extra if not a.startswith("-")) else [str(suites)]
    # the suites' own settings only: no pytest configuration of the directory the user runs from applies,
    # and node ids read suites/… whether the suites are a checkout's or an installed package's
    argv = [*targets, "-c", os.devnull, "--rootdir", str(suites.parent), "-p", "no:cacheprovider",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", "--report-dir", str(report_dir),
            f"--junitxml={junit}", f"--repeat={repeat}", "-rfE"]
    if workers != "0":
        argv += ["-n", workers, "--dist", "loadgroup"]
    if quiet:
        argv.append("-q")
    for e in engines:
        argv += ["--engine", e]
    if engines_file:
        argv += ["--engines-file", engines_file]
    for e in farm_engines:
        argv += ["--farm-engine", e]
    import pytest

    from harness.report.matrix_progress import MatrixProgress

    uses_farm = "--farm" in extra or (not engines and not engines_file and "--no-farm" not in extra)
    lease = _start_farm(farm_engines) if uses_farm else None
    previous = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id or new_run_id()
    interrupted = _Interrupted()
    try:
        with open(log, "w") if log else contextlib.nullcontext(sys.stdout) as out, contextlib.redirect_stdout(out):
            status = int(pytest.main(argv + extra, plugins=[interrupted] + ([] if quiet else [MatrixProgress()])))
    finally:
        _restore(RUN_ID_ENV, previous)
        if lease is not None:
            lease.release()
    if not _move_junit(junit, report_dir / "junit.xml"):
        status = exit_status.REPORT_NOT_WRITTEN
    # a report that could not be written was kept elsewhere, and the run said where
    report = None if status == exit_status.REPORT_NOT_WRITTEN else _write_html(report_dir)
    return exit_status.of_run(status, report, interrupted=interrupted.seen)


def _move_junit(written: Path, dest: Path) -> bool:
    """Move pytest's junit.xml into the report dir; False (it stays where it was, one line says so) if it
    cannot go there."""
    if not written.exists():
        written.parent.rmdir()
        return True
    try:
        shutil.copyfile(written, dest)
    except OSError as e:
        print(f"imgharness: error: cannot write {dest} ({e.strerror or e}); junit.xml is kept at {written}",
              file=sys.stderr)
        return False
    shutil.rmtree(written.parent)
    return True


class _Interrupted:
    """Tells a Ctrl-C from the other ways pytest ends "interrupted" (a suite that fails to collect)."""

    seen = False

    def pytest_keyboard_interrupt(self) -> None:
        self.seen = True


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


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _write_html(report_dir: Path) -> dict[str, Any] | None:
    """index.html from the run's report.json; returns the report (None when the run wrote none)."""
    from harness.report.document import load_report, write_or_keep
    from harness.report.html import render_html

    path = report_dir / "report.json"
    if not path.exists():
        print(f"imgharness: no {path}: the run stopped before its results were written; no index.html",
              file=sys.stderr)
        return None
    report = load_report(path)
    write_or_keep(report_dir / "index.html", render_html(report))
    return report
