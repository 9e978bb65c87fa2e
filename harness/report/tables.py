"""The README's measured figures as views of one committed report.json: they change only when the suites run again.

A README block between ``<!-- readme-tables KIND [ARGS] from REPORT -->`` and
``<!-- /readme-tables KIND -->`` is rendered from REPORT alone:

- ``matrix``: the run (id, host, start, counts) and a check × engine table whose
  cells say how many results passed and failed, in the words of `verdicts`, and
  how many could not be measured;
- ``unmeasured``: the results the run could not measure, per test, with the engines
  and one's message;
- ``summary [ENGINE…]``: what `run` printed at its end, for these engines of the run;
- ``baseline OLD NEW``: ``baseline record`` of engine OLD and ``baseline check``
  of engine NEW, both ``--from-report`` REPORT, with their output;
- ``baseline-tail OLD NEW``: the same, the output cut to its closing count;
- ``multiplatform``: what each engine kept of the multi-platform image (platforms, index,
  attestations, blobs a save lacks, ``--platform`` on save and load, RepoDigests);
- ``bundles``: per engine, how many of the bundle's repeated saves differed.

`fill` rewrites every block of a text from a report; a test checks that the
README's blocks are what its committed report gives (`imgharness readme-tables`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping

from harness.errors import UsageError
from harness.report import baseline
from harness.report.diff_text import value_text
from harness.report.report_json import check_order, engine_ids, variant
from harness.report.summary import REPORT_FILES, render_summary
from harness.report.verdicts import MEASURED, engine_verdicts, shown_counts

BLOCK = re.compile(r"<!-- readme-tables (?P<kind>[\w-]+)(?P<args>(?: [^ >]+)*?) from (?P<report>\S+) -->\n"
                   r"(?P<body>.*?)<!-- /readme-tables (?P=kind) -->", re.S)


def blocks(text: str) -> list[re.Match[str]]:
    return list(BLOCK.finditer(text))


def fill(text: str, report: dict[str, Any], report_path: str, about: Mapping[str, str]) -> str:
    """`text` with every block rendered anew from `report`, each marker naming `report_path` as its source."""
    def one(m: re.Match[str]) -> str:
        kind, args = m.group("kind"), m.group("args").split()
        render = KINDS.get(kind)
        if render is None:
            raise UsageError(f"unknown readme-tables block {kind!r}", hint=f"known: {', '.join(KINDS)}")
        body = render(report, report_path, about, *args)
        return (f"<!-- readme-tables {kind}{''.join(' ' + a for a in args)} from {report_path} -->\n"
                f"{body.rstrip()}\n<!-- /readme-tables {kind} -->")
    return BLOCK.sub(one, text)


def matrix(report: dict[str, Any], report_path: str, about: Mapping[str, str]) -> str:
    run = report["run"]
    totals = Counter(r["outcome"] for r in report["results"])
    engines = [e["id"] for e in report["engines"]]
    checks = check_order(report["results"], about)
    verdicts = {v.engine: v for v in engine_verdicts(report, about)}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in report["results"]:
        cells.setdefault((r["check"], r["engine"]), []).append(r)
    lines = [f"Run `{run['id']}` on host `{run['host']}`, started {run['started']} (harness "
             f"{run['harness_version']}): {len(report['results'])} results on {len(engines)} engines, "
             + ", ".join(f"{n} {o}" for o, n in shown_counts(totals)) + f" ([`{report_path}`]({report_path})).",
             "",
             "| check | " + " | ".join(e.replace("docker-", "d-") for e in engines) + " |",
             "|---" * (len(engines) + 1) + "|"]
    for check in checks:
        row = [_cell(cells.get((check, e), []), [p.text for p in verdicts[e].phrases if p.check == check])
               for e in engines]
        lines.append(f"| {check} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _cell(results: list[dict[str, Any]], phrases: list[str]) -> str:
    """``2 pass, 1 **fail**: what failed``, ``; 1 not measured``; ``—`` where the check did not run."""
    if not results:
        return "—"
    counts = Counter(r["outcome"] for r in results)
    passed, failed = counts["pass"], counts["fail"]
    if failed:
        said = ("**fail**" if not passed else f"{passed} pass, {failed} **fail**") + ": " + "; ".join(phrases)
    elif passed:
        said = "pass"
    else:
        said = ""
    rest = [f"{n} {'not measured' if o == 'error' else o}" for o, n in sorted(counts.items()) if o not in MEASURED]
    return ("; ".join(filter(None, [said, *rest]))).replace("|", "\\|")


def unmeasured(report: dict[str, Any], report_path: str, about: Mapping[str, str]) -> str:
    """The results the run could not measure, a line per test: how many, on which engines, in whose words."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ids = engine_ids(report)
    for r in report["results"]:
        if r["outcome"] == "error":
            test = variant(r, ids.get(r["engine"], r["engine"])).replace("_", " ")
            groups.setdefault((r["check"], test), []).append(r)
    if not groups:
        return "Every result of that run was measured."
    order = check_order(report["results"], about)
    lines = [f"Not measured in that run: {sum(map(len, groups.values()))} results."]
    for (check, test), rs in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        engines = sorted({r["engine"] for r in rs})
        example = min(rs, key=lambda r: r["engine"])["message"] or "no message"
        lines.append(f"- `{check}` · {test}: {len(rs)} on {', '.join(engines)} "
                     f"(e.g. `{value_text(example, 160).replace('`', chr(39))}`)")
    return "\n".join(lines)


