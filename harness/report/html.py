"""index.html: the report a person reads, rendered from report.json alone.

One self-contained page (stylesheet, script and charts inline; it makes no
request): first one sentence per engine saying what holds and what does not
(`verdicts`), with its outcome counts, and every result that could not be
measured; then an engines × checks matrix whose cells are coloured by their
worst outcome and count outcomes per image; a click on a cell, or a link to
``#cell=CHECK/ENGINE``, opens its results in a panel fixed in the window (so a
shared link shows it at once, wherever the page is scrolled) with the findings
grouped by category, each split into the entry, the field and both values; bar charts of what is better seen than read
(archive size, save time, bytes wasted on a pull retry, update cost); and the
canonical digest each engine's save has per image, which shows at once where
engines or hosts disagree about the image itself.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from functools import partial
from html import escape
from importlib import resources
from typing import Any, Mapping
from urllib.parse import quote

from harness.findings import Category
from harness.report.charts import Bar, bar_chart
from harness.report.diff_text import value_text
from harness.report.report_json import OUTCOMES, check_order, engine_ids, variant, worst
from harness.report.units import finding_value, human_bytes, percent, seconds
from harness.report.verdicts import Phrase, engine_verdicts, shown_counts

FINDINGS_SHOWN = 40
"""Findings shown per category and result; the rest are counted (all of them are in report.json)."""

_MARK = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}


def render_html(report: dict[str, Any], about: Mapping[str, str]) -> str:
    """The page of `report`; `about` gives the checks it knows in matrix order, each with what must hold
    (the suites' `harness.plugins.checks.CHECKS`)."""
    checks = check_order(report["results"], about)
    engines = [e["id"] for e in report["engines"]] or sorted({r["engine"] for r in report["results"]})
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in report["results"]:
        cells[(r["check"], r["engine"])].append(r)
    run = report["run"]
    title = f"imgharness report {run['id']}"
    body = [
        _header(report),
        '<nav><a href="#verdicts">Verdicts</a><a href="#matrix">Matrix</a><a href="#charts">Charts</a>'
        '<a href="#digests">Canonical digests</a><a href="#engines">Engines</a></nav>',
        _verdicts(report, about),
        _unmeasured(report),
        _matrix(report, checks, about, engines, cells),
        '<div id="details">' + "".join(_cell_detail(report, c, about, e, cells[(c, e)])
                                       for c in checks for e in engines if cells.get((c, e))) + "</div>",
        _charts(report),
        _digests(report),
        _engines(report),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head>"
            f"<body>{''.join(body)}<script>{_asset('report.js')}</script></body></html>\n")


def cell_id(check: str, engine: str) -> str:
    """The element id of a cell's details; ``#`` + this (percent-encoded) opens it."""
    return f"cell={check}/{engine}"


def _asset(name: str) -> str:
    return resources.files("harness.report").joinpath("assets", name).read_text()


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    counts = Counter(r["outcome"] for r in report["results"])
    totals = "".join(f'<span class="o-{o}">{counts[o]} {o}</span>' for o in OUTCOMES if counts[o])
    sources = ""
    if run.get("sources"):
        items = "".join(f"<li><b>{escape(s['label'])}</b>: run {escape(s['id'])} on {escape(s['host'])}, "
                        f"{escape(s['started'])}, harness {escape(s['harness_version'])}</li>" for s in run["sources"])
        sources = f"<p>Merged from {len(run['sources'])} runs:</p><ul>{items}</ul>"
    return (f"<header><h1>Image consistency report</h1>"
            f'<p class="meta">run <b>{escape(run["id"])}</b> on {escape(run["host"])} · started '
            f'{escape(run["started"])} · harness {escape(run["harness_version"])} · '
            f'{len(report["results"])} results on {len(report["engines"])} engines</p>{_tools(run)}'
            f'<p class="totals">{totals}</p>{sources}</header>')


def _tools(run: dict[str, Any]) -> str:
    """The tools the results depend on, as each reported its version (skopeo 1.9.3 …)."""
    tools = run.get("tools") or []
    if not tools:
        return ""
    listed = ", ".join(f"{escape(t['name'])} {escape(t['version'])} ({escape(t['id'])})" for t in tools)
    return f'<p class="meta">tools: {listed}</p>'


def _cell_link(check: str, engine: str) -> str:
    return "#" + quote(cell_id(check, engine), safe="=/-._~")


def _verdicts(report: dict[str, Any], about: Mapping[str, str]) -> str:
    """One sentence per engine (`EngineVerdict.sentence`, word for word), each phrase a link to its cell, and
    the engine's outcome counts after it (``data-counts``: what the run's terminal summary also prints)."""
    items = []
    for v in engine_verdicts(report, about):
        sentence = v.sentence(phrase=partial(_phrase_link, v.engine),
                              unmeasured=lambda tail: f'<a class="unmeasured" href="#unmeasured">{escape(tail)}</a>',
                              engine=lambda e: f"<b>{escape(e)}</b>")
        counts = " · ".join(f'<span class="o-{o}">{n} {o}</span>' for o, n in shown_counts(v.counts))
        items.append(f'<li class="verdict" data-engine="{escape(v.engine)}" '
                     f"data-counts='{escape(json.dumps(v.counts))}'>"
                     f'<span class="sentence">{sentence}</span> <span class="counts">{counts}</span></li>')
    return (f'<section id="verdicts"><h2>What each engine does</h2><p class="muted">Read from this run\'s '
            f'results: what holds, <span class="breaks">what does not</span>, and what could not be measured. '
            f"Each phrase opens its results.</p><ul class=\"verdicts\">{''.join(items)}</ul></section>")


def _phrase_link(engine: str, p: Phrase) -> str:
    return f'<a class="{"holds" if p.holds else "breaks"}" href="{escape(_cell_link(p.check, engine))}">{escape(p.text)}</a>'


def _unmeasured(report: dict[str, Any]) -> str:
    """Every `error` result, listed apart: the harness could not measure it, so it is neither a pass nor a
    fail, and a person must not take it for either."""
    ids = engine_ids(report)
    errors = [r for r in report["results"] if r["outcome"] == "error"]
    if not errors:
        return ""
    rows = "".join(
        f'<li><a href="{escape(_cell_link(r["check"], r["engine"]))}">{escape(r["check"])} · '
        f'{escape(r["engine"])} · {escape(r["image"] or "—")} · '
        f'{escape(variant(r, ids.get(r["engine"], r["engine"])).replace("_", " "))}</a>: '
        f'<span class="why">{escape(value_text(r["message"] or "no message", 200))}</span></li>'
        for r in sorted(errors, key=lambda r: (r["engine"], r["check"], r["image"])))
    return (f'<section id="unmeasured"><details{" open" if len(errors) <= UNMEASURED_OPEN else ""}><summary>'
            f'<h2>Not measured: {len(errors)} result{"s" if len(errors) != 1 else ""}</h2></summary>'
            f"<p>The harness could not measure these (an engine was unreachable, a daemon died, a tool or the "
            f"harness broke): they are neither passes nor failures.</p><ul>{rows}</ul></details></section>")


UNMEASURED_OPEN = 8
"""Up to this many unmeasured results are listed open; more are one click away (the heading counts them)."""



def _matrix(report: dict[str, Any], checks: list[str], about: Mapping[str, str], engines: list[str],
            cells: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    info = {e["id"]: e for e in report["engines"]}
    head = "".join(f'<th title="{escape(about.get(c, ""))}">{escape(c)}</th>' for c in checks)
    rows = []
    for engine in engines:
        e = info.get(engine, {})
        what = " · ".join(str(e[k]) for k in ("version", "storage") if e.get(k))
        tds = []
        for check in checks:
            results = cells.get((check, engine))
            if not results:
                tds.append('<td class="cell none" title="not run">—</td>')
                continue
            outcome = worst(r["outcome"] for r in results)
            per_image: dict[str, list[str]] = defaultdict(list)
            for r in results:
                per_image[r["image"] or "—"].append(r["outcome"])
            chips = "".join(f'<span class="chip o-{worst(o)}" title="{escape(img)}: {escape(_counts(o))}">'
                            f"{escape(img)} {escape(_counts(o))}</span>" for img, o in sorted(per_image.items()))
            cid = cell_id(check, engine)
            tds.append(f'<td class="cell o-{outcome}" data-cell="{escape(cid)}">'
                       f'<a href="{escape(_cell_link(check, engine))}" title="{escape(check)} on {escape(engine)}: '
                       f'{len(results)} results — click for findings"><span class="word">{outcome}</span>'
                       f'<span class="chips">{chips}</span></a></td>')
        rows.append(f"<tr><th>{escape(engine)}<small>{escape(what)}</small></th>{''.join(tds)}</tr>")
    return (f'<section id="matrix"><h2>Engines × checks</h2>'
            f'<p class="muted">Each cell is coloured by its worst outcome; chips count outcomes per image '
            f'(✓ pass, ✗ fail, ! error, – skipped). Click a cell for its findings.</p>'
            f'<table class="matrix"><thead><tr><th>engine</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _counts(outcomes: list[str]) -> str:
    c = Counter(outcomes)
    return " ".join(f"{c[o]}{_MARK[o]}" for o in OUTCOMES if c[o])


def _cell_detail(report: dict[str, Any], check: str, about: Mapping[str, str], engine: str,
                 results: list[dict[str, Any]]) -> str:
    original = engine_ids(report).get(engine, engine)
    ordered = sorted(results, key=lambda r: (r["image"], variant(r, original)))
    return (f'<section class="cell-detail" id="{escape(cell_id(check, engine))}" tabindex="-1" hidden>'
            f'<a class="close" href="#matrix" title="close (Esc)">×</a>'
            f"<h2>{escape(check)} on {escape(engine)}</h2>"
            f'<p class="muted">{escape(about.get(check, ""))}</p>'
            + "".join(_result(r, original) for r in ordered) + "</section>")


def _result(r: dict[str, Any], engine_id: str) -> str:
    name = variant(r, engine_id).replace("_", " ")
    parts = [f'<article class="result o-{r["outcome"]}"><h3>{escape(r["image"] or "—")} · {escape(name)} '
             f'<span class="outcome o-{r["outcome"]}">{r["outcome"]}</span> '
             f'<span class="muted">{r["duration_s"]:.1f} s</span></h3>']
    if r.get("message"):
        parts.append(f'<pre class="message">{escape(r["message"])}</pre>')
    if r.get("metrics"):
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_metric(v))}</dd>" for k, v in r["metrics"].items())
        parts.append(f'<dl class="metrics">{items}</dl>')
    if r.get("findings"):
        parts.append(findings_html(r["findings"]))
    elif r["outcome"] != "pass":
        parts.append('<p class="muted">No structural findings were attached; the message says what failed.</p>')
    return "".join(parts) + "</article>"


def _metric(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "—"
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int) and value >= 10_000:
        return f"{value:,} ({human_bytes(value)})" if value >= 1 << 20 else f"{value:,}"
    return value_text(value, 100)


def findings_html(findings: list[dict[str, Any]]) -> str:
    """Findings grouped by category in the vocabulary's order (as the text diff does), one table each:
    the entry (archive member, layer file, inspect output), the field within it, A, B and the note."""
    known = [c.value for c in Category]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        groups[f["category"]].append(f)
    tables = []
    for category in known + sorted(set(groups) - set(known)):
        group = groups.get(category)
        if not group:
            continue
        rows = []
        for f in group[:FINDINGS_SHOWN]:
            entry, field = split_where(f["where"], category)
            rows.append(f"<tr><td>{escape(entry)}</td><td>{escape(field)}</td>"
                        + "".join(f'<td class="{side}" title="{escape(_full(f.get(side)))}">'
                                  f"{escape(finding_value(f.get(side), category))}</td>" for side in "ab")
                        + f'<td class="note">{escape(f.get("note", ""))}</td></tr>')
        more = len(group) - FINDINGS_SHOWN
        if more > 0:
            rows.append(f'<tr><td colspan="5" class="note">… and {more} more (all are in report.json)</td></tr>')
        tables.append(f'<table class="findings"><caption>{escape(category)} ({len(group)})</caption>'
                      f"<thead><tr><th>entry</th><th>field</th><th>A</th><th>B</th><th>note</th></tr></thead>"
                      f"<tbody>{''.join(rows)}</tbody></table>")
    return "".join(tables)


def _full(value: Any) -> str:
    return "∅ (absent)" if value is None else str(value)


def split_where(where: str, category: str) -> tuple[str, str]:
    """``archive:index.json:$.manifests[0]`` → (``archive › index.json``, ``$.manifests[0]``);
    a finding on a whole entry names its category as the field (``mtime`` of ``archive › oci-layout``).
    Colons inside brackets or parentheses (``layer[2](sha256:…)``) do not split."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(where):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0:
            parts.append(where[start:i])
            start = i + 1
    parts.append(where[start:])
    fields = [p for p in parts[1:] if p.startswith("$")]
    entry = " › ".join(p for p in parts if not p.startswith("$"))
    return entry, ":".join(fields) or category


def _by_engine_image(report: dict[str, Any], check: str, metric: str) -> dict[str, list[tuple[str, Any, str]]]:
    """image (and test parameters, e.g. ``unique-48MiB [client-cancel]``) → [(engine, value, outcome)] of the
    first result per engine there carrying `metric`."""
    ids = engine_ids(report)
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[tuple[str, Any, str]]] = defaultdict(list)
    for r in report["results"]:
        params = variant(r, ids.get(r["engine"], r["engine"])).partition("[")[2].rstrip("]")
        group = f"{r['image']} [{params}]" if params else r["image"]
        key = (r["engine"], group)
        if r["check"] == check and r["metrics"].get(metric) is not None and key not in seen:
            seen.add(key)
            out[group].append((r["engine"], r["metrics"][metric], r["outcome"]))
    return {group: sorted(rows) for group, rows in sorted(out.items())}


def _per_image(report: dict[str, Any], check: str, metric: str, what: str, fmt: Any) -> list[str]:
    return [bar_chart(f"{what} — {image}", [Bar(e, float(v), f"o-{o}", f"{e} · {image}: {fmt(v)} ({o})")
                                            for e, v, o in rows], fmt)
            for image, rows in _by_engine_image(report, check, metric).items()]


def _charts(report: dict[str, Any]) -> str:
    blocks = []
    for title, what, check, metric, fmt, why in (
            ("Archive size per engine", "Archive size", "save-determinism", "archive_bytes", human_bytes,
             "bytes of one save (docker save) of each corpus image"),
            ("Save time per engine", "Save time", "save-determinism", "save_s", seconds, "mean seconds per save"),
            ("Bytes wasted on pull retry", "Bytes wasted", "pull-resume", "wasted_bytes", human_bytes,
             "bytes of the cut layer downloaded more than once (0 = the retry resumed)"),
            ("Failed listings beside another client", "Failed listings", "concurrent-clients", "list_failed_pct",
             percent, "share of image listings that failed while another client loaded and removed its own images")):
        charts = _per_image(report, check, metric, what, fmt)
        if charts:
            blocks.append(f"<h3>{escape(title)}</h3><p class=\"muted\">{escape(why)}; "
                          f"bar colour = the check's outcome</p><div class=\"charts\">{''.join(charts)}</div>")
    delta = _delta_chart(report)
    if delta:
        blocks.append(delta)
    legend = "".join(f'<span><i class="o-{o}" style="background: var(--{o})"></i>{o}</span>' for o in OUTCOMES)
    content = "".join(blocks) or '<p class="muted">No measurements to chart in this report.</p>'
    return f'<section id="charts"><h2>Charts</h2><p class="legend">{legend}</p>{content}</section>'


def _delta_chart(report: dict[str, Any]) -> str:
    bars = []
    for r in sorted(report["results"], key=lambda r: r["engine"]):
        m = r["metrics"]
        if r["check"] != "delta" or m.get("update_layer_bytes") is None:
            continue
        layer, file = float(m["update_layer_bytes"]), float(m.get("update_file_bytes") or 0)
        ratio = f" ({layer / file:,.0f}× the file cost)" if file else ""
        bars.append(Bar(f"{r['engine']} · layers", layer, "k-layer", f"{r['engine']}: {human_bytes(layer)} by layer{ratio}"))
        bars.append(Bar(f"{r['engine']} · files", file, "k-file", f"{r['engine']}: {human_bytes(file)} by file"))
    if not bars:
        return ""
    return ('<h3>Delta cost: update v1 → v2</h3><p class="muted">bytes an update moves when whole layers are the '
            'unit (blue) vs when changed files are (green)</p>'
            f'<div class="charts">{bar_chart("Update cost per engine", bars, human_bytes)}</div>')


def digest_table(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """image → engine → canonical digest of its save (reference-conformance)."""
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for r in report["results"]:
        digest = r["metrics"].get("canonical_digest")
        if digest:
            table[r["image"]][r["engine"]] = str(digest)
    return dict(sorted(table.items()))


def _digests(report: dict[str, Any]) -> str:
    table = digest_table(report)
    if not table:
        return ('<section id="digests"><h2>Canonical digests</h2><p class="muted">No reference-conformance '
                'results with a canonical digest in this report.</p></section>')
    diffs = report.get("host_differences") or []
    intro = ("The sha256 of the canonical archive of each engine's save: equal digests mean the same image, "
             "however each engine packed it. Shading groups equal digests within an image.")
    flagged = ""
    if diffs:
        items = "".join(f"<li><b>{escape(d['image'])}</b>: " + "; ".join(
            f"<code>{escape(value_text(dg))}</code> on {escape(', '.join(keys))}" for dg, keys in d["digests"].items())
            + "</li>" for d in diffs)
        flagged = (f'<p class="o-fail" style="padding:4px 8px">Not the same image everywhere: more than one '
                   f'canonical digest for</p><ul>{items}</ul>')
    elif report["run"].get("sources"):
        flagged = '<p class="o-pass" style="padding:4px 8px">Every host saved every image to the same canonical digest.</p>'
    engines = sorted({e for row in table.values() for e in row})
    head = "".join(f"<th>{escape(img)}</th>" for img in table)
    rows = []
    groups = {img: {d: i for i, d in enumerate(dict.fromkeys(row.values()))} for img, row in table.items()}
    for engine in engines:
        tds = []
        for img, row in table.items():
            d = row.get(engine)
            tds.append(f'<td class="mono g{groups[img][d] % 4}" title="{escape(d)}">{escape(value_text(d))}</td>'
                       if d else '<td class="muted">—</td>')
        rows.append(f"<tr><th>{escape(engine)}</th>{''.join(tds)}</tr>")
    return (f'<section id="digests"><h2>Canonical digests</h2><p class="muted">{escape(intro)}</p>{flagged}'
            f'<table class="plain"><thead><tr><th>engine</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            f"</table></section>")


def _engines(report: dict[str, Any]) -> str:
    cols = ("id", "version", "storage", "os", "arch", "endpoint")
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(e.get(c) or '—'))}</td>" for c in cols) + "</tr>"
                   for e in report["engines"])
    return (f'<section id="engines"><h2>Engines</h2><table class="plain"><thead><tr>'
            f'{"".join(f"<th>{c}</th>" for c in cols)}</tr></thead><tbody>{rows}</tbody></table></section>')

