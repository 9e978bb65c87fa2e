"""Compression detected from magic bytes, and streaming inflaters.

Media types lie (a ``+gzip`` type over plain bytes, a docker ``tar`` type over
gzip), so compression is always read from the first bytes.  Gzip goes through
ISA-L when available (about three times faster than zlib on layer data, see
``bench/``); zstd through
`zstandard`'s stream reader, whose reads are bounded whatever a frame
expands to, while `_ZstdFrames` follows the frame headers, because that
reader ends silently on a truncated frame and ours must say so.  Every
inflater error surfaces as `MalformedArchive`.

Decompression bombs: a stream may inflate to at most `max_inflated(size)`
bytes, ``RATIO`` (100) times its compressed size plus ``ALLOWANCE`` (1 MiB).
Reading is then bounded by the size of the input, like everything else the
readers do, instead of by what gzip (1:1032) or zstd (1:32768) can expand
to.  Real layers stay far below (2-10, text rarely above 20; an empty layer
padded to 10 KiB is the small case the allowance covers), and the limit is
the one of zip-bomb guards such as Apache POI's.  Layers that really hold
gigabytes of zeros can be read with ``IMGHARNESS_MAX_INFLATE_RATIO`` set
higher (0: no limit).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import zstandard

from harness.errors import MalformedArchive
from harness.image import Compression
from harness.settings import MAX_INFLATE_RATIO as RATIO_ENV, max_inflate_ratio
from harness.tar.streams import CHUNK, Wrapper, readinto

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAGIC_LEN = 4
RATIO = 100
ALLOWANCE = 1 << 20

_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError)
try:
    from isal import igzip, isal_zlib

    _ERRORS += (cast(type[BaseException], isal_zlib.error),)
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    igzip = None  # type: ignore[assignment]


def _gzip_reader(raw: IO[bytes]) -> Any:
    """ISA-L's reader: in C, inflating straight into the caller's buffer without the GIL (GzipFile adds a copy)."""
    if igzip is None:  # pragma: no cover
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return igzip._IGzipReader(cast(BinaryIO, raw), CHUNK)


def detect(head: bytes) -> Compression:
    """Compression of a stream that starts with `head` (at least `MAGIC_LEN` bytes when available)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def max_inflated(size: int) -> int | None:
    """How many bytes `size` compressed bytes may inflate to; None when the user lifted the limit."""
    ratio = max_inflate_ratio(RATIO)
    return ratio * size + ALLOWANCE if ratio > 0 else None


def inflate(stream: IO[bytes], compression: Compression, *, size: int) -> IO[bytes]:
    """A stream of the uncompressed bytes of `size` compressed bytes; closing it closes `stream`."""
    if compression is Compression.NONE:
        return stream
    inner: Any = _ZstdReader(stream) if compression is Compression.ZSTD else _gzip_reader(stream)
    return cast(IO[bytes], _Inflated(inner, stream, size))


def open_maybe_compressed(path: str) -> tuple[IO[bytes], Compression]:
    """Open a file and, when it is gzip or zstd, a stream of its uncompressed bytes."""
    f = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=CHUNK)
    try:
        comp = detect(f.peek(MAGIC_LEN)[:MAGIC_LEN])
        size = os.fstat(f.fileno()).st_size
    except BaseException:
        f.close()
        raise
    return inflate(cast(IO[bytes], f), comp, size=size), comp


class _Inflated(Wrapper):
    """Adapts an inflater: errors become MalformedArchive, output stops at `max_inflated`, closing closes the source."""

    def __init__(self, inner: Any, source: IO[bytes], size: int) -> None:
        super().__init__(source)
        self._inner = inner
        self._size = size
        self._limit = max_inflated(size)
        self._out = 0

    def readinto(self, b: WriteableBuffer) -> int:
        try:
            n = readinto(self._inner, memoryview(b).cast("B"))
        except _ERRORS as e:
            raise MalformedArchive(f"corrupt compressed data: {e}") from e
        self._out += n
        if self._limit is not None and self._out > self._limit:
            raise MalformedArchive(
                f"{self._size} compressed bytes inflate to more than {self._limit} (a decompression bomb?)",
                hint=f"{RATIO_ENV}=N allows N times the compressed size, 0 no limit; default {RATIO}")
        return n

    def _release(self) -> None:
        try:
            self._inner.close()
        finally:
            self._raw.close()


class _ZstdReader(Wrapper):
    """zstd inflater over all frames of a stream: reads bounded by the caller's buffer, a cut frame is an error."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._frames = _ZstdFrames(raw)
        super().__init__(zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], self._frames),
                                                                   read_across_frames=True))

    def readinto(self, b: WriteableBuffer) -> int:
        n = int(self._raw.readinto(b))
        if not n and not self._frames.between_frames:
            raise MalformedArchive("corrupt compressed data: zstd stream ends inside a frame")
        return n


class _ZstdFrames:
    """The compressed bytes of `raw`, passed on while following zstd frame and block headers (RFC 8878, 3.1).

    Only sizes are read (block contents are skipped), so that `between_frames`
    tells a stream that ended after a whole frame from one cut inside a frame.
    """

    _ZSTD = 0xFD2FB528
    _SKIPPABLE = 0x184D2A50  # with any low nibble

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._field = "magic"  # the header field being collected
        self._want = 4         # its length
        self._buf = b""
        self._skip = 0         # bytes of block content or skippable frame still to pass
        self._checksum = False

    @property
    def between_frames(self) -> bool:
        return self._field == "magic" and not self._buf and not self._skip

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        view = memoryview(data)
        while view:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            take = self._want - len(self._buf)
            self._buf += bytes(view[:take])
            view = view[take:]
            if len(self._buf) == self._want:
                self._next(int.from_bytes(self._buf, "little"))
        return data

    def _next(self, value: int) -> None:
        """Act on a complete field; set the next one."""
        field, self._buf = self._field, b""
        if field == "magic" and value == self._ZSTD:
            self._field, self._want = "descriptor", 1
        elif field == "magic" and value & ~0xF == self._SKIPPABLE:
            self._field, self._want = "skippable", 4
        elif field == "magic":
            raise MalformedArchive(f"corrupt compressed data: no zstd frame starts with {value:#010x}")
        elif field == "skippable":
            self._skip, self._field, self._want = value, "magic", 4
        elif field == "descriptor":
            fcs, single, did = value >> 6, value >> 5 & 1, value & 3
            self._checksum = bool(value >> 2 & 1)
            rest = (1 - single) + (0, 1, 2, 4)[did] + (single, 2, 4, 8)[fcs]
            self._field, self._want = ("header", rest) if rest else ("block", 3)
        elif field == "header":
            self._field, self._want = "block", 3
        elif field == "block":
            last, kind, size = value & 1, value >> 1 & 3, value >> 3
            self._skip = 1 if kind == 1 else size  # an RLE block stores one byte
            if not last:
                self._field, self._want = "block", 3
            else:
                self._field, self._want = ("checksum", 4) if self._checksum else ("magic", 4)
        else:  # checksum
            self._field, self._want = "magic", 4

    def close(self) -> None:
        self._raw.close()
