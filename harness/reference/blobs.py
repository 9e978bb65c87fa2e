"""Layer and artifact blobs into the canonical tar, each verified once against the digest it is written under.

A blob that is a range of an uncompressed archive file (`EntryOpener`) is
copied by the kernel when the reader hashed it (its digest is compared before
the copy, the bytes are not hashed again).  When the reader deferred that
(``read_archive(defer_hashing=True)``), its place in the output is reserved
and a pool of threads reads, hashes and writes it there (`rangecopy`), a
blob per core, while the writing goes on; `finish` checks the digests.  Any
other blob (a compressed archive file, a layer to inflate, a layer the
builder generates) is streamed and hashed on the way.

Copying from a file the reader hashed earlier is only sound if the file did
not change in between: each archive file is opened once, and its identity
(device, inode, size, mtime, ctime) must be the one the reader saw when it is
opened and again after the last copy, or writing fails.

Keeping compression, a compressed layer is copied as stored, but its
uncompressed content must still be its diff_id (an image whose layers
contradict its config is not written, and a decompression bomb is refused):
each is inflated and hashed by the same pool while the copying goes on, and
`finish` checks it too.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Callable

from harness.archive import inflated_digests as inflated
from harness.archive.layers import ArchiveLayer
from harness.tar.hashing import hash_all
from harness.archive.tarindex import EntryOpener, FileIdentity, file_identity
from harness.errors import ArchiveError, DigestMismatch
from harness.image import Blob, Compression, Layer, Opener
from harness.reference.rangecopy import copy_hashed
from harness.reference.tarwriter import CanonicalTar, Unsized


class BlobWriter:
    """Writes blobs into `tar`; use as a context manager, and call `finish` before the archive is final."""

    def __init__(self, tar: CanonicalTar) -> None:
        self._tar = tar
        self._files: dict[str, tuple[int, FileIdentity]] = {}  # archive path → (descriptor, identity)
        self._pool: ThreadPoolExecutor | None = None
        self._checks: list[tuple[str, str, Future[str]]] = []  # (what, expected digest, digest being computed)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for fd, _ in self._files.values():
            os.close(fd)

    def layer(self, name: str, layer: Layer, what: str, *, keep_compression: bool) -> int:
        """Write `layer` as member `name`, as stored or uncompressed; returns the blob's size."""
        if keep_compression:
            size = self._write(name, layer, layer.digest, f"{what} blob", compressed=True)
            if layer.compression is Compression.NONE:  # the stored blob is the layer tar: its digest the diff_id
                _expect(f"{what} (uncompressed)", layer.diff_id, layer.digest)
            else:
                self._check_inflated(f"{what} (uncompressed)", layer)
            return size
        return self._write(name, layer, layer.diff_id, f"{what} (uncompressed)", compressed=False)

    def blob(self, name: str, blob: Blob, what: str) -> None:
        """Write an attestation's or artifact's blob byte for byte."""
        assert blob.opener is not None  # missing blobs are refused before writing
        d = blob.descriptor
        self._write(name, _Stored(blob.opener, d.digest, d.size), d.digest, what, compressed=True)

    def finish(self) -> None:
        """Wait for the checks, and fail if an archive file copied from changed after it was read."""
        for what, expected, future in self._checks:
            _expect(what, expected, future.result())
        for path, (fd, identity) in self._files.items():
            if file_identity(os.fstat(fd)) != identity:
                raise ArchiveError("the file changed while its reference was written", path=path)

    def _write(self, name: str, source: Layer | _Stored, expected: str, what: str, *, compressed: bool) -> int:
        """Copy the blob (its stored bytes when `compressed`, else its layer tar), check that it is `expected`,
        and return its size."""
        opener = getattr(source, "opener", None)  # an archive's layers and blobs say where their bytes lie
        if isinstance(opener, EntryOpener) and opener.outer is Compression.NONE and (
                compressed or source.compression is Compression.NONE):
            fd = self._fd(opener)
            if opener.hashed:  # by the reader: compare now, copy without hashing again
                _expect(what, expected, source.digest)
                self._tar.copy(name, fd, opener.offset, opener.size)
            else:
                self._check(what, expected, copy_hashed, fd, opener.offset, opener.size,
                            *self._tar.reserve(name, opener.size))
            return opener.size
        inflating = not compressed and source.compression is not Compression.NONE
        known: int | None = source.size
        if inflating:  # the tar's length is known only when this process has inflated the blob before
            seen = _inflation(source)
            known = seen.size if seen is not None else None
        with source.compressed() if compressed else _tar_of(source)() as src:
            digest, size = self._tar.stream(name, src, known)
        if inflating:  # inflated in full: no need again
            inflated.remember(inflated.key_of(source.digest, source.size), inflated.Inflated(digest, size))
        _expect(what, expected, digest)
        if known is not None and size != known:
            raise DigestMismatch(what, f"{known} bytes", f"{size} bytes")
        return size

    def _check_inflated(self, what: str, layer: Layer) -> None:
        """`finish` checks that the compressed `layer` inflates to its diff_id (inflated in the pool meanwhile)."""
        self._check(what, layer.diff_id, lambda: inflated.digest_of(
            inflated.key_of(layer.digest, layer.size), lambda: hash_all(_tar_of(layer))).digest)

    def _fd(self, opener: EntryOpener) -> int:
        """The archive file, opened once; it must still be the file the reader indexed."""
        if opener.path not in self._files:
            fd = os.open(opener.path, os.O_RDONLY)
            self._files[opener.path] = (fd, opener.identity)
            if file_identity(os.fstat(fd)) != opener.identity:
                raise ArchiveError("the file changed after it was read", path=opener.path)
        return self._files[opener.path][0]

    def _check(self, what: str, expected: str, digest: Callable[..., str], *args: Any) -> None:
        """Work out `digest(*args)` in the pool; `finish` checks that it is `expected`."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="imgharness-check")
        self._checks.append((what, expected, self._pool.submit(digest, *args)))


class StandInBlobs(BlobWriter):
    """Writes, in place of each blob's bytes, the digest this process has already verified them to have (the
    reader hashed the stored bytes, or inflated the layer), and reads nothing: the canonical tar so formed (a
    `SkeletonTar`) names every byte of the real one, blobs by their digests.  A blob whose digest is not known
    yet raises `Unsized`; one known to differ from the digest it is written under, `DigestMismatch`, as
    writing it would."""

    def _write(self, name: str, source: Layer | _Stored, expected: str, what: str, *, compressed: bool) -> int:
        digest, size = _verified(source, compressed)
        _expect(what, expected, digest)
        self._tar.stand_in(name, digest, size)  # type: ignore[attr-defined]
        return size

    def _check_inflated(self, what: str, layer: Layer) -> None:
        _expect(what, layer.diff_id, _verified(layer, False)[0])


def _verified(source: Layer | _Stored, compressed: bool) -> tuple[str, int]:
    """The digest and size of what `BlobWriter._write` would write of `source`, when this process knows them
    from reading its bytes (`Unsized` when it does not)."""
    opener = getattr(source, "opener", None)
    if compressed or source.compression is Compression.NONE:
        if isinstance(opener, EntryOpener) and opener.hashed:
            return source.digest, opener.size
    elif (seen := _inflation(source)) is not None:
        return seen
    raise Unsized(source.digest)


@dataclass(frozen=True)
class _Stored:
    """A blob of a non-image manifest, seen as the writer sees a layer it keeps as stored."""

    opener: Opener
    digest: str
    size: int
    compression = Compression.NONE  # never inflated: copied byte for byte

    def compressed(self) -> IO[bytes]:
        return self.opener()

    uncompressed = compressed


def _inflation(layer: Layer | _Stored) -> inflated.Inflated | None:
    """What a compressed archive layer inflates to, when this process has inflated that blob before (a reader
    checking the layer's diff_id, as it does before anything is written of it); else unknown until inflated."""
    return inflated.known(layer.inflated_key) if isinstance(layer, ArchiveLayer) else None


def _tar_of(layer: Any) -> Opener:
    """What opens a layer's tar for a reader that hashes it anyway: an archive's layer is then inflated without
    hashing it a second time on the way (`ArchiveLayer.inflating`)."""
    return layer.inflating if isinstance(layer, ArchiveLayer) else layer.uncompressed


def _expect(what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise DigestMismatch(what, expected, actual)
