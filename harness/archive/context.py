"""What every format reader shares: blob lookup, bounded JSON, and digest checks.

Like go-containerregistry's ``partial``: the format readers only decide which
entries are configs, layers and manifests; this module derives digests, checks
them, and records every mismatch as a `digest-mismatch` finding so that reading
goes on and all broken rules are reported at once.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from harness.archive.compression import inflate, max_inflated
from harness.archive.jsonsafe import MAX_JSON_BYTES, expect, load_json
from harness.archive.layers import ArchiveLayer
from harness.archive.streams import hash_all
from harness.archive.tarindex import IndexedEntry, TarIndex
from harness.errors import MalformedArchive
from harness.findings import Category, Finding
from harness.image import Compression, EntryType

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_BLOB_NAME_RE = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")

_INFLATED: dict[tuple[str, int | None], str] = {}
"""Uncompressed digests of compressed blobs inflated in this process, by the blob's computed digest (and the
inflate limit it was read under).  The same bytes inflate to the same bytes, so a layer blob that two
archives share, as most layers of two saves of an image are, is inflated and hashed once, not per archive."""
_INFLATED_MAX = 4096


def check_digest_string(value: Any, what: str) -> str:
    """A ``sha256:<hex>`` digest string, or MalformedArchive (other algorithms are not supported)."""
    expect(value, str, what)
    if not DIGEST_RE.match(value):
        alg = value.split(":", 1)[0] if ":" in value else value
        reason = f"unsupported digest algorithm {alg!r}" if alg != "sha256" else f"malformed digest {value!r}"
        raise MalformedArchive(f"{what}: {reason}")
    return str(value)


class ReadContext:
    """One reading session over an indexed archive; collects `problems`."""

    def __init__(self, index: TarIndex) -> None:
        self.index = index
        self.problems: list[Finding] = []
        for e in index.entries:
            m = _BLOB_NAME_RE.match(e.name)
            if m and e.type is EntryType.FILE:
                self.mismatch(f"archive:{e.name}", "sha256:" + m.group(1), e.digest, "blob name vs content")

    def mismatch(self, where: str, expected: object, actual: object, note: str = "") -> None:
        """Record a digest (or size) mismatch when the two differ."""
        if expected != actual:
            self.problems.append(Finding(Category.DIGEST_MISMATCH, where, expected, actual, note))

    def resolve(self, name: str, what: str) -> IndexedEntry:
        return self.index.resolve(name, what)

    def blob(self, digest: str, what: str) -> IndexedEntry | None:
        """The entry ``blobs/sha256/<hex>`` for a digest, or None when the archive does not carry it."""
        check_digest_string(digest, what)
        name = "blobs/sha256/" + digest.split(":", 1)[1]
        if self.index.get(name) is None:
            return None
        return self.index.resolve(name, what)

    def json(self, e: IndexedEntry, what: str) -> tuple[bytes, Any]:
        """Raw bytes and parsed value of a metadata entry."""
        raw = self.index.read_bytes(e, MAX_JSON_BYTES, what)
        return raw, load_json(raw, what)

    def config(self, e: IndexedEntry, what: str) -> tuple[bytes, Mapping[str, Any], tuple[str, ...]]:
        """Raw bytes, parsed value and diff_ids of an image config."""
        raw, config = self.json(e, what)
        expect(config, dict, what)
        if config.get("config") is not None:  # the run config, read by every consumer as an object
            expect(config["config"], dict, f"{what}: config")
        rootfs = expect(config.get("rootfs"), dict, f"{what}: rootfs")
        diff_ids = expect(rootfs.get("diff_ids", []), list, f"{what}: rootfs.diff_ids")
        return raw, config, tuple(check_digest_string(d, f"{what}: rootfs.diff_ids") for d in diff_ids)

    def uncompressed_digest(self, e: IndexedEntry) -> str:
        """Digest of the entry's content once inflated; the blob digest itself when it is not compressed."""
        if e.compression is Compression.NONE:
            return e.digest
        key = (e.digest, max_inflated(e.size))  # the digest the index computed, not one a manifest claims
        if key not in _INFLATED:
            opener = self.index.opener(e)
            digest = hash_all(lambda: inflate(opener(), e.compression, size=e.size))[0]
            if len(_INFLATED) >= _INFLATED_MAX:
                del _INFLATED[next(iter(_INFLATED))]
            _INFLATED[key] = digest
        return _INFLATED[key]

    def layer(self, e: IndexedEntry, *, position: int, diff_id: str, media_type: str, where: str) -> ArchiveLayer:
        """A layer over entry `e`, after checking its uncompressed content against `diff_id`."""
        try:
            actual = self.uncompressed_digest(e)
        except MalformedArchive as err:
            raise MalformedArchive(f"{where} ({e.name}): {err.message}", hint=err.hint) from err
        self.mismatch(where, diff_id, actual, "diff_id vs uncompressed layer")
        return ArchiveLayer(
            position=position,
            diff_id=diff_id,
            digest=e.digest,
            size=e.size,
            media_type=media_type,
            compression=e.compression,
            entry_name=e.name,
            opener=self.index.opener(e),
            archive=self.index.path,
        )
