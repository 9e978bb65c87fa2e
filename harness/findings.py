"""Findings: the plain, immutable facts every level of the harness produces.

A finding says *what kind* of difference (a fixed vocabulary, `Category`),
*where* (a path such as ``archive:manifest.json``,
``image[0].layer[2](sha256:…):etc/passwd`` or ``image[0].config:$.config.Env[1]``)
and both values.  Reports are views of findings; nothing downstream re-derives them.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable


class Category(str, enum.Enum):
    """The fixed vocabulary of differences, each reported at its cause."""

    ARCHIVE_FORMAT = "archive-format"  # same image, another container format or tar encoding
    ORDER = "order"                    # same entries, another order
    MTIME = "mtime"                    # only a modification time differs
    OWNERSHIP = "ownership"            # uid/gid/uname/gname
    MODE = "mode"                      # permission bits or entry type
    XATTR = "xattr"                    # extended attributes / PAX records
    COMPRESSION = "compression"        # same uncompressed layer, other compressed bytes
    CONTENT = "content"                # file or blob bytes differ
    ADDED = "added"                    # only in B
    REMOVED = "removed"                # only in A
    CONFIG = "config"                  # image config JSON
    MANIFEST = "manifest"              # manifest, index, manifest.json, repositories
    TAGS = "tags"                      # RepoTags / ref names
    DIGEST_MISMATCH = "digest-mismatch"  # bytes do not match the digest naming them
    MISSING = "missing"                  # the archive names a blob it does not carry
    REQUEST_FAILED = "request-failed"    # an engine failed a request that should have succeeded

    def __str__(self) -> str:
        return self.value


def _plain(value: Any) -> Any:
    """Make a value JSON-friendly and hashable-safe for frozen findings."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One difference (or one broken rule) with its cause, place and both values."""

    category: Category
    where: str
    a: Any = None
    b: Any = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "category": self.category.value,
            "where": self.where,
            "a": _plain(self.a),
            "b": _plain(self.b),
        }
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        return cls(Category(data["category"]), data["where"], data.get("a"), data.get("b"), data.get("note", ""))


@dataclass(frozen=True)
class Ignores:
    """What a caller asks to leave out: whole categories and path globs (matched against `where`)."""

    categories: frozenset[Category] = field(default_factory=frozenset)
    paths: tuple[str, ...] = ()

    def keeps(self, finding: Finding) -> bool:
        from fnmatch import fnmatchcase

        if finding.category in self.categories:
            return False
        tail = finding.where.rsplit(":", 1)[-1]
        return not any(fnmatchcase(finding.where, g) or fnmatchcase(tail, g) for g in self.paths)


IMAGE_CHANGES = frozenset({Category.CONTENT, Category.ADDED, Category.REMOVED, Category.CONFIG, Category.TAGS,
                           Category.DIGEST_MISMATCH, Category.MISSING})
"""Categories that, found at image level, mean the image itself is not the same."""


def changes_the_image(finding: Finding) -> bool:
    """True when a finding is about the image (its files, layers, config, tags), not about how the archive
    packs it: an extra metadata blob or a tag spelled in full in manifest.json is packing (``archive:…``),
    so is an index around the images (``index[…]``); what an attestation says of a build is not the image."""
    place = finding.where.split(":", 1)[1] if finding.where[:2] in ("a:", "b:") else finding.where
    if finding.category in (Category.DIGEST_MISMATCH, Category.MISSING):
        return True
    packing = place.startswith(("archive", "index[")) or ".attestation" in place
    return finding.category in IMAGE_CHANGES and not packing


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Count findings per category, in vocabulary order."""
    counts = Counter(f.category for f in findings)
    return {c.value: counts[c] for c in Category if counts[c]}
