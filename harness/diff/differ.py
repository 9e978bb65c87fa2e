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

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from harness.diff.entries import compare_entries
from harness.diff.explain import PairOutcome, ReferrerMatch, explain
from harness.diff.layers import compare_layers
from harness.diff.layout import compare_indexes, compare_layout
from harness.diff.matching import ImagePair, Unmatched, match_images, match_referrers
from harness.diff.metadata import compare_config, compare_manifest, compare_raw_manifest
from harness.diff.referrers import compare_referrer, one_side
from harness.findings import Category, Finding, Ignores, summarize
from harness.image import Archive, Image, Referrer, ReferrerKind
from harness.sorting import natural_key

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
    same_image: bool = True  # the same images (`same_images`), whatever the packaging and the ignores


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deterministic order: by category (vocabulary order), then place, then values."""
    return sorted(findings, key=lambda f: (_ORDER[f.category], natural_key(f.where), repr(f.a), repr(f.b), f.note))


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


def _all_findings(a: Archive, b: Archive) -> tuple[list[Finding], bool]:
    """Every finding, and whether A and B hold the same images."""
    if a.digest and a.digest == b.digest:
        problems = _problems("a", a) + _problems("b", b)
        return problems, not _broken(problems)  # the same bytes: nothing can differ
    findings, same = _compared(a, b)
    # Last: checking compressed layers against their diff_ids needs them inflated, which comparing
    # their files has just done for the layers that differ (`harness.archive.inflated_digests`).
    problems = _problems("a", a) + _problems("b", b)
    return problems + findings, same and not _broken(problems)


def _broken(problems: list[Finding]) -> bool:
    """Blobs missing, or bytes that are not what their digest says: the archive does not hold its images."""
    return any(p.category in (Category.MISSING, Category.DIGEST_MISMATCH) for p in problems)


def same_images(pairs: list[ImagePair], only_a: list[Unmatched], only_b: list[Unmatched],
                referrers: ReferrerMatch) -> bool:
    """Whether A and B hold the same images: every image (each platform) on both sides, with the same image
    ID and layer contents (diff_ids; stored digests where a config is missing), the same tags where both
    sides name some, and the same artifacts.  Attestations are statements about a build, not the image."""
    if only_a or only_b:
        return False
    for p in pairs:
        layers_a = [x.diff_id or x.digest for x in p.a.layers]
        layers_b = [y.diff_id or y.digest for y in p.b.layers]
        if p.a.config_digest != p.b.config_digest or layers_a != layers_b:
            return False
        if p.a.repo_tags and p.b.repo_tags and set(p.a.repo_tags) != set(p.b.repo_tags):
            return False
    paired, rest_a, rest_b = referrers
    if any(u.referrer.kind is ReferrerKind.ARTIFACT for u in (*rest_a, *rest_b)):
        return False
    return all(_blobs(rp.a) == _blobs(rp.b) for rp in paired if rp.a.kind is ReferrerKind.ARTIFACT)


def _blobs(referrer: Referrer) -> list[str]:
    """What an artifact is made of (its manifest may be restated when what it refers to was recompressed)."""
    return [b.descriptor.digest for b in (referrer.config, *referrer.blobs)]


def _compared(a: Archive, b: Archive) -> tuple[list[Finding], bool]:
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
    return findings, same_images(pairs, only_a, only_b, referrers)


def diff_archives(a: Archive, b: Archive, ignores: Ignores = Ignores()) -> DiffResult:
    """Compare two archives read into the model; `ignores` applies to the final list only."""
    everything, same = _all_findings(a, b)
    kept = sort_findings(f for f in everything if ignores.keeps(f))
    return DiffResult(
        a=a.source, b=b.source, findings=tuple(kept), equivalent=not kept,
        summary=summarize(kept), ignored=len(everything) - len(kept), same_image=same,
    )
