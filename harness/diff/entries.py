"""The outer archive's entries: names, tar headers and order.

This is where ``docker save`` drift lives (an mtime in one header), so every
header of every common entry is compared, field class by field class, at
``archive:<entry name>``. Entries are matched by name after B's names are
restated in A's terms, so a blob renamed because its digest changed is the
same entry. Bytes are not compared here for blobs (the image level does that)
nor for index.json / manifest.json / repositories (compared as JSON by
`harness.diff.layout`); other entries (oci-layout, legacy VERSION and json)
are compared by digest.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from harness.diff.explain import Explanation
from harness.diff.headers import describe, header_changes
from harness.diff.jsondiff import same_json
from harness.diff.matching import first_divergence, order_finding
from harness.diff.metadata import SAME_JSON
from harness.findings import Category, Finding
from harness.image import Archive, Entry

LAYOUT_FILES = ("index.json", "manifest.json", "repositories")


def _documents(archive: Archive) -> dict[str, Any]:
    return {"index.json": archive.index, "manifest.json": archive.manifest_json, "repositories": archive.repositories}


def _metadata(name: str) -> bool:
    """Entries describing the layout rather than holding image content."""
    return name == "oci-layout" or name.endswith("/json")


def _content(name: str, ea: Entry, eb: Entry, a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    """Byte differences of entries that no other level compares."""
    if name in LAYOUT_FILES:
        da, db = _documents(a)[name], _documents(b)[name]
        if ea.digest != eb.digest and da is not None and same_json(da, db):
            return [Finding(Category.MANIFEST, f"archive:{name}", ea.digest, eb.digest, SAME_JSON)]
        return []
    if name in ex.content_explained:
        return []
    header_b = dataclasses.replace(eb.header, linkname=ex.rewrite.text(eb.header.linkname))
    category = Category.MANIFEST if _metadata(name) else Category.CONTENT
    return [
        Finding(category, f"archive:{name}", change.a, change.b, change.note)
        for change in header_changes(ea.header, header_b, digests=(ea.digest, eb.digest))
        if change.category is Category.CONTENT
    ]


def compare_entries(a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    """Findings about the outer entries of two archives of the same format."""
    findings = [
        Finding(Category.ARCHIVE_FORMAT, f"archive:{r.a}", r.a, r.b, "same part of the image under another entry name")
        for r in ex.roles if r.a and r.b and not r.explained
    ]
    by_a: Mapping[str, Entry] = {e.header.name: e for e in a.entries}
    by_b: Mapping[str, Entry] = {ex.rewrite.text(e.header.name): e for e in b.entries}
    compared_elsewhere = {r.a for r in ex.roles}
    for name, ea in by_a.items():
        eb = by_b.get(name)
        if eb is None:
            continue
        for change in header_changes(ea.header, eb.header):
            findings.append(Finding(change.category, f"archive:{name}", change.a, change.b, change.note))
        if name not in compared_elsewhere:
            findings.extend(_content(name, ea, eb, a, b, ex))
    divergence = first_divergence(list(by_a), list(by_b))
    if divergence:
        findings.append(order_finding("archive", *divergence))
    loose_a, loose_b = _unreferenced(a), _unreferenced(b)
    findings += [
        Finding(Category.REMOVED, f"archive:{name}", describe(e.header, e.digest), None,
                "entry only in A" + loose_a.get(name, ""))
        for name, e in by_a.items() if name not in by_b and name not in ex.owned_a
    ]
    findings += [
        Finding(Category.ADDED, f"archive:{name}", None, describe(e.header, e.digest),
                "entry only in B" + loose_b.get(e.header.name, ""))
        for name, e in by_b.items() if name not in by_a and e.header.name not in ex.owned_b
    ]
    return findings


def _unreferenced(archive: Archive) -> dict[str, str]:
    """Notes for entries no manifest names: a person needs to know that no image is missing anything."""
    return {u.name: f"; no manifest names it: {u.what}" for u in archive.unreferenced}
