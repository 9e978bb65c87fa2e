"""What each engine does, in one sentence: a phrase per check, read from its results' outcomes and metrics.

A person opening a report wants to know, before any matrix, what they can rely
on with each engine and what they cannot.  `engine_verdicts` answers from
report.json alone: per engine, the phrases of the checks that hold ("saves are
byte-identical"), those that do not ("a cut pull restarts after a registry
error"), and the results that could not be measured (`error`), which are never
read as either.  Nothing is written per engine: a check's phrase comes from what
its results measured (drifting entries, RepoDigests listed twice, the route a
digest was lost on, bytes downloaded again), so a new engine, or an old one that
changes, reads right without an edit here.  The page's top (`html`), the run's
terminal summary (`summary`) and the README's tables (`tables`) say the same
sentences and the same counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from harness.report.report_json import OUTCOMES, check_order, engine_ids, variant
from harness.report.units import human_bytes

MEASURED = ("pass", "fail")
"""Outcomes that are a measurement: `error` is what the harness could not measure, `skipped` was not run."""

Result = dict[str, Any]


@dataclass(frozen=True)
class Phrase:
    """What one check found on one engine, in words; `holds` says whether users can rely on it."""

    check: str
    text: str
    holds: bool


@dataclass(frozen=True)
class EngineVerdict:
    """One engine's results: outcome counts, the phrases of its checks, and what went unmeasured."""

    engine: str
    counts: dict[str, int]            # every outcome in `OUTCOMES` order, zeros included
    phrases: tuple[Phrase, ...]       # in the checks' matrix order
    unmeasured: tuple[str, ...]       # the checks with results that could not be measured

    @property
    def holds(self) -> list[Phrase]:
        return [p for p in self.phrases if p.holds]

    @property
    def breaks(self) -> list[Phrase]:
        return [p for p in self.phrases if not p.holds]

    def unmeasured_text(self) -> str:
        n = self.counts.get("error", 0)
        if not n:
            return ""
        return f"{n} result{'s' if n != 1 else ''} could not be measured ({', '.join(self.unmeasured)})"

    def sentence(self, phrase: Callable[[Phrase], str] = lambda p: p.text,
                 unmeasured: Callable[[str], str] = str, engine: Callable[[str], str] = str) -> str:
        """``ENGINE: what holds, but what does not; N results could not be measured.``  The callables dress
        each part (the page makes them links); the words between them are plain."""
        holds, breaks = ", ".join(map(phrase, self.holds)), ", ".join(map(phrase, self.breaks))
        said = f"{holds}, but {breaks}" if holds and breaks else holds or breaks or "nothing was measured"
        tail = self.unmeasured_text()
        return f"{engine(self.engine)}: {said}" + (f"; {unmeasured(tail)}" if tail else "") + "."


def engine_verdicts(report: dict[str, Any], known_checks: Iterable[str] = ()) -> list[EngineVerdict]:
    """Every engine of `report` (in the report's order) with its counts and phrases; checks in the order of
    `known_checks` first (the matrix order), then the others."""
    order = check_order(report["results"], known_checks)
    ids = engine_ids(report)
    by_engine: dict[str, dict[str, list[Result]]] = defaultdict(lambda: defaultdict(list))
    for r in report["results"]:
        by_engine[r["engine"]][r["check"]].append(r)
    engines = [e["id"] for e in report["engines"]]
    engines += sorted(set(by_engine) - set(engines))
    verdicts = []
    for engine in engines:
        checks = by_engine.get(engine, {})
        counts = Counter(r["outcome"] for rs in checks.values() for r in rs)
        phrases: list[Phrase] = []
        for check in order:
            measured = [r for r in checks.get(check, []) if r["outcome"] in MEASURED]
            if measured:
                describe = DESCRIBE.get(check, _generic)
                phrases += [Phrase(check, text, holds) for text, holds in describe(measured, ids.get(engine, engine))]
        unmeasured = tuple(c for c in order if any(r["outcome"] == "error" for r in checks.get(c, [])))
        verdicts.append(EngineVerdict(engine, {o: counts[o] for o in OUTCOMES} | {
            o: n for o, n in counts.items() if o not in OUTCOMES}, tuple(phrases), unmeasured))
    return verdicts


