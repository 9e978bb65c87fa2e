"""`imgharness baseline record|check`: does an engine upgrade change behaviour?

    imgharness baseline record --engine E -o baseline.json
    imgharness baseline check baseline.json --engine CANDIDATE

Both run the suites on one engine (as `imgharness run` does, into a temporary
report dir unless ``--report-dir``), or read ``--from-report`` instead.  `--engine`
takes a farm engine id (``docker-26.1.5-overlay2``) or any `--engine` form of the
plugin (socket, tcp://, ssh://, context name).  Exit codes follow `run`'s
(`harness.report.exit_status`): `check` exits 0 without regressions, 1 with a
regression (a pass that became fail or error, new nondeterminism) when every
result was measured, 3 when a result of the baseline or the candidate is an error
(what it hides cannot be told); `record` exits 0, or 3 when the baseline holds
results that could not be measured (failing checks are behaviour it records);
both 2 on usage errors, 6 when the file could not be written.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from harness import progress
from harness.commands.run import add_engine_options, run_suites
from harness.errors import NotMeasured, ReportNotWritten, UsageError
from harness.plugins import options
from harness.report import exit_status
from harness.report.report_json import load_report, write_or_keep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="record an engine's behaviour, or check a candidate engine against it")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    record = actions.add_parser("record", help="run the suites on an engine and store its behaviour")
    record.add_argument("-o", "--output", type=Path, default=Path("baseline.json"), help="default: baseline.json")
    check = actions.add_parser("check", help="run the suites on a candidate and print what changed")
    check.add_argument("baseline", type=Path, help="a baseline.json from `baseline record`")
    for q in (record, check):
        q.add_argument("--engine", required=True,
                       help="farm engine id, or an engine as `run --engine` takes it (socket, tcp://, context)")
        q.add_argument("--from-report", type=Path, help="read this report.json instead of running the suites")
        q.add_argument("--report-dir", type=Path, help="where the suite run writes its report (default: a temp dir)")
        add_engine_options(q, engine=False)
        options.IMAGE.add_to(q)
        q.add_argument("-k", dest="keyword", help="only tests matching this pytest -k expression")
    record.set_defaults(func=run_record)
    check.set_defaults(func=run_check)


def run_record(args: argparse.Namespace) -> int:
    from harness.report import baseline

    doc = baseline.distill(*_report_for(args))
    write_or_keep(args.output, json.dumps(doc, indent=2) + "\n")
    print(baseline.record_line(doc, args.output))
    return _unmeasured(doc) or exit_status.PASSED


def run_check(args: argparse.Namespace) -> int:
    from harness.report import baseline

    try:
        recorded = baseline.check_baseline(json.loads(args.baseline.read_text()), str(args.baseline))
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.baseline}: cannot read the baseline ({e})") from e
    candidate = baseline.distill(*_report_for(args))
    changes = baseline.compare(recorded, candidate)
    print(baseline.render(recorded, candidate, changes), end="")
    regressed = any(c.verdict == "regression" for c in changes)
    return _unmeasured(recorded, candidate) or (exit_status.CHECK_FAILED if regressed else exit_status.PASSED)


def _unmeasured(*docs: dict[str, Any]) -> int:
    """3, saying how many, when a baseline document holds results that could not be measured; else 0."""
    errors = sum(b["outcome"] == "error" for doc in docs for b in doc["behaviour"].values())
    if not errors:
        return exit_status.PASSED
    print(f"{errors} results could not be measured (error): what they hide cannot be told")
    return exit_status.NOT_MEASURED


def _report_for(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The report to distill and the engine's id in it: read, or made by running the suites on the engine."""
    if args.from_report:
        return load_report(args.from_report), args.engine
    from harness.engines.farm import Farm

    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="imgharness-baseline-"))
    on_farm = args.engine in Farm().engines
    progress.say(f"running the suites on {args.engine} (report in {report_dir})")
    extra = options.IMAGE.argv(args.image) + (["-k", args.keyword] if args.keyword else [])
    code = run_suites(report_dir, engines=[] if on_farm else [args.engine],
                      farm_engines=[args.engine] if on_farm else [], image_archives=args.image_archive,
                      image_refs=args.image_ref, repeat=args.repeat, workers=args.workers,
                      pytest_args=extra, quiet=args.quiet, log=report_dir / "pytest.log")
    if code == exit_status.INTERRUPTED:
        raise KeyboardInterrupt
    if code == exit_status.USAGE:
        raise UsageError(f"the suite run on {args.engine} selected no check", hint=f"see {report_dir / 'pytest.log'}")
    if code == exit_status.REPORT_NOT_WRITTEN:
        raise ReportNotWritten(f"the suite run on {args.engine} could not write {report_dir / 'report.json'}",
                               hint=f"see {report_dir / 'pytest.log'}")
    if not (report_dir / "report.json").exists():
        raise NotMeasured(f"the suite run on {args.engine} stopped before any result", hint=f"see {report_dir}")
    progress.say(f"report: {report_dir / 'index.html'} (pytest's output: {report_dir / 'pytest.log'})")
    report = load_report(report_dir / "report.json")
    ids = [e["id"] for e in report["engines"]]
    return report, args.engine if on_farm or args.engine in ids or len(ids) != 1 else ids[0]
