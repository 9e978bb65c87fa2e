"""Attestations and artifacts of two archives (paired by `harness.diff.matching`), compared blob by blob.

Blobs are compared by digest, never read as layer tars; where both sides are
small JSON documents (in-toto statements, configs) they are compared after B
is restated in A's terms, and the note names the first paths that differ.  One
on one side only is a single `added` / `removed` finding, not a cascade of its
blobs.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from harness.diff.explain import Rewriter
from harness.diff.jsondiff import json_changes
from harness.diff.matching import ReferrerPair, UnmatchedReferrer
from harness.findings import Category, Finding
from harness.image import Blob, Referrer

MAX_JSON_BYTES = 1 << 20  # larger blobs are compared by digest only
NOTE_PATHS = 3


def one_side(rest_a: Sequence[UnmatchedReferrer], rest_b: Sequence[UnmatchedReferrer]) -> list[Finding]:
    """One finding per attestation or artifact on one side only (none for the attestation of an image on
    one side only: the image's finding says it)."""
    def identity(r: Referrer) -> dict[str, Any]:
        return {"manifest": r.manifest.digest, "type": r.artifact_type, "tags": list(r.tags)}

    return ([Finding(Category.REMOVED, u.label, identity(u.referrer), None, f"{u.referrer.kind} only in A")
             for u in rest_a if not u.with_its_image]
            + [Finding(Category.ADDED, u.label, None, identity(u.referrer), f"{u.referrer.kind} only in B")
               for u in rest_b if not u.with_its_image])


def compare_referrer(pair: ReferrerPair, rewrite: Rewriter) -> list[Finding]:
    """Findings for the blobs and tags of one pair: what still differs once B is restated in A's terms (an
    attestation names the digest of the image it attests: a change of the image is not one of the
    attestation); the manifest is compared by the caller."""
    a, b = pair.a, pair.b
    findings: list[Finding] = []
    if a.tags and b.tags and set(a.tags) != set(b.tags):
        findings.append(Finding(Category.TAGS, f"{pair.label}.tags", list(a.tags), list(b.tags)))
    if a.manifest.digest == b.manifest.digest:
        return findings
    findings += _blob(f"{pair.label}.config", a.config, b.config, rewrite)
    for j in range(max(len(a.blobs), len(b.blobs))):
        where = f"{pair.label}.blob[{j}]"
        if j >= len(b.blobs):
            findings.append(Finding(Category.REMOVED, where, a.blobs[j].descriptor.digest, None, "blob only in A"))
        elif j >= len(a.blobs):
            findings.append(Finding(Category.ADDED, where, None, b.blobs[j].descriptor.digest, "blob only in B"))
        else:
            findings += _blob(where, a.blobs[j], b.blobs[j], rewrite)
    return findings


def _blob(where: str, a: Blob, b: Blob, rewrite: Rewriter) -> list[Finding]:
    da, db = a.descriptor, b.descriptor
    if da.digest == db.digest or not (a.present and b.present):  # a lack is that side's `missing` problem
        return []
    kind = da.annotations.get("in-toto.io/predicate-type") or da.media_type
    ja, jb = _json(a), _json(b)
    if ja is None or jb is None:
        return [Finding(Category.CONTENT, where, da.digest, db.digest, kind)]
    changes = json_changes(ja, rewrite.json(jb))
    if not changes:
        return []  # it differs only where it names what it refers to
    paths = ", ".join(c.path for c in changes[:NOTE_PATHS])
    more = f" and {len(changes) - NOTE_PATHS} more" if len(changes) > NOTE_PATHS else ""
    return [Finding(Category.CONTENT, where, da.digest, db.digest, f"{kind}; differs at {paths}{more}")]


def _json(blob: Blob) -> Any:
    """A small JSON blob parsed, else None (compared by digest)."""
    if blob.opener is None or blob.descriptor.size > MAX_JSON_BYTES:
        return None
    with blob.opener() as f:
        raw = f.read(MAX_JSON_BYTES + 1)
    try:
        return json.loads(raw)
    except ValueError:
        return None
