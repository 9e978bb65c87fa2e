"""Do verdicts repeat?  The outcomes of several runs' report.json, side by side.

    python bench/agreement.py REPORT.json REPORT.json [...]
    python bench/agreement.py --summary REPORT.json

Lines results up by (check, engine, image, test variant) and prints how many
have the same outcome in every run, then every one that flipped, with each
run's outcome and message: a verdict that flips between runs on the same farm is
a flaky measurement to understand, not noise.  Checks that measure a rate
(concurrent-clients: how many requests failed beside another client) are not
held to one outcome; their rates and numbers of tries are printed per run.
``--summary`` prints one report's outcome counts and its `error` results.
Exit 0 when every verdict agrees, 1 when one flipped, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.report_json import OUTCOMES, engine_ids, load_report, variant

RATE_CHECKS = ("concurrent-clients",)

Key = tuple[str, str, str, str]


def keyed(report: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    """Results by (check, engine, image, variant)."""
    ids = engine_ids(report)
    return {(r["check"], r["engine"], r["image"], variant(r, ids.get(r["engine"], r["engine"]))): r
            for r in report["results"]}


def summary(report: dict[str, Any], path: Path) -> None:
    counts = Counter(r["outcome"] for r in report["results"])
    print(f"{path}: {len(report['results'])} results: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]))
    for r in report["results"]:
        if r["outcome"] == "error":
            print(f"  error  {r['check']} · {r['engine']} · {r['image']}: {r['message'][:200]}")


def rate(result: dict[str, Any]) -> str:
    m = result["metrics"]
    tries, failed = m.get("requests", {}), m.get("failed", {})
    kinds = ", ".join(f"{kind} {failed.get(kind, 0)}/{n}" for kind, n in sorted(tries.items()))
    return f"{result['outcome']}: {kinds} failed ({m.get('list_failed_pct', '?')} % of listings)"


def agreement(runs: list[dict[Key, dict[str, Any]]], names: list[str]) -> int:
    keys = sorted(set().union(*runs))
    judged = [k for k in keys if k[0] not in RATE_CHECKS]
    missing = [k for k in judged if any(k not in run for run in runs)]
    flips = [k for k in judged if k not in missing and len({run[k]["outcome"] for run in runs}) > 1]
    same = len(judged) - len(missing) - len(flips)
    print(f"{len(runs)} runs: {same} of {len(judged)} verdicts (check, engine, image, test) the same in every run, "
          f"{len(flips)} flipped, {len(missing)} not in every run")
    by_check: dict[str, Counter[str]] = {}
    for k in judged:
        c = by_check.setdefault(k[0], Counter())
        c["flipped" if k in flips else "missing" if k in missing else "same"] += 1
    for check, c in by_check.items():
        print(f"  {check:<22} {c['same']:>4} same  {c['flipped']:>3} flipped" + (f"  {c['missing']} missing" if c["missing"] else ""))
    for k in flips:
        print(f"FLIPPED {' · '.join(k)}")
        for name, run in zip(names, runs):
            print(f"    {name}: {run[k]['outcome']}  {run[k]['message'][:160]}")
    for k in missing:
        print(f"MISSING {' · '.join(k)}: in {sum(k in run for run in runs)} of {len(runs)} runs")
    rated = [k for k in keys if k[0] in RATE_CHECKS]
    if rated:
        print("rates (not held to one outcome):")
    for k in rated:
        print(f"  {' · '.join(k[:3])}")
        for name, run in zip(names, runs):
            print(f"    {name}: {rate(run[k]) if k in run else 'not run'}")
    return 1 if flips or missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--summary", action="store_true", help="one report's outcome counts and errors")
    args = parser.parse_args()
    try:
        reports = [load_report(p) for p in args.reports]
    except HarnessError as e:
        print(f"agreement: {e}", file=sys.stderr)
        return 2
    for report, path in zip(reports, args.reports):
        summary(report, path)
    if args.summary:
        return 0
    if len(reports) < 2:
        print("agreement: give two reports or more", file=sys.stderr)
        return 2
    return agreement([keyed(r) for r in reports], [r["run"]["id"] for r in reports])


if __name__ == "__main__":
    sys.exit(main())
