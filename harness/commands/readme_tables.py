"""`imgharness readme-tables [REPORT] [--write]`: the README's measured figures, from a run's report.json.

The README's figures are blocks rendered from one committed report
(`harness.report.tables`).  Without REPORT the report the README names is used;
without ``--write`` the README is only checked: exit 0 when its blocks are what
the report gives, 1 (and the first differing line) when not.  ``--write``
renders them from REPORT (a new run's ``reports/<run-id>/report.json``): the
report is copied to ``docs/reports/<run-id>/report.json`` beside the README,
which is what the blocks then name, and the README is rewritten.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
from pathlib import Path

from harness.errors import UsageError

README = Path(__file__).resolve().parents[2] / "README.md"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("readme-tables", help="check or rewrite the README's measured tables from a report.json")
    p.add_argument("report", nargs="?", type=Path, help="a run's report.json (default: the one the README names)")
    p.add_argument("--readme", type=Path, default=README, help="default: the checkout's README.md")
    p.add_argument("--write", action="store_true", help="copy the report under docs/reports/ and rewrite the README")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.plugins.checks import CHECKS
    from harness.report.report_json import load_report
    from harness.report.tables import blocks, fill

    try:
        text = args.readme.read_text()
    except OSError as e:
        raise UsageError(f"{args.readme}: cannot read ({e.strerror or e})") from e
    found = blocks(text)
    if not found:
        raise UsageError(f"{args.readme}: no readme-tables blocks")
    root = args.readme.resolve().parent
    named = found[0].group("report")
    source = args.report or root / named
    report = load_report(source)
    committed = f"docs/reports/{report['run']['id']}/report.json"
    if args.write:
        if (root / committed).resolve() != Path(source).resolve():
            (root / committed).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / committed)
        args.readme.write_text(fill(text, report, committed, CHECKS))
        print(f"{args.readme}: {len(found)} blocks from {committed}"
              + (f" (the README named {named} before)" if named != committed else ""))
        return 0
    wanted = fill(text, report, named if args.report is None else committed, CHECKS)
    if wanted == text:
        print(f"{args.readme}: {len(found)} blocks are what {source} gives")
        return 0
    first = next(line for line in difflib.unified_diff(text.splitlines(), wanted.splitlines(), lineterm="", n=0)
                 if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    print(f"{args.readme}: its tables are not what {source} gives (rewrite: --write); first difference:\n{first}")
    return 1
