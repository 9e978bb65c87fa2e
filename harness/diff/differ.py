"""Two archives in, every difference out, each reported once, at its cause.

The order of work follows causality: images are matched, then each pair's
layers (and files inside changed layers), config and tags are compared;
what those findings explain is collected (`harness.diff.explain`), and only
then are manifests, the archive's metadata files and the outer entries
compared, so that digests, sizes and names that follow from a layer or config
change are not reported a second time. Two archives of different formats are
one `archive-format` finding plus the image comparison; their layouts are
not compared with each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from harness.diff.entries import compare_entries
from harness.diff.explain import PairOutcome, explain
from harness.diff.layers import compare_layers
from harness.diff.layout import compare_indexes, compare_layout
from harness.diff.matching import ImagePair, match_images, match_referrers
from harness.diff.metadata import compare_config, compare_manifest, compare_raw_manifest
from harness.diff.referrers import compare_referrer, one_side
from harness.findings import Category, Finding, Ignores, about_the_image, summarize
from harness.image import Archive, Image

_ORDER = {c: k for k, c in enumerate(Category)}


@dataclass(frozen=True)
class DiffResult:
    """The outcome of one comparison: the findings left after ignores, and how many were ignored."""

    a: str
    b: str
    findings: tuple[Finding, ...]
    equivalent: bool
    summary: Mapping[str, int]
    ignored: int = 0
    same_image: bool = True  # no finding says the images differ (`about_the_image`): only packaging may


def _natural(text: str) -> list[tuple[int, int, str]]:
    """Sort key that puts ``layer[2]`` before ``layer[10]``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deterministic order: by category (vocabulary order), then place, then values."""
    return sorted(findings, key=lambda f: (_ORDER[f.category], _natural(f.where), repr(f.a), repr(f.b), f.note))


def _identity(image: Image) -> dict[str, Any]:
    return {"id": image.config_digest, "tags": list(image.repo_tags)}


def _compare_pair(pair: ImagePair) -> tuple[list[Finding], PairOutcome]:
    a, b = pair.a, pair.b
    findings: list[Finding] = []
    if a.repo_tags != b.repo_tags:
        note = "same tags, another order" if set(a.repo_tags) == set(b.repo_tags) else ""
        findings.append(Finding(Category.TAGS, f"{pair.label}.tags", list(a.repo_tags), list(b.repo_tags), note))
    layer_findings, layers = compare_layers(pair.label, a.layers, b.layers)
    findings += layer_findings
    findings += compare_config(pair.label, a, b)
    manifest_changed = bool(a.manifest and b.manifest and a.manifest.digest != b.manifest.digest)
    return findings, PairOutcome(pair, layers, a.config_digest != b.config_digest, manifest_changed)


def _problems(side: str, archive: Archive) -> list[Finding]:
    return [Finding(p.category, f"{side}:{p.where}", p.a, p.b, p.note) for p in archive.problems]


def _all_findings(a: Archive, b: Archive) -> list[Finding]:
    if a.digest and a.digest == b.digest:
        return _problems("a", a) + _problems("b", b)  # the same bytes: nothing can differ
    findings = _compared(a, b)
    # Last: checking compressed layers against their diff_ids needs them inflated, which comparing
    # their files has just done for the layers that differ (`harness.archive.inflated`).
    return _problems("a", a) + _problems("b", b) + findings


def _compared(a: Archive, b: Archive) -> list[Finding]:
    findings: list[Finding] = []
    same_format = a.format == b.format
    if not same_format:
        findings.append(Finding(
            Category.ARCHIVE_FORMAT, "archive", str(a.format), str(b.format),
            "another layout; images compared, layouts not",
        ))
    pairs, only_a, only_b = match_images(a.images, b.images)
    findings += [Finding(Category.REMOVED, u.label, _identity(u.image), None, "image only in A") for u in only_a]
    findings += [Finding(Category.ADDED, u.label, None, _identity(u.image), "image only in B") for u in only_b]
    outcomes = []
    for pair in pairs:
        pair_findings, outcome = _compare_pair(pair)
        findings += pair_findings
        outcomes.append(outcome)
    referrers = match_referrers(a, b, pairs, only_a, only_b)
    findings += one_side(referrers[1], referrers[2])
    ex = explain(a, b, outcomes, only_a, only_b, referrers)
    for out in outcomes:
        pair = out.pair
        findings += compare_manifest(pair.label, pair.a, pair.b, out.layers, ex.rewrite, same_format=same_format)
    for rp in referrers[0]:
        findings += compare_referrer(rp, ex.rewrite)
        findings += compare_raw_manifest(f"{rp.label}.manifest", rp.a.raw_manifest, rp.b.raw_manifest, ex.rewrite)
    findings += compare_indexes(ex)
    if same_format:
        findings += compare_layout(a, b, ex)
        findings += compare_entries(a, b, ex)
    return findings


def diff_archives(a: Archive, b: Archive, ignores: Ignores = Ignores()) -> DiffResult:
    """Compare two archives read into the model; `ignores` applies to the final list only."""
    everything = _all_findings(a, b)
    kept = sort_findings(f for f in everything if ignores.keeps(f))
    return DiffResult(
        a=a.source, b=b.source, findings=tuple(kept), equivalent=not kept,
        summary=summarize(kept), ignored=len(everything) - len(kept),
        same_image=not any(about_the_image(f) for f in kept),
    )