def shown_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Outcome counts as people read them: pass, fail, error always, then any other outcome that occurred."""
    main = ("pass", "fail", "error")
    return [(o, counts.get(o, 0)) for o in main] + [(o, n) for o, n in counts.items() if o not in main and n]


# ---- per check: results measured on one engine → [(text, holds)] ----

Describe = Callable[[list[Result], str], list[tuple[str, bool]]]


def _param(r: Result, engine_id: str) -> str:
    """The test's own parameter (a route, an interruption), without engine and image."""
    return variant(r, engine_id).partition("[")[2].rstrip("]")


def _only(failed: Sequence[Result], measured: Sequence[Result]) -> str:
    """`` for large`` when only some of the measured images fail, else nothing."""
    bad = sorted({r["image"] for r in failed if r["image"]})
    everything = {r["image"] for r in measured if r["image"]}
    return f" for {', '.join(bad)}" if bad and set(bad) != everything else ""


def _entries(failed: Sequence[Result]) -> str:
    """`` (mtime of blobs/sha256, index.json)``: the categories of the findings and the archive entries they name."""
    cats = sorted({f["category"] for r in failed for f in r["findings"]})
    places = sorted({entry for r in failed for f in r["findings"]
                     if f["where"].startswith("archive:") and " " not in (entry := f["where"].split(":")[1])})
    if not cats:
        return ""
    shown = ", ".join(places[:4]) + (f" and {len(places) - 4} more" if len(places) > 4 else "")
    return f" ({', '.join(cats)}{' of ' + shown if places else ''})"


def _failed(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if r["outcome"] == "fail"]