def summary(report: dict[str, Any], report_path: str, about: Mapping[str, str], *engines: str) -> str:
    """What `run` printed at its end, for `engines` of the run (all when none are named)."""
    wanted = set(engines) or {e["id"] for e in report["engines"]}
    part = {**report, "engines": [e for e in report["engines"] if e["id"] in wanted],
            "results": [r for r in report["results"] if r["engine"] in wanted]}
    where = Path("reports") / report["run"]["id"]
    paths = [(name, where / file) for name, file in REPORT_FILES]
    return "```\n" + render_summary(part, about, paths) + "```"


def _baseline(report: dict[str, Any], report_path: str, old: str, new: str, *, tail: bool) -> str:
    recorded, candidate = baseline.distill(report, old), baseline.distill(report, new)
    changes = baseline.compare(recorded, candidate)
    out = baseline.render(recorded, candidate, changes).rstrip("\n").splitlines()
    if tail:
        out = ["…", out[-1]]
    return "\n".join([
        "```",
        f"$ python -m harness baseline record --engine {old} --from-report {report_path} -o baseline.json",
        baseline.record_line(recorded, "baseline.json"),
        f"$ python -m harness baseline check baseline.json --engine {new} --from-report {report_path}",
        *out,
        "```"])


def multiplatform(report: dict[str, Any], report_path: str, about: Mapping[str, str]) -> str:
    """What each engine kept of the multi-platform image (the multi-platform check's metrics)."""
    rows = ["| engine | platforms after pull → save | index kept | attestations | blobs the save lacks | "
            "`save --platform` own / other | `load --platform` | RepoDigest names the index | verdict |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in report["results"] if r["check"] == "multi-platform"), key=lambda r: r["engine"]):
        m = r["metrics"]
        kept = m.get("after_pull_save") or {}
        rows.append("| " + " | ".join([
            r["engine"], ", ".join(kept.get("platforms") or []) or "—", _yes(kept.get("index_kept")),
            str(kept.get("attestations", "—")), str(kept.get("missing_blobs", "—")),
            f"{_short(m.get('save_platform_own'))} / {_short(m.get('save_platform_other'))}",
            _short(m.get("load_platform_own")), _yes(m.get("repodigest_names_index")),
            r["outcome"] + (f": {value_text(r['message'], 80)}" if r["outcome"] != "pass" else "")]) + " |")
    return "\n".join(rows)


def bundles(report: dict[str, Any], report_path: str, about: Mapping[str, str]) -> str:
    """Whether a bundle of images saves the same bytes, saved in one call again and again."""
    rows = ["| engine | saves | different archives | saves unlike the most common | what differs |", "|---|---|---|---|---|"]
    for r in sorted((r for r in report["results"] if r["check"] == "save-determinism" and r["image"] == "bundle"
                     and "saves" in r["metrics"]), key=lambda r: r["engine"]):
        m = r["metrics"]
        kinds = sorted({f["category"] for f in r["findings"]})
        rows.append(f"| {r['engine']} | {m['saves']} | {m.get('distinct_archives', '—')} | "
                    f"{100 * m.get('drift_rate', 0):.0f} % | {', '.join(kinds) or '—'} |")
    return "\n".join(rows)


def _yes(value: Any) -> str:
    return "—" if value is None else "yes" if value else "no"


def _short(value: Any) -> str:
    return "—" if value is None else value_text(str(value).replace("|", "/"), 60)


KINDS: dict[str, Callable[..., str]] = {
    "multiplatform": multiplatform,
    "bundles": bundles,
    "matrix": matrix,
    "unmeasured": unmeasured,
    "summary": summary,
    "baseline": lambda report, path, about, old, new: _baseline(report, path, old, new, tail=False),
    "baseline-tail": lambda report, path, about, old, new: _baseline(report, path, old, new, tail=True),
}
