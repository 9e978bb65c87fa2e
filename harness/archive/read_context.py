"""What every format reader shares: blob lookup, bounded JSON, and digest checks.

Like go-containerregistry's ``partial``: the format readers only decide which
entries are configs, layers and manifests; this module derives digests, checks
them, and records every mismatch as a `digest-mismatch` finding so that reading
goes on and all broken rules are reported at once.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Mapping, cast

from harness.archive import inflated_digests
from harness.archive.compression import inflate
from harness.archive.jsonsafe import MAX_JSON_BYTES, expect, load_json
from harness.archive.layers import ArchiveLayer
from harness.archive.tarindex import IndexedEntry, TarIndex
from harness.errors import ArchiveError, MalformedArchive
from harness.findings import Category, Finding
from harness.image import Compression, EntryType
from harness.tar.hashing import hash_all
from harness.tar.streams import ReadAhead

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_BLOB_NAME_RE = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


@dataclass(frozen=True)
class _InflatedCheck:
    """A digest that the inflated content of a compressed entry must have; settled after the read."""

    where: str
    expected: str
    entry: IndexedEntry
    note: str
    context: str  # what an error while inflating is said to concern


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
        self._pending: list[_InflatedCheck] = []
        for e in index.entries:
            m = _BLOB_NAME_RE.match(e.name)
            if m and e.type is EntryType.FILE:
                self.mismatch(f"archive:{e.name}", "sha256:" + m.group(1), e.digest, "blob name vs content")

    def mismatch(self, where: str, expected: object, actual: object, note: str = "") -> None:
        """Record a digest (or size) mismatch when the two differ."""
        if expected != actual:
            self.problems.append(Finding(Category.DIGEST_MISMATCH, where, expected, actual, note))

    def missing(self, where: str, digest: str, what: str) -> None:
        """Record a blob the archive names but does not carry: reading goes on with what is there."""
        self.problems.append(Finding(Category.MISSING, where, digest, None, f"{what} is not in the archive"))

    def resolve(self, name: str, what: str) -> IndexedEntry:
        return self.index.resolve(name, what)

    def find(self, name: str, what: str) -> IndexedEntry | None:
        return self.index.find(name, what)

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

    def check_inflated(self, where: str, expected: str, e: IndexedEntry, note: str, *, context: str) -> None:
        """Record a mismatch when `e`'s content, once inflated, does not have digest `expected`.

        Uncompressed entries are checked at once (the index hashed them);
        compressed ones when `settle` runs, after whoever reads the archive
        may have inflated them already (`inflated_digests`).
        """
        if e.compression is Compression.NONE:
            self.mismatch(where, expected, e.digest, note)
        else:
            self._pending.append(_InflatedCheck(where, expected, e, note, context))

    def settle(self) -> list[Finding]:
        """Every problem: those found while reading, and the checks of inflated content, blobs side by side."""
        pending, self._pending = self._pending, []
        by_blob: dict[str, _InflatedCheck] = {}
        for c in pending:
            by_blob.setdefault(c.entry.digest, c)  # one inflation per blob, errors named by its first check
        firsts = list(by_blob.values())
        workers = min(len(firsts), os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="imgharness-verify") as pool:
                found = list(pool.map(self._inflated_digest, firsts))
        else:
            found = [self._inflated_digest(c) for c in firsts]
        digests = {c.entry.digest: d for c, d in zip(firsts, found)}
        for c in pending:
            self.mismatch(c.where, c.expected, digests[c.entry.digest], c.note)
        return self.problems

    def _inflated_digest(self, check: _InflatedCheck) -> str:
        """sha256 of the checked entry inflated, computed once per process (keyed by the digest the index computed)."""
        e = check.entry
        opener = self.index.opener(e)
        try:
            return inflated_digests.digest_of(
                inflated_digests.key_of(e.digest, e.size),
                lambda: hash_all(lambda: cast(IO[bytes], ReadAhead(inflate(opener(), e.compression, size=e.size))))
            ).digest
        except MalformedArchive as err:
            raise MalformedArchive(f"{check.context} ({e.name}): {err.message}", path=self.index.path,
                                   hint=err.hint) from err
        except OSError as err:
            raise ArchiveError(f"cannot read: {err.strerror or err}", path=self.index.path) from err

    def layer(self, e: IndexedEntry, *, position: int, diff_id: str, media_type: str, where: str) -> ArchiveLayer:
        """A layer over entry `e`, whose uncompressed content is checked against `diff_id` (see `check_inflated`)."""
        if diff_id:  # unknown when the config is missing: nothing to check against
            self.check_inflated(where, diff_id, e, "diff_id vs uncompressed layer", context=where)
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
            label=where,
        )
