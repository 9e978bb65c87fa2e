"""The outer archive as an index: every entry's header, sha256, and where its bytes are.

One forward pass over the file hashes every regular entry exactly once (1 MiB
reads) and keeps offsets; blobs are later re-opened as windows of the file, so
memory stays flat whatever the archive's size.  An outer archive that is itself
gzip or zstd compressed is indexed the same way through an inflater and
re-inflated from the start whenever an entry is opened (rare, so simplicity wins).

Names are normalized (``./`` and ``//`` dropped); absolute names, ``..``
components and duplicates are refused, and link resolution never leaves the
archive root.

With `defer_hashing`, an uncompressed archive file's entries named
``blobs/sha256/<hex>`` whose bytes are not compressed are not hashed: their
digest is the one the name claims, `TarIndex.deferred` lists them, and the
consumer verifies what it uses as it copies it (the reference writer hashes
a layer while the kernel copies it, instead of hashing it here and again
there).  Every other entry is hashed as always.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import IO, Callable, Iterable, cast

from harness.archive.compression import MAGIC_LEN, detect, open_maybe_compressed
from harness.errors import MalformedArchive
from harness.image import Compression, Entry, EntryType
from harness.tar.hashing import hash_all, hash_exact
from harness.tar.members import has_data, iter_members, tar_header
from harness.tar.streams import CHUNK, ForwardReader, Window, skip

MAX_LINK_HOPS = 16
_CLAIMING = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")

FileIdentity = tuple[int, int, int, int, int]
"""(device, inode, size, mtime_ns, ctime_ns) of an archive file: what must not change between reading and copying."""


def file_identity(st: os.stat_result) -> FileIdentity:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def normalize(name: str) -> str:
    """The canonical form of an entry name; MalformedArchive for names that point outside the archive."""
    if name.startswith("/"):
        raise MalformedArchive(f"absolute entry name {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise MalformedArchive(f"entry name {name!r} climbs out of the archive")
    return "/".join(parts)


def join_inside(base_dir: str, target: str) -> str:
    """`target` resolved against `base_dir`, refusing anything that would leave the archive root."""
    if target.startswith("/"):
        raise MalformedArchive(f"link to absolute path {target!r}")
    parts: list[str] = [p for p in base_dir.split("/") if p]
    for p in target.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise MalformedArchive(f"link target {target!r} leaves the archive")
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


@dataclass(frozen=True)
class IndexedEntry:
    """One outer entry: the model's `Entry` plus what it takes to re-open its bytes."""

    entry: Entry
    name: str      # normalized name
    offset: int    # start of the entry's bytes in the (uncompressed) tar stream
    head: bytes    # first bytes of its content, for magic detection

    @property
    def type(self) -> EntryType:
        return self.entry.header.type

    @property
    def size(self) -> int:
        return self.entry.header.size

    @property
    def digest(self) -> str:
        """sha256 of the content (regular entries only)."""
        if self.entry.digest is None:
            raise MalformedArchive(f"{self.name} is not a regular file")
        return self.entry.digest

    @property
    def compression(self) -> Compression:
        return detect(self.head)


@dataclass(frozen=True)
class EntryOpener:
    """An `Opener` of one entry's bytes that also says where they lie, for a consumer that copies them
    without reading them through Python (`os.copy_file_range`) when the archive file is not compressed."""

    path: str
    offset: int        # in the uncompressed tar stream (the file itself when `outer` is NONE)
    size: int
    outer: Compression  # of the archive file
    hashed: bool       # False when the entry's digest is only the one its name claims (`TarIndex.deferred`)
    identity: FileIdentity  # of the archive file when it was indexed

    def __call__(self) -> IO[bytes]:
        if self.outer is Compression.NONE:
            f = open(self.path, "rb", buffering=CHUNK)
            f.seek(self.offset)
            return cast(IO[bytes], Window(f, self.size))
        raw, _ = open_maybe_compressed(self.path)
        try:
            skip(raw, self.offset)
        except BaseException:
            raw.close()
            raise
        return cast(IO[bytes], Window(raw, self.size))


