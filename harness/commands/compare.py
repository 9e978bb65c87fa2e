"""`imgharness compare REPORT... [-o DIR]`: one matrix report from the reports of several hosts.

Writes ``DIR/report.json`` (schema 1, engines keyed ``HOST/ENGINE-ID``) and
``DIR/index.html`` (default DIR: ``reports/compare-<id>/``) and prints, per host
engine, its outcome counts, then every image whose canonical digest is not the
same everywhere.  Exit codes: 0 every image has one canonical digest, 1 some image
differs between hosts or engines, 2 error.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from harness.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="merge reports from several hosts into one matrix report")
    p.add_argument("reports", nargs="+", type=Path, help="report.json files (one per host or run)")
    p.add_argument("-o", "--output", type=Path, help="directory for report.json and index.html "
                                                      "(default: reports/compare-<id>/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.plugins.checks import CHECKS
    from harness.report.compare import merge
    from harness.report.diff_text import value_text
    from harness.report.report_json import OUTCOMES, load_report, write_atomically
    from harness.report.html import render_html

    if len(args.reports) < 2:
        raise UsageError("compare needs at least two reports")
    merged = merge([load_report(p) for p in args.reports])
    out = args.output or Path("reports") / merged["run"]["id"]
    write_atomically(out / "report.json", json.dumps(merged, indent=2))
    write_atomically(out / "index.html", render_html(merged, CHECKS))
    width = max(len(e["id"]) for e in merged["engines"]) if merged["engines"] else 0
    for engine in merged["engines"]:
        counts = Counter(r["outcome"] for r in merged["results"] if r["engine"] == engine["id"])
        print(f"{engine['id']:<{width}}  " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]))
    differences = merged["host_differences"]
    print()
    if not differences:
        print("every image has one canonical digest on every host and engine")
    for d in differences:
        print(f"{d['image']}: {len(d['digests'])} canonical digests")
        for digest, keys in d["digests"].items():
            print(f"  {value_text(digest)}  {', '.join(keys)}")
    print(f"\nreport: {out / 'report.json'}\nhtml: {out / 'index.html'}")
    return 1 if differences else 0
