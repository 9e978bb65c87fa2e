"""The engine-upgrade check: an engine's behaviour distilled from a report, and what changed between two.

`distill` keeps, per check × image × test variant, the outcome and the facts that
describe behaviour rather than speed: distinct archives and drift categories,
RepoDigests counts, digest-preservation verdicts, whether a pull retry resumed,
the archive format, and the image's canonical digest and ID.  `compare` lines a
candidate up against a baseline; a change is a *regression* when a pass became a
fail or error, or when saves that were deterministic are not any more.  Every
other difference is reported as a change (or an improvement), never hidden.  A
result that could not be measured (`error`) has no facts: it is compared by its
outcome alone, and one not measured in either run is listed apart, never counted
among the results that behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from harness.errors import UsageError
from harness.report.diff_text import value_text
from harness.report.report_json import engine_ids, variant

BASELINE_VERSION = 1
BAD = ("fail", "error")
UNMEASURED = "error"

Facts = dict[str, Any]


def _categories(result: dict[str, Any]) -> list[str]:
    return sorted({f["category"] for f in result["findings"]})


def _retry(m: dict[str, Any]) -> str | None:
    if m.get("retry_bytes") is None or not m.get("layer_bytes"):
        return None
    return "resumed" if m["retry_bytes"] < m["layer_bytes"] else "restarted"


FACTS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "distinct archives": ("nondeterminism", lambda r: r["metrics"].get("distinct_archives")),
    "drift": ("nondeterminism", lambda r: _categories(r) if r["check"] == "save-determinism" else None),
    "re-save keeps digest": ("nondeterminism", lambda r: r["metrics"].get("resave_keeps_digest")),
    "round-trip drift": ("nondeterminism", lambda r: _categories(r) if r["check"] == "round-trip" else None),
    "RepoDigests after push": ("RepoDigests", lambda r: r["metrics"].get("repodigests_after_push")),
    "RepoDigests after pull": ("RepoDigests", lambda r: r["metrics"].get("repodigests_after_pull")),
    "registry digest": ("digest preservation", lambda r: r["metrics"].get("digest") or r["metrics"].get("outcome")
                        if r["check"] == "digest-preservation" else None),  # outcome: "copy or load failed"
    "pull retry": ("pull resume", lambda r: _retry(r["metrics"])),
    "retry uses Range": ("pull resume", lambda r: r["metrics"].get("retry_used_range")),
    "partial data left": ("pull resume", lambda r: None if r["metrics"].get("partial_bytes_left") is None
                          else r["metrics"]["partial_bytes_left"] > 0),
    "stops downloading when the client leaves": (
        "pull resume", lambda r: r["metrics"].get("engine_stopped_download_after_cancel")),
    "archive format": ("archive format", lambda r: r["metrics"].get("archive_format")),
    "differences from canonical": ("archive format", lambda r: sorted(r["metrics"]["differences"])
                                   if isinstance(r["metrics"].get("differences"), dict) else None),
    "canonical digest": ("image digest", lambda r: r["metrics"].get("canonical_digest")),
    "image ID": ("image digest", lambda r: r["metrics"].get("image_id")),
    "requests failing beside another client": (
        "concurrency", lambda r: sorted(r["metrics"]["failed"]) if isinstance(r["metrics"].get("failed"), dict)
        else None),  # which kinds, not how many: the rate of a race varies from run to run
}
"""Fact name → (the theme it is reported under, how to read it from a result); None: not measured."""


def distill(report: dict[str, Any], engine: str) -> dict[str, Any]:
    """The behaviour of `engine` (its id in `report`) as a baseline document."""
    entries = {e["id"]: e for e in report["engines"]}
    if engine not in entries:
        raise UsageError(f"the report has no engine {engine!r}", hint=f"it has: {', '.join(entries) or 'none'}")
    original = engine_ids(report)[engine]
    behaviour: dict[str, dict[str, Any]] = {}
    for r in report["results"]:
        if r["engine"] != engine:
            continue
        key = " · ".join((r["check"], r["image"] or "-", variant(r, original).replace("_", " ")))
        facts = {} if r["outcome"] == UNMEASURED else {  # what was not measured is no fact about the engine
            name: value for name, (_, read) in FACTS.items() if (value := read(r)) is not None}
        behaviour[key] = {"outcome": r["outcome"], "facts": facts, "message": r["message"]}
    if not behaviour:
        raise UsageError(f"the report has no results for {engine}")
    return {"baseline": BASELINE_VERSION, "engine": entries[engine], "run": report["run"],
            "behaviour": dict(sorted(behaviour.items()))}


def record_line(doc: dict[str, Any], output: object) -> str:
    """What `baseline record` answers: the engine, its results, how many of them failed or erred, the file."""
    bad = sum(b["outcome"] in BAD for b in doc["behaviour"].values())
    return f"baseline of {doc['engine']['id']}: {len(doc['behaviour'])} results ({bad} failing or erroring) → {output}"


def check_baseline(doc: Any, source: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("baseline") != BASELINE_VERSION or not isinstance(doc.get("behaviour"), dict):
        raise UsageError(f"{source}: not a baseline (written by `imgharness baseline record`)")
    return doc


@dataclass(frozen=True)
class Change:
    """One difference in behaviour between baseline and candidate."""

    theme: str       # outcome, nondeterminism, RepoDigests, archive format, image digest, …
    key: str         # check · image · test
    what: str        # the fact (or "outcome")
    before: Any
    after: Any
    verdict: str     # "regression", "improvement" or "change"
    note: str = ""

    def line(self) -> str:
        text = f"{self.key}: {self.what} {_show(self.before)} → {_show(self.after)}"
        return text + (f" ({self.note})" if self.note else "")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]" if value else "none"
    return value_text(value, 40)


def compare(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[Change]:
    """What changed from `baseline` to `candidate` (both from `distill`), results in key order."""
    before, after = baseline["behaviour"], candidate["behaviour"]
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            changes.append(Change("coverage", key, "result", before[key]["outcome"], None, "change", "not run on the candidate"))
            continue
        if key not in before:
            changes.append(Change("coverage", key, "result", None, after[key]["outcome"], "change", "new on the candidate"))
            continue
        b, a = before[key], after[key]
        if b["outcome"] != a["outcome"]:
            verdict = ("regression" if b["outcome"] not in BAD and a["outcome"] in BAD else
                       "improvement" if b["outcome"] in BAD and a["outcome"] not in BAD else "change")
            changes.append(Change("outcome", key, "outcome", b["outcome"], a["outcome"], verdict, a["message"][:100]))
        for name in FACTS:
            old, new = b["facts"].get(name), a["facts"].get(name)
            if old == new or old is None or new is None:
                continue
            changes.append(Change(FACTS[name][0], key, name, old, new, _fact_verdict(name, old, new)))
    return changes


def _fact_verdict(name: str, old: Any, new: Any) -> str:
    """New nondeterminism is a regression, gone nondeterminism an improvement; other facts are changes."""
    if name == "distinct archives":
        return "regression" if old == 1 and new > 1 else "improvement" if old > 1 and new == 1 else "change"
    if name == "drift":
        return "regression" if not old and new else "improvement" if old and not new else "change"
    if name == "re-save keeps digest":
        return "regression" if old and not new else "improvement"
    if name == "requests failing beside another client":
        return "regression" if set(new) - set(old) else "improvement" if set(old) - set(new) else "change"
    return "change"


def unmeasured_in_both(baseline: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The results neither run could measure: nothing is known about them, so they neither changed nor
    behave the same."""
    before, after = baseline["behaviour"], candidate["behaviour"]
    return [key for key in sorted(set(before) & set(after))
            if before[key]["outcome"] == UNMEASURED and after[key]["outcome"] == UNMEASURED]


