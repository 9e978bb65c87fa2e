"""`imgharness report REPORT.json [-o index.html]`: render the HTML report from a report.json.

The page is made from the JSON alone, so a report copied off a CI host (or merged
by `compare`) renders the same anywhere.  Default output: index.html beside the report.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render index.html from a report.json")
    p.add_argument("report", type=Path, help="a report.json written by run or compare")
    p.add_argument("-o", "--output", type=Path, help="default: index.html beside the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.plugins.checks import CHECKS
    from harness.report.report_json import load_report, write_atomically
    from harness.report.html import render_html

    out = args.output or args.report.with_name("index.html")
    write_atomically(out, render_html(load_report(args.report), CHECKS))
    print(out)
    return 0
