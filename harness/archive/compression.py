"""Compression detected from magic bytes, and streaming inflaters.

Media types lie (a ``+gzip`` type over plain bytes, a docker ``tar`` type over
gzip), so compression is always read from the first bytes.  Gzip goes through
ISA-L when available (several times faster than zlib); zstd through
`zstandard`'s decompression object, because its stream readers end silently
on a truncated frame while ours must say so.  Every inflater error surfaces as
`MalformedArchive`.
"""

from __future__ import annotations

import collections
import gzip
import io
import types
import zlib
from typing import IO, TYPE_CHECKING, Any, cast

import zstandard

from harness.archive.streams import CHUNK, readinto
from harness.errors import MalformedArchive
from harness.image import Compression

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAGIC_LEN = 4

_gzip: types.ModuleType = gzip
_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError)
try:
    from isal import igzip, isal_zlib

    _gzip = igzip
    _ERRORS += (cast(type[BaseException], isal_zlib.error),)
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    pass


def detect(head: bytes) -> Compression:
    """Compression of a stream that starts with `head` (at least `MAGIC_LEN` bytes when available)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def inflate(stream: IO[bytes], compression: Compression) -> IO[bytes]:
    """A stream of the uncompressed bytes; closing it closes `stream`."""
    if compression is Compression.NONE:
        return stream
    inner: Any = _ZstdReader(stream) if compression is Compression.ZSTD else _gzip.GzipFile(fileobj=stream, mode="rb")
    return cast(IO[bytes], _Inflated(inner, stream))


def open_maybe_compressed(path: str) -> tuple[IO[bytes], Compression]:
    """Open a file and, when it is gzip or zstd, a stream of its uncompressed bytes."""
    f = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=CHUNK)
    try:
        comp = detect(f.peek(MAGIC_LEN)[:MAGIC_LEN])
    except BaseException:
        f.close()
        raise
    return inflate(cast(IO[bytes], f), comp), comp


class _Inflated(io.RawIOBase):
    """Adapts an inflater: errors become MalformedArchive, closing closes the source too."""

    def __init__(self, inner: Any, source: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        try:
            return readinto(self._inner, memoryview(b).cast("B"))
        except _ERRORS as e:
            raise MalformedArchive(f"corrupt compressed data: {e}") from e

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._source.close()
        super().close()


class _ZstdReader(io.RawIOBase):
    """Pull-style zstd inflater over all frames of a stream; a cut frame is an error."""

    _IN = 128 * 1024  # compressed input per step: bounds the output of one step

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._eof = False
        self._pending: collections.deque[memoryview] = collections.deque()

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        got = 0
        while got < len(view):
            if not self._pending:
                if self._eof or got:
                    break
                self._fill()
                continue
            chunk = self._pending[0]
            n = min(len(view) - got, len(chunk))
            view[got:got + n] = chunk[:n]
            got += n
            if n == len(chunk):
                self._pending.popleft()
            else:
                self._pending[0] = chunk[n:]
        return got

    def _fill(self) -> None:
        data = self._raw.read(self._IN)
        if not data:
            if self._in_frame:
                raise MalformedArchive("corrupt compressed data: zstd stream ends inside a frame")
            self._eof = True
            return
        while data:
            out = self._obj.decompress(data)
            if out:
                self._pending.append(memoryview(out))
            if self._obj.eof:
                data = self._obj.unused_data
                self._obj = self._dctx.decompressobj()
                self._in_frame = False
            else:
                data = b""
                self._in_frame = True