class TarIndex:
    """Lookup, link resolution and openers over the indexed entries of one archive file."""

    def __init__(self, path: str, entries: Iterable[IndexedEntry], *, compression: Compression,
                 size: int, whole_digest: str, identity: FileIdentity = (0, 0, 0, 0, 0),
                 deferred: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.entries = tuple(entries)
        self.compression = compression  # of the outer file itself
        self.size = size
        self.whole_digest = whole_digest
        self.identity = identity
        self.deferred = deferred  # entry names whose digest was not computed but taken from the name
        self._by_name: dict[str, IndexedEntry] = {}
        for e in self.entries:
            if not e.name:
                continue  # the archive root "./"
            if e.name in self._by_name:
                raise MalformedArchive(f"duplicate entry {e.name!r}")
            self._by_name[e.name] = e

    def get(self, name: str) -> IndexedEntry | None:
        return self._by_name.get(normalize(name))

    def resolve(self, name: str, what: str) -> IndexedEntry:
        """The regular entry `name` refers to, following symlinks and hardlinks inside the archive."""
        e = self.find(name, what)
        if e is None:
            raise MalformedArchive(f"{what}: {name!r} is missing from the archive")
        return e

    def find(self, name: str, what: str) -> IndexedEntry | None:
        """As `resolve`, but None when `name`, or the entry a link names, is not in the archive."""
        current = normalize(name)
        for _ in range(MAX_LINK_HOPS):
            e = self._by_name.get(current)
            if e is None:
                return None
            if e.type is EntryType.FILE:
                return e
            link = e.entry.header.linkname
            if e.type is EntryType.SYMLINK:
                current = join_inside(posixpath.dirname(current), link)
            elif e.type is EntryType.HARDLINK:
                current = join_inside("", link)
            else:
                raise MalformedArchive(f"{what}: {name!r} is a {e.type}, not a file")
        raise MalformedArchive(f"{what}: {name!r}: more than {MAX_LINK_HOPS} links")

    def opener(self, e: IndexedEntry) -> EntryOpener:
        """A function returning a fresh stream of the entry's bytes."""
        return EntryOpener(self.path, e.offset, e.size, self.compression, e.name not in self.deferred,
                           self.identity)

    def read_bytes(self, e: IndexedEntry, limit: int, what: str) -> bytes:
        """The whole content of a small entry (metadata), refusing more than `limit` bytes."""
        if e.size > limit:
            raise MalformedArchive(f"{what}: {e.size} bytes exceeds the {limit >> 20} MiB limit for metadata")
        with self.opener(e)() as s:
            return s.read()


def build_index(path: str | os.PathLike[str], *, whole_digest: bool = False,
                defer_hashing: bool = False) -> TarIndex:
    """Index an archive file in one forward pass (plus one more for `whole_digest` of a compressed file);
    see the module docstring for `defer_hashing`."""
    path = os.fspath(path)
    st = os.stat(path)
    size = st.st_size
    raw, compression = open_maybe_compressed(path)
    tee = hashlib.sha256() if whole_digest and compression is Compression.NONE else None
    defer = defer_hashing and compression is Compression.NONE and not whole_digest
    entries: list[IndexedEntry] = []
    deferred: set[str] = set()
    with ForwardReader(raw, tee=tee) as reader, (open(path, "rb", buffering=0) if defer else nullcontext()) as peek:
        for ti in iter_members(reader, strict_names=True):
            name = normalize(ti.name)
            digest: str | None = None
            head = b""
            if has_data(ti):
                claim = _claim(peek, name, ti.offset_data, ti.size, size) if peek is not None else None
                if claim is not None:
                    digest, head = claim
                    deferred.add(name)
                else:
                    reader.seek(ti.offset_data)
                    digest, head = hash_exact(reader, ti.size, head=MAGIC_LEN)
            entries.append(IndexedEntry(Entry(len(entries), tar_header(ti), digest), name, ti.offset_data, head))
        if tee is not None:
            while reader.read(CHUNK):
                pass
    whole = ""
    if tee is not None:
        whole = "sha256:" + tee.hexdigest()
    elif whole_digest:
        whole = hash_all(_file_opener(path))[0]
    return TarIndex(path, entries, compression=compression, size=size, whole_digest=whole,
                    identity=file_identity(st), deferred=frozenset(deferred))


def _claim(f: IO[bytes], name: str, offset: int, size: int, file_size: int) -> tuple[str, bytes] | None:
    """The digest an uncompressed ``blobs/sha256/<hex>`` entry's name claims, and its first bytes (the entry
    must lie inside the file); None for any other entry."""
    m = _CLAIMING.match(name)
    if m is None:
        return None
    if offset + size > file_size:
        raise MalformedArchive(f"unexpected end of data ({max(0, file_size - offset)} of {size} bytes)")
    head = os.pread(f.fileno(), min(MAGIC_LEN, size), offset)
    return ("sha256:" + m.group(1), head) if detect(head) is Compression.NONE else None


def _file_opener(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb", buffering=0)