THEMES = ("outcome", "nondeterminism", "RepoDigests", "archive format", "image digest", "digest preservation",
          "pull resume", "concurrency", "coverage")


def render(baseline: dict[str, Any], candidate: dict[str, Any], changes: list[Change]) -> str:
    """The check's answer for a person: both engines, changes grouped by theme, regressions marked."""
    def who(doc: dict[str, Any]) -> str:
        e = doc["engine"]
        return (f"{e['id']} ({' · '.join(str(e[k]) for k in ('version', 'storage') if e.get(k))}), "
                f"run {doc['run']['id']} on {doc['run']['host']}")

    lines = [f"baseline:  {who(baseline)}", f"candidate: {who(candidate)}", ""]
    holes = unmeasured_in_both(baseline, candidate)
    if holes:
        lines.append(f"not measured in either run ({len(holes)})")
        lines += [f"  {key}: {value_text(candidate['behaviour'][key]['message'] or 'no message', 100)}"
                  for key in holes]
        lines.append("")
    for theme in THEMES + tuple(sorted({c.theme for c in changes} - set(THEMES))):
        group = [c for c in changes if c.theme == theme]
        if group:
            lines.append(f"{theme} ({len(group)})")
            lines += [f"  {'REGRESSION ' if c.verdict == 'regression' else '+ ' if c.verdict == 'improvement' else ''}"
                      f"{c.line()}" for c in group]
            lines.append("")
    regressions = sum(c.verdict == "regression" for c in changes)
    same = len(set(baseline["behaviour"]) & set(candidate["behaviour"]) - {c.key for c in changes} - set(holes))
    lines.append(f"{len(changes)} changes ({regressions} regressions, "
                 f"{sum(c.verdict == 'improvement' for c in changes)} improvements); "
                 f"{same} result{' behaves' if same == 1 else 's behave'} the same"
                 + (f"; {len(holes)} not measured in either run" if holes else ""))
    return "\n".join(lines) + "\n"
