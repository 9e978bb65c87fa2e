"""The run's closing words on the terminal: a view of report.json, as the page is.

After the progress lines, `run` prints what a person came for: per engine its
outcome counts, its one-sentence verdict (`verdicts`, the page's words), the
worst of what it measured a line each (a finding as *category where a → b
(note)*, most severe first, or a failure's own message when it brought no
finding), what could not be measured, and where the report is.  The counts come
from the same `engine_verdicts` the page shows, so the two always agree.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.findings import Category
from harness.report.diff_text import value_text
from harness.report.report_json import check_order, engine_ids, load_report, variant
from harness.report.units import finding_value
from harness.report.verdicts import engine_verdicts, shown_counts

REPORT_FILES = (("report", "report.json"), ("page", "index.html"), ("junit", "junit.xml"),
                ("pytest log", "pytest.log"))
"""What a run writes into its report dir, as the summary names them."""

WORST_PER_ENGINE = 5
WIDTH = 110

SEVERITY = (Category.DIGEST_MISMATCH, Category.CONTENT, Category.REMOVED, Category.ADDED, Category.CONFIG,
            Category.TAGS, Category.REQUEST_FAILED, Category.MANIFEST, Category.COMPRESSION, Category.OWNERSHIP,
            Category.MODE, Category.XATTR, Category.MTIME, Category.ORDER, Category.ARCHIVE_FORMAT)
"""Most severe first: what changes the image or what users get, then how the archive packs it."""

_RANK = {c.value: i for i, c in enumerate(SEVERITY)}
_MESSAGE_RANK = _RANK[Category.REQUEST_FAILED.value]  # a measured failure that brought no finding, in its words


def render_summary(report: dict[str, Any], about: Mapping[str, str],
                   paths: Sequence[tuple[str, Path]] = ()) -> str:
    """The summary of `report`; `about` gives the checks in matrix order, `paths` the report's files."""
    totals = Counter(r["outcome"] for r in report["results"])
    run = report["run"]
    n = len(report["engines"])
    lines = [f"run {run['id']} on {run['host']}: {len(report['results'])} results on {n} "
             f"engine{'s' if n != 1 else ''}: {_counts(totals)}"]
    order = check_order(report["results"], about)
    ids = engine_ids(report)
    for v in engine_verdicts(report, about):
        lines += ["", f"{v.engine}: {_counts(v.counts)}"]
        lines += textwrap.wrap(v.sentence().split(": ", 1)[1], WIDTH, initial_indent="  ",
                               subsequent_indent="  ")
        results = [r for r in report["results"] if r["engine"] == v.engine]
        worst = worst_lines(results, order, ids.get(v.engine, v.engine))
        lines += [f"  ✗ {line}" for line in worst[:WORST_PER_ENGINE]]
        if len(worst) > WORST_PER_ENGINE:
            lines.append(f"  … and {len(worst) - WORST_PER_ENGINE} more (in the report)")
        errors = Counter(r["check"] for r in results if r["outcome"] == "error")
        if errors:
            lines.append("  ! not measured: " + ", ".join(f"{c} ({n})" for c, n in sorted(
                errors.items(), key=lambda cn: order.index(cn[0]))))
    if paths:
        width = max(len(name) for name, _ in paths)
        lines += [""] + [f"{name + ':':<{width + 1}} {path}" for name, path in paths]
    return "\n".join(lines) + "\n"


def run_summary(report_dir: Path, about: Mapping[str, str]) -> str:
    """What `run` prints at its end: the summary of the report it wrote, and the files it wrote (pytest's
    log too); without a report.json, one line saying so and where pytest's output is."""
    paths = [(name, report_dir / file) for name, file in REPORT_FILES if (report_dir / file).exists()]
    if not (report_dir / "report.json").exists():
        return "\n".join(["no report: the run stopped before its results were written"]
                         + [f"{name}: {path}" for name, path in paths]) + "\n"
    return render_summary(load_report(report_dir / "report.json"), about, paths)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {o}" for o, n in shown_counts(counts))


def worst_lines(results: Iterable[dict[str, Any]], order: list[str], engine_id: str) -> list[str]:
    """One line per distinct failure of these results (a finding, or a failure's message when it has none),
    most severe first.  Findings of one kind at one place (``tags`` in ``inspect.RepoDigests[push]``) are one
    line, naming the images they were found on, whatever run-specific names their details carry (`_place`)."""
    seen: dict[tuple[Any, ...], tuple[int, int, set[str], str]] = {}
    for r in results:
        if r["outcome"] != "fail":
            continue
        test = variant(r, engine_id).partition("[")[2].rstrip("]")
        label = f"{r['check']}{' · ' + test if test else ''}"
        check_index = order.index(r["check"]) if r["check"] in order else len(order)
        entries: list[tuple[tuple[str, ...], int, str]] = [
            ((label, f["category"], _place(f["where"])), _RANK.get(f["category"], len(_RANK)), _finding_text(f))
            for f in r["findings"]]
        if not r["findings"]:
            message = (r["message"] or "failed without a message").removeprefix("AssertionError: ")
            entries.append(((label, message[:40]), _MESSAGE_RANK, value_text(message, 140)))
        for key, rank, text in entries:
            if key not in seen:
                seen[key] = (rank, check_index, set(), f"{label}: {text}")
            seen[key][2].add(r["image"] or "-")
    ranked = sorted(seen.values(), key=lambda s: (s[0], s[1]))
    return [f"{text} [{', '.join(sorted(images))}]" for _, _, images, text in ranked]


def _place(where: str) -> str:
    """`where` up to its entry (``archive:index.json``), without what names this run's own objects (a
    repository under the run's namespace, a registry's port), so that one finding on several images is one."""
    first, _, rest = where.partition(":")
    entry = rest.split(":")[0]
    return first if not entry or " " in entry or "imgharness-run-" in entry or "127.0.0.1" in entry \
        else f"{first}:{entry}"


def _finding_text(f: dict[str, Any]) -> str:
    """``category where  a → b (note)``, each part cut short; long values keep their ends (a digest)."""
    def short(value: Any) -> str:
        text = finding_value(value, f["category"], 400)
        return text if len(text) <= 36 else "…" + text[-35:]

    note = f" ({value_text(f['note'], 60)})" if f.get("note") and f["note"] != f["category"] else ""
    return f"{f['category']} {value_text(f['where'], 56)}  {short(f.get('a'))} → {short(f.get('b'))}{note}"
