"""`imgharness run`: the main job — the verification suites against the selected engines, with a report.

Runs `pytest suites/` (two workers by default) and writes ``<report-dir>/report.json``,
``junit.xml`` and ``index.html`` (also when checks fail); the default report dir is
``reports/<run-id>/``.  Progress goes to stderr: the farm coming up, then one
line per finished test in place of pytest's dots (``-q``: none); pytest's own
output goes to ``pytest.log`` there.  Then the run's summary (`harness.report.summary`).
Exit codes come from the report's outcomes (`harness.report.exit_status`): 0 every
check passed, 1 a check failed and every result was measured, 3 some result is an
error, 2 a usage error, 6 the report could not be written.
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
from harness.plugins import options
from harness.report import exit_status
from harness.report.report_json import new_run_id

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
    """The options that choose engines and how the suites run (shared with `baseline`), as the pytest plugin
    declares them (`harness.plugins.options`)."""
    for option in (options.ENGINE, options.ENGINES_FILE, options.FARM_ENGINE) if engine else ():
        option.add_to(p)
    for option in (options.IMAGE_ARCHIVE, options.IMAGE_REF, options.REPEAT):
        option.add_to(p)
    p.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (default 2; 0 = in process)")


def run(args: argparse.Namespace) -> int:
    from harness.subjects import user_images

    user_images(args.image_archive, args.image_ref, args.engines_file)  # a wrong one is a usage error, before any engine
    run_id = new_run_id()
    report_dir = args.report_dir or Path("reports") / run_id
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    code = run_suites(report_dir, run_id=run_id, engines=args.engine, engines_file=args.engines_file,
                      farm_engines=args.farm_engine, image_archives=args.image_archive, image_refs=args.image_ref,
                      repeat=args.repeat, workers=args.workers,
                      pytest_args=extra, quiet=args.quiet, log=report_dir / "pytest.log")
    from harness.plugins.checks import CHECKS
    from harness.report.summary import run_summary

    print(run_summary(report_dir, CHECKS), end="")
    return code


def run_suites(report_dir: Path, *, run_id: str | None = None, engines: Sequence[str] = (),
               engines_file: str | None = None, farm_engines: Sequence[str] = (), image_archives: Sequence[str] = (),
               image_refs: Sequence[str] = (), repeat: int = 3,
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
    # no plugin the suites do not use: hypothesis' (installed with the test extras) imports all of hypothesis at
    # the end of a run, 1.8 s of CPU in every run for nothing
    argv = [*targets, "-c", os.devnull, "--rootdir", str(suites.parent), "-p", "no:cacheprovider",
            "-p", "no:hypothesispytest",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", *options.REPORT_DIR.argv(report_dir),
            *options.RUN_ID.argv(run_id or new_run_id()), f"--junitxml={junit}", *options.REPEAT.argv(repeat),
            "-rfE"]
    if workers != "0":
        argv += ["-n", workers, "--dist", "loadgroup"]
    argv += ["-q"] if quiet else options.PROGRESS_LINES.argv(True)
    argv += [*options.ENGINE.argv(engines), *options.ENGINES_FILE.argv(engines_file),
             *options.FARM_ENGINE.argv(farm_engines), *options.IMAGE_ARCHIVE.argv([_absolute(a) for a in image_archives]),
             *options.IMAGE_REF.argv(image_refs)]
    import pytest

    uses_farm = "--farm" in extra or (not engines and not engines_file and "--no-farm" not in extra)
    lease = _start_farm(farm_engines) if uses_farm else None
    interrupted = _Interrupted()
    # pytest's output goes to a temp file too, moved beside the report at the end: a report dir that fills
    # up during the run must not break the run, only keep its files elsewhere
    written_log = junit.with_name(log.name) if log else None
    try:
        with open(written_log, "w") if written_log else contextlib.nullcontext(sys.stdout) as out, \
                contextlib.redirect_stdout(out):
            status = int(pytest.main(argv + extra, plugins=[interrupted]))
    finally:
        if lease is not None:
            lease.release()
    if not _move_file(junit, report_dir / "junit.xml"):
        status = exit_status.REPORT_NOT_WRITTEN
    if written_log is not None and log is not None:
        _move_file(written_log, log)
    with contextlib.suppress(OSError):  # gone when empty; what could not be moved stays, as it said
        junit.parent.rmdir()
    # a report that could not be written was kept elsewhere, and the run said where
    report = None if status == exit_status.REPORT_NOT_WRITTEN else _write_html(report_dir)
    return exit_status.of_run(status, report, interrupted=interrupted.seen)


def _absolute(archive: str) -> str:
    """``[NAME=]PATH`` as ``NAME=/absolute/PATH``: the workers read it wherever pytest runs them."""
    from harness.subjects import archive_name, split_named

    name, path = split_named(archive, archive_name)
    return f"{name}={os.path.abspath(path)}"


def _move_file(written: Path, dest: Path) -> bool:
    """Move a file the run wrote to a temp dir into the report dir; False (it stays where it was, one line
    says so) if it cannot go there."""
    if not written.exists():
        return True
    try:
        shutil.copyfile(written, dest)
    except OSError as e:
        print(f"imgharness: error: cannot write {dest} ({e.strerror or e}); {dest.name} is kept at {written}",
              file=sys.stderr)
        return False
    written.unlink()
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


def _write_html(report_dir: Path) -> dict[str, Any] | None:
    """index.html from the run's report.json; returns the report (None when the run wrote none)."""
    from harness.plugins.checks import CHECKS
    from harness.report.html import render_html
    from harness.report.report_json import load_report, write_or_keep

    path = report_dir / "report.json"
    if not path.exists():
        print(f"imgharness: no {path}: the run stopped before its results were written; no index.html",
              file=sys.stderr)
        return None
    report = load_report(path)
    write_or_keep(report_dir / "index.html", render_html(report, CHECKS))
    return report