def _save_determinism(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    restart = [r for r in results if "restart" in variant(r, engine_id)]
    repeated = [r for r in results if r not in restart]
    out: list[tuple[str, bool]] = []
    for group, what in ((repeated, "repeated saves differ"), (restart, "saves differ across a daemon restart")):
        bad = _failed(group)
        if bad:
            out.append((f"{what}{_only(bad, group)}{_entries(bad)}", False))
    if not out:
        out.append(("saves are byte-identical" + (" (also across a restart)" if restart else ""), True))
    elif repeated and not _failed(repeated):
        out.insert(0, ("repeated saves are byte-identical", True))
    return out


def _repodigests(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    listed: dict[str, set[int]] = defaultdict(set)   # after a push / a pull → how many times one was listed
    other: set[str] = set()                           # after … → RepoDigests name another digest
    for r in _failed(results):
        when = "a push" if "push" in variant(r, engine_id) else "a pull"
        for f in r["findings"]:
            if isinstance(f.get("a"), int) and isinstance(f.get("b"), int) and f["b"] > f["a"]:
                listed[when].add(f["b"])
            else:
                other.add(when)
        if not r["findings"]:
            other.add(when)
    out: list[tuple[str, bool]] = []
    if listed:
        times = max(n for ns in listed.values() for n in ns)
        out.append((f"RepoDigests are listed {'twice' if times == 2 else f'{times} times'} after "
                    f"{' and '.join(w for w in _WHEN if w in listed)}", False))
    if other:
        out.append((f"RepoDigests do not name what the registry serves after "
                    f"{' and '.join(w for w in _WHEN if w in other)}", False))
    return out or [("RepoDigests are unique", True)]


_WHEN = ("a push", "a pull")


def _simple(holds: str, breaks: str) -> Describe:
    def describe(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
        bad = _failed(results)
        return [(f"{breaks}{_only(bad, results)}{_entries(bad)}", False)] if bad else [(holds, True)]
    return describe


_DIGEST_WORDS = {"kept": "keep the registry digest", "lost": "lose the registry digest",
                 "changed": "change the registry digest", "load failed": "do not load"}


def _digest_preservation(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    """Routes grouped by what became of the digest on them: ``lose the registry digest (docker-archive)``;
    a route whose images fared differently names the images (``oci-archive for basic``)."""
    happened: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # what → route → images
    images: dict[str, set[str]] = defaultdict(set)                                     # route → images measured
    for r in results:
        what = str(r["metrics"].get("digest") or ("kept" if r["outcome"] == "pass" else "failed"))
        route = _param(r, engine_id).removeprefix("skopeo-") or "copy"
        happened[what][route].add(r["image"])
        images[route].add(r["image"])

    def said(what: str) -> str:
        routes = [route if imgs == images[route] else f"{route} for {', '.join(sorted(imgs))}"
                  for route, imgs in sorted(happened[what].items())]
        return f"{_DIGEST_WORDS.get(what, what)} ({('; ' if any(' for ' in r for r in routes) else ', ').join(routes)})"

    other = sorted(w for w in happened if w != "kept")
    out = [(f"skopeo copies {said('kept')}", True)] if "kept" in happened else []
    return out + ([(f"skopeo copies {' and '.join(map(said, other))}", False)] if other else [])


_INTERRUPTIONS = {"registry-error": "after a registry error", "client-cancel": "after the client hung up"}


def _pull_resume(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    """What a retried pull did after each interruption, interruptions with the same fate in one phrase."""
    fates: dict[tuple[str, bool], list[str]] = defaultdict(list)   # (what it did, holds) → after which cuts
    wasted: dict[str, int] = defaultdict(int)
    for r in sorted(results, key=lambda r: _param(r, engine_id)):
        m, param = r["metrics"], _param(r, engine_id)
        if r["outcome"] == "pass":
            fate = ("resumes", True)
        elif m.get("retry_bytes") is not None and m.get("layer_bytes") and m["retry_bytes"] < m["layer_bytes"]:
            fate = ("resumes but downloads bytes again", False)
        else:
            fate = ("restarts", False)
        fates[fate].append(_INTERRUPTIONS.get(param, f"({param})") if param else "")
        wasted[fate[0]] = max(wasted[fate[0]], int(m.get("wasted_bytes") or 0))
    out = []
    for (did, holds), whens in fates.items():
        again = f" ({human_bytes(wasted[did])} downloaded again)" if wasted[did] and not holds else ""
        out.append((" ".join(["a cut pull", did, " and ".join(w for w in whens if w)]).strip() + again, holds))
    return out


def _concurrent(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    bad = _failed(results)
    if not bad:
        return [("reads keep working beside another client", True)]
    failed: Counter[str] = Counter()
    asked: Counter[str] = Counter()
    for r in bad:
        failed.update(r["metrics"].get("failed") or {})
        asked.update(r["metrics"].get("requests") or {})
    what = ", ".join(f"{n} of {asked[k]} {_REQUESTS.get(k, k)}" for k, n in failed.items() if n)
    return [(f"{what or 'requests'} fail while another client removes images", False)]


_REQUESTS = {"list": "listings", "inspect": "inspects", "save": "saves"}


def _delta(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    if any(r["metrics"].get("resave_keeps_digest") is False for r in results):
        return [("re-saving one version changes its digest", False)]
    return _simple("re-saves keep the digest", "delta fails")(results, engine_id)


def _cross_engine(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    broken = [r for r in _failed(results) if "broken archive" in r["message"]]  # the suite's words for it
    if broken:
        return [(f"the save of a pulled image is a broken archive{_only(broken, results)}", False)]
    return _simple("pulled images save as the original", "a pulled image does not save as the original")(
        results, engine_id)


def _generic(results: list[Result], engine_id: str) -> list[tuple[str, bool]]:
    """A check this module has no words for (a newer suite's): how many of its results hold."""
    check = results[0]["check"]
    bad = _failed(results)
    if not bad:
        return [(f"{check} holds", True)]
    return [(f"{check} fails in {len(bad)} of {len(results)}{_only(bad, results)}", False)]


DESCRIBE: dict[str, Describe] = {
    "save-determinism": _save_determinism,
    "repodigests-unique": _repodigests,
    "round-trip": _simple("round trips keep the image", "a save → load → save round trip changes the image"),
    "cross-engine": _cross_engine,
    "reference-conformance": _simple("saves match the canonical form", "saves do not match the canonical form"),
    "digest-preservation": _digest_preservation,
    "pull-resume": _pull_resume,
    "delta": _delta,
    "concurrent-clients": _concurrent,
}
"""Check → its phrases; a check without an entry gets `_generic`."""
