"""An in-memory `Layer` over tar bytes built with tarfile, for differ tests that need no archive reader.

`F` describes one file; `layer_tar` writes a layer tar from a list of them;
`MemLayer` serves it as the image model's `Layer` (stored uncompressed, gzip
at some level, or zstd).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Iterator

import zstandard

from harness.image import Compression, EntryType, FileEntry, TarHeader

TYPES = {
    tarfile.REGTYPE: EntryType.FILE, tarfile.AREGTYPE: EntryType.FILE, tarfile.DIRTYPE: EntryType.DIR,
    tarfile.SYMTYPE: EntryType.SYMLINK, tarfile.LNKTYPE: EntryType.HARDLINK, tarfile.CHRTYPE: EntryType.CHAR,
    tarfile.BLKTYPE: EntryType.BLOCK, tarfile.FIFOTYPE: EntryType.FIFO,
}
FOLDED = frozenset({"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime"})
MEDIA = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class F:
    """One layer entry: a regular file unless `type` says otherwise."""

    path: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    mode: int = 0o644
    mtime: float = 0
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    linkname: str = ""
    pax: dict[str, str] = field(default_factory=dict)


def layer_tar(files: list[F], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for f in files:
            info = tarfile.TarInfo(f.path)
            info.type, info.mode, info.mtime = f.type, f.mode, f.mtime
            info.uid, info.gid, info.uname, info.gname = f.uid, f.gid, f.uname, f.gname
            info.linkname, info.pax_headers = f.linkname, dict(f.pax)
            info.size = len(f.data) if f.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(f.data) if info.size else None)
    return buf.getvalue()


def header_of(info: tarfile.TarInfo) -> TarHeader:
    pax = tuple(sorted((k, v) for k, v in info.pax_headers.items() if k not in FOLDED))
    return TarHeader(
        name=info.name, type=TYPES[info.type], mode=info.mode, uid=info.uid, gid=info.gid,
        uname=info.uname, gname=info.gname, mtime=info.mtime, size=info.size, linkname=info.linkname, pax=pax,
    )


@dataclass(frozen=True)
class MemLayer:
    """A `Layer` held in memory; `position` and `entry_name` are set by the archive builder."""

    tar: bytes
    compression: Compression = Compression.NONE
    level: int = 6
    position: int = 0
    entry_name: str = ""
    media: str = ""  # the manifest's mediaType when not the OCI one for the compression
    reads: list[str] = field(default_factory=list, compare=False)  # records files() calls

    @cached_property
    def blob(self) -> bytes:
        if self.compression is Compression.GZIP:
            return gzip.compress(self.tar, compresslevel=self.level, mtime=0)
        if self.compression is Compression.ZSTD:
            return zstandard.ZstdCompressor(level=self.level).compress(self.tar)
        return self.tar

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    @property
    def present(self) -> bool:
        return True

    @property
    def media_type(self) -> str:
        return self.media or MEDIA[self.compression]

    @property
    def size(self) -> int:
        return len(self.blob)

    def compressed(self) -> IO[bytes]:
        return io.BytesIO(self.blob)

    def uncompressed(self) -> IO[bytes]:
        return io.BytesIO(self.tar)

    def files(self) -> Iterator[FileEntry]:
        self.reads.append(self.diff_id)
        with tarfile.open(fileobj=self.uncompressed(), mode="r:") as tar:
            for position, info in enumerate(tar):
                digest = None
                if info.isreg():
                    stream = tar.extractfile(info)
                    assert stream is not None
                    digest = sha256(stream.read())
                yield FileEntry(position, header_of(info), digest)


def layer(
    files: list[F], compression: Compression = Compression.NONE, *, level: int = 6, fmt: int = tarfile.PAX_FORMAT
) -> MemLayer:
    """A layer of these files, stored with this compression."""
    return MemLayer(layer_tar(files, fmt=fmt), compression, level)
