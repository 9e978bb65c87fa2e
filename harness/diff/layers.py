"""Layers of a matched image pair: aligned by diff_id, compared by stored blob.

Same diff_id, other stored digest: the layer was only recompressed, one
`compression` finding and nothing else (unless both blobs are uncompressed:
then one diff_id is false and the content differs). Other diff_id: the cause
is inside the layer, so the files are compared (`harness.diff.layer_files`). A
layer on one side only is `added` / `removed`.  A layer whose blob one side
lacks is compared by digest alone (the lack is that side's `missing` problem);
where a config is missing, layers are aligned by stored digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.diff.layer_files import compare_files
from harness.diff.matching import align_layers
from harness.findings import Category, Finding
from harness.image import Compression, Layer


@dataclass(frozen=True)
class LayerOutcome:
    """How the layers of a pair lined up; the rest of the differ uses it to explain consequences."""

    pairs: tuple[tuple[int, int], ...]  # (A position, B position) compared with each other
    only_a: tuple[int, ...]
    only_b: tuple[int, ...]
    changed: bool  # some diff_id or stored blob differs, or a layer is on one side only


def _stored(layer: Layer) -> dict[str, str]:
    return {"compression": str(layer.compression), "digest": layer.digest}


def _both_plain(la: Layer, lb: Layer) -> bool:
    """Both blobs are the layer tars themselves: other bytes under one diff_id are other content, not
    recompression (one side's diff_id is false, and reading it recorded a digest-mismatch)."""
    return la.compression is Compression.NONE and lb.compression is Compression.NONE


def compare_layers(label: str, a: tuple[Layer, ...], b: tuple[Layer, ...]) -> tuple[list[Finding], LayerOutcome]:
    """Findings for the layers of one image pair, and how they were aligned."""
    known = all(x.diff_id for x in (*a, *b))  # diff_ids are unknown where a config is missing
    key = (lambda x: x.diff_id) if known else (lambda x: x.digest)
    pairs, only_a, only_b = align_layers([key(x) for x in a], [key(y) for y in b])
    findings: list[Finding] = []
    for i in only_a:
        findings.append(Finding(Category.REMOVED, f"{label}.layer[{i}]", a[i].diff_id, None, "layer only in A"))
    for j in only_b:
        findings.append(Finding(Category.ADDED, f"{label}.layer[{j}]", None, b[j].diff_id, "layer only in B"))
    changed = bool(only_a or only_b)
    for i, j in pairs:
        la, lb = a[i], b[j]
        where = f"{label}.layer[{i}]"
        note = f"B's layer[{j}]" if i != j else ""
        if not (la.present and lb.present):  # the missing blob is a problem of its side already
            if la.digest != lb.digest and not (la.diff_id and la.diff_id == lb.diff_id):
                findings.append(Finding(Category.CONTENT, where, _stored(la), _stored(lb),
                                        "compared by digest: one side lacks the blob"))
                changed = True
            continue
        if la.diff_id == lb.diff_id and (la.digest == lb.digest or not _both_plain(la, lb)):
            if la.digest != lb.digest:
                findings.append(Finding(Category.COMPRESSION, where, _stored(la), _stored(lb), note))
                changed = True
            continue
        changed = True
        if la.compression != lb.compression:
            findings.append(Finding(Category.COMPRESSION, where, _stored(la), _stored(lb), note))
        findings.extend(compare_files(where, la, lb))
    return findings, LayerOutcome(tuple(pairs), tuple(only_a), tuple(only_b), changed)
