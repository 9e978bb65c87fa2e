"""The canonical outer tar: minimal ustar headers, written by hand for byte-exact control.

tarfile would add PAX headers for large files and pad the end to 10 KiB
records; here every header carries only name, mode, size, mtime, type and
link, with uid/gid 0 and empty user/group names.  A member whose size is not
known in advance (a layer being inflated) gets a placeholder header that is
rewritten once its data has been streamed and counted; the output must
therefore be a regular, seekable file.  A member whose bytes are a range of
another file is copied by the kernel (`rangecopy`), or reserved for its
caller to write at its place.
"""

from __future__ import annotations

import hashlib
from typing import IO, BinaryIO

from harness.tar.blocks import BLOCK
from harness.tar.streams import CHUNK, readinto
from harness.reference.rangecopy import copy_range, hash_range

_OCTAL_LIMIT = 8 ** 11  # the largest value an 11-digit octal field holds, plus one

REGTYPE = b"0"
SYMTYPE = b"2"
DIRTYPE = b"5"


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _number(value: int, width: int) -> bytes:
    """Octal when it fits, else base-256 (GNU/star, read by Go and GNU tar) instead of a PAX record."""
    if 0 <= value < 8 ** (width - 1):
        return _octal(value, width)
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def _split_name(name: str) -> tuple[bytes, bytes]:
    raw = name.encode("utf-8")
    if len(raw) <= 100:
        return raw, b""
    cut = raw.rfind(b"/", 0, 156)
    while cut > 0 and len(raw) - cut - 1 > 100:
        cut = raw.rfind(b"/", 0, cut)
    if cut <= 0:
        raise ValueError(f"name too long for ustar: {name!r}")
    return raw[cut + 1:], raw[:cut]


def ustar_header(name: str, *, typeflag: bytes, mode: int, size: int, mtime: int, linkname: str = "") -> bytes:
    """One 512-byte ustar header with root ownership and empty user/group names."""
    base, prefix = _split_name(name)
    fields = [
        base.ljust(100, b"\0"),
        _octal(mode, 8),
        _octal(0, 8),             # uid
        _octal(0, 8),             # gid
        _number(size, 12),
        _number(mtime, 12),
        b" " * 8,                 # checksum, computed below
        typeflag,
        linkname.encode("utf-8").ljust(100, b"\0"),
        b"ustar\x0000",
        b"\0" * 32,               # uname
        b"\0" * 32,               # gname
        _octal(0, 8),             # devmajor
        _octal(0, 8),             # devminor
        prefix.ljust(155, b"\0"),
    ]
    header = b"".join(fields).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


class CanonicalTar:
    """Writes canonical members to `f` (a regular file opened for writing)."""

    def __init__(self, f: BinaryIO, epoch: int) -> None:
        self._f = f
        self._epoch = epoch

    def directory(self, name: str) -> None:
        self._f.write(ustar_header(name.rstrip("/") + "/", typeflag=DIRTYPE, mode=0o755, size=0, mtime=self._epoch))

    def symlink(self, name: str, target: str) -> None:
        self._f.write(ustar_header(name, typeflag=SYMTYPE, mode=0o777, size=0, mtime=self._epoch, linkname=target))

    def file(self, name: str, data: bytes) -> None:
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=len(data), mtime=self._epoch))
        self._f.write(data)
        self._pad(len(data))

    def stream(self, name: str, src: IO[bytes], size: int | None) -> tuple[str, int]:
        """Copy `src` to its end as member `name`; returns its sha256 and length.

        With `size` known the header is final at once (and the copy must match
        it); otherwise a placeholder header is rewritten after the copy.
        """
        start = self._f.tell()
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=size or 0, mtime=self._epoch))
        h = hashlib.sha256()
        total = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = readinto(src, view)
            if not n:
                break
            h.update(view[:n])
            self._f.write(view[:n])
            total += n
        if size is None:
            end = self._f.tell()
            self._f.seek(start)
            self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=total, mtime=self._epoch))
            self._f.seek(end)
        self._pad(total)
        return "sha256:" + h.hexdigest(), total

    def copy(self, name: str, src: int, offset: int, size: int) -> None:
        """Member `name` holding `size` bytes of file descriptor `src` from `offset`, copied by the kernel."""
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=size, mtime=self._epoch))
        self._f.flush()
        start = self._f.tell()
        copy_range(src, offset, size, self._f.fileno(), start)
        self._f.seek(start + size)
        self._pad(size)

    def reserve(self, name: str, size: int) -> tuple[int, int]:
        """Member `name` of `size` bytes that the caller writes itself: returns the output's file descriptor
        and where the bytes go (the region is a hole until written)."""
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=size, mtime=self._epoch))
        start = self._f.tell()
        self._f.seek(start + size)
        self._pad(size)
        return self._f.fileno(), start

    def close(self) -> None:
        """End of archive: two zero blocks, no further record padding (as Go writes it)."""
        self._f.write(b"\0" * (2 * BLOCK))

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._f.write(b"\0" * (BLOCK - size % BLOCK))


class Unsized(Exception):
    """A member's size is not known before its bytes: a `DigestTar` cannot hash it in order."""


class _Hashing:
    """What a `DigestTar` writes into: nothing but a sha256."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self._written = 0

    def write(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        self._written += len(data)

    def tell(self) -> int:
        return self._written


class DigestTar(CanonicalTar):
    """The canonical tar's bytes hashed as they are formed, nothing written: a blob that is a range of a file
    is read and hashed once (no copy of it lands in the page cache).  A member whose size is not known before
    its bytes, and a member reserved for its caller, raise `Unsized`."""

    def __init__(self, epoch: int) -> None:
        self._out = _Hashing()
        super().__init__(self._out, epoch)  # type: ignore[arg-type]  # write and tell: all that is not overridden uses

    def stream(self, name: str, src: IO[bytes], size: int | None) -> tuple[str, int]:
        if size is None:
            raise Unsized(name)
        return super().stream(name, src, size)

    def copy(self, name: str, src: int, offset: int, size: int) -> None:
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=size, mtime=self._epoch))
        hash_range(src, offset, size, self._out.sha256)
        self._pad(size)

    def reserve(self, name: str, size: int) -> tuple[int, int]:
        raise Unsized(name)

    def digest(self) -> str:
        """``sha256:<hex>`` of the archive, once `close` has been called."""
        return "sha256:" + self._out.sha256.hexdigest()


class SkeletonTar(DigestTar):
    """A `DigestTar` whose blob members are stand-ins: the header, then the digest of the bytes in their place.

    Equal skeletons are equal canonical archives (the same bytes everywhere else, blobs of the same digests at
    the same places), whatever archive they were formed from, at the cost of hashing the metadata alone."""

    def stand_in(self, name: str, digest: str, size: int) -> None:
        self._f.write(ustar_header(name, typeflag=REGTYPE, mode=0o644, size=size, mtime=self._epoch))
        self._f.write(b"\0stand-in " + digest.encode())
