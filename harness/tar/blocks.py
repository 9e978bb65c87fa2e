"""A tar stream read as raw members: how two layers are compared without parsing what they share.

tarfile spends tens of microseconds per member on headers that, in two saves
of one layer, are mostly byte-identical.  Here a member is its raw header
blocks (extension headers included) and the length of its content; the
differ compares raw bytes and parses a header, with tarfile itself so that
the result is exactly what `iter_layer_files` yields, only where two differ.

Whatever this reader does not handle itself — global PAX headers, sparse
files, unknown types, a bad checksum or number, a stream that ends inside a
member — raises `Unusual`; the caller then reads the layer with tarfile,
which reports broken input the same way everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
import zlib
from typing import IO, NamedTuple

from harness.image import EntryType, TarHeader
from harness.tar.members import has_data, tar_header
from harness.tar.streams import CHUNK, drain, readinto

BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = bytes(BLOCK)
_EXTENSIONS = frozenset(b"xLK")  # type flags of headers that describe the member after them
_DATA_TYPES = frozenset(b"0\x007")  # regular files: content follows
_NO_DATA_TYPES = frozenset(b"123456")
_KNOWN_TYPES = _EXTENSIONS | _DATA_TYPES | _NO_DATA_TYPES
DEVICES = frozenset({EntryType.CHAR, EntryType.BLOCK})
_BLOCK_TYPES = {
    ord("0"): EntryType.FILE, 0: EntryType.FILE, ord("7"): EntryType.FILE, ord("1"): EntryType.HARDLINK,
    ord("2"): EntryType.SYMLINK, ord("3"): EntryType.CHAR, ord("4"): EntryType.BLOCK, ord("5"): EntryType.DIR,
    ord("6"): EntryType.FIFO,
}
_STEP = 64 * 1024  # granularity of `TarBlocks.shared`
_MAX_EXTENSIONS = 8  # before one member; real tars have one or two (PAX, or GNU long name and long link)


class Unusual(Exception):
    """Something only tarfile should judge; the caller falls back to it."""


def _number(field: bytes | bytearray) -> int:
    """`tarfile.nti`, with its errors as `Unusual`; plain octal without a detour through str."""
    if field[0] < 0x80:
        try:
            return int(field.split(b"\0", 1)[0], 8)
        except ValueError:
            pass  # empty, or something only tarfile knows how to read
    try:
        return int(tarfile.nti(field))  # type: ignore[attr-defined]
    except (tarfile.HeaderError, ValueError) as e:
        raise Unusual(f"bad number {field!r}") from e


def _text(field: bytes | bytearray) -> str:
    """`tarfile.nts` as layers are read: up to the first NUL, undecodable bytes kept as surrogate escapes."""
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=4096)
def _owner_fields(raw: bytes) -> tuple[int, int, int, int, str, str]:
    """Mode, uid, gid, mtime, uname and gname from their fields (in a layer, few distinct ones repeat)."""
    return (_number(raw[0:8]), _number(raw[8:16]), _number(raw[16:24]), _number(raw[24:36]),
            _text(raw[36:68]), _text(raw[68:100]))


def _byte_sum(block: bytes | bytearray) -> int:
    """Sum of a header block's bytes, as tarfile's unsigned checksum needs it, four times faster than `sum`.

    Adler-32's low half is 1 + the byte sum modulo 65521; over 256 bytes the
    sum (at most 65280) stays below the modulus, so each half block is exact.
    """
    view = memoryview(block)
    return (zlib.adler32(view[:256]) & 0xFFFF) + (zlib.adler32(view[256:]) & 0xFFFF) - 2


class RawMember(NamedTuple):
    """One member: its header blocks as stored, and where and how long its content is."""

    raw: bytes
    offset: int    # of the content in the tar stream
    size: int      # content bytes (0 for members without content)
    data: bool     # whether the member carries content (`members.has_data`)

    def info(self) -> tarfile.TarInfo:
        """The member as tarfile reads it (layers keep undecodable names as surrogate escapes)."""
        try:
            tf = tarfile.TarFile(fileobj=io.BytesIO(self.raw + _ZERO_BLOCK * 2), mode="r",
                                 encoding="utf-8", errors="surrogateescape")
            ti = tf.next()
        except (tarfile.TarError, ValueError, OverflowError, UnicodeError, IndexError, RecursionError) as e:
            raise Unusual(str(e)) from e  # RecursionError: a long run of extension headers
        if ti is None:
            raise Unusual("no member")
        return ti

    def header(self) -> TarHeader:
        """The header `members.tar_header` makes of tarfile's parse; single blocks are read here, as frombuf does."""
        if len(self.raw) > BLOCK:
            return tar_header(self.info())
        block = self.raw
        kind = _BLOCK_TYPES[block[156]]
        if kind is EntryType.FILE and block[156] == 0 and block[:100].split(b"\0", 1)[0].endswith(b"/"):
            kind = EntryType.DIR  # a V7 directory: a regular file whose name ends in a slash
        mode, uid, gid, mtime, uname, gname = _owner_fields(block[100:124] + block[136:148] + block[265:329])
        major, minor = (_number(block[329:337]), _number(block[337:345])) if kind in DEVICES else (0, 0)
        return TarHeader(name=self.name, type=kind, mode=mode, uid=uid, gid=gid, uname=uname, gname=gname,
                         mtime=mtime, size=self.size, linkname=_text(block[157:257]), devmajor=major, devminor=minor)

    @property
    def name(self) -> str:
        """The member's name as tarfile gives it, without a parse for single-block headers."""
        if len(self.raw) > BLOCK:
            return str(self.info().name)
        block = self.raw
        name = _text(block[:100])
        prefix = _text(block[345:500])
        if prefix:
            name = prefix + "/" + name
        if block[156:157] == b"5" or (block[156:157] == b"\0" and block[:100].split(b"\0", 1)[0].endswith(b"/")):
            name = name.rstrip("/")
        return name


class TarBlocks:
    """Members and content of a tar stream, read forward through one reusable buffer of `CHUNK` bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buf = bytearray(CHUNK)
        self._pos = 0
        self._end = 0
        self._base = 0  # stream offset of _buf[0]
        self._valid_fields: set[bytes] = set()  # mode/uid/gid/mtime/dev fields already parsed once

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed."""
        return self._base + self._pos

    def read(self, n: int) -> bytearray:
        """Exactly `n` bytes (at most `CHUNK`); fewer only at the end of the stream."""
        p = self._pos
        if p + n > self._end:
            self._fill(n)
            p = 0
        out = self._buf[p:min(p + n, self._end)]
        self._pos = p + len(out)
        return out

    def exact(self, n: int) -> bytearray:
        """`n` bytes (at most `CHUNK`); `Unusual` when the stream ends first."""
        out = self.read(n)
        if len(out) != n:
            raise Unusual("stream ends inside a member")
        return out

    def content_digest(self, size: int) -> str:
        """sha256 of the next `size` bytes, a member's content; its padding is passed too."""
        h = hashlib.sha256()
        left = size
        while left:
            piece = self.exact(min(left, CHUNK))
            h.update(piece)
            left -= len(piece)
        self.skip(-size % BLOCK)
        return "sha256:" + h.hexdigest()

    def shared(self, other: TarBlocks) -> int:
        """How many of the next bytes this stream and `other` have in common, in whole steps of what is buffered.

        Two saves of one layer are mostly the same bytes: comparing them a
        buffer at a time lets the differ pass over identical members reading
        the headers of one side only.
        """
        for t in (self, other):
            if t._end - t._pos < CHUNK // 2:
                t._fill(CHUNK)
        limit = min(self._end - self._pos, other._end - other._pos)
        a, b, pa, pb = self._buf, other._buf, self._pos, other._pos
        same = 0
        while same + _STEP <= limit and a[pa + same:pa + same + _STEP] == b[pb + same:pb + same + _STEP]:
            same += _STEP
        return same

    def skip(self, n: int) -> None:
        """Pass over `n` bytes; `Unusual` when the stream ends first."""
        while n > 0:
            if self._pos == self._end:
                self._fill(min(n, CHUNK))
                if self._pos == self._end:
                    raise Unusual("stream ends inside a member")
            step = min(n, self._end - self._pos)
            self._pos += step
            n -= step

    def drain(self) -> None:
        """Read the stream to its end, so that a hash beneath sees every byte; the last thing done with a walk."""
        self._pos = self._end
        drain(self._stream)

    def _fill(self, n: int) -> None:
        """Move what is left to the front, then read until `n` bytes are there (or the stream ends)."""
        keep = self._end - self._pos
        self._buf[:keep] = self._buf[self._pos:self._end]
        self._base += self._pos
        self._pos, self._end = 0, keep
        view = memoryview(self._buf)
        while self._end < n:
            got = readinto(self._stream, view[self._end:])
            if not got:
                break
            self._end += got

    def next(self, twin: RawMember | None = None) -> RawMember | None:
        """The next member, or None at the end of the archive (a zero block, or the stream's end).

        When the header is byte-identical to `twin` (the member another walk has
        just read and checked), it is taken over without another look.
        """
        block = self.read(BLOCK)
        if twin is not None and block == twin.raw:
            return RawMember(twin.raw, self._base + self._pos, twin.size, twin.data)
        if len(block) < BLOCK:
            if block or self._base + self._pos == 0:
                raise Unusual("stream ends inside a header")
            return None
        if block == _ZERO_BLOCK:
            return None
        kind = self._check(block)
        if kind in _EXTENSIONS:
            return self._extended(bytes(block))
        if kind not in _KNOWN_TYPES:
            raise Unusual(f"member type {chr(kind)!r}")
        data = kind in _DATA_TYPES and not (kind == 0 and block[:100].split(b"\0", 1)[0].endswith(b"/"))
        size = _number(block[124:136])
        if size < 0:
            raise Unusual("negative size")
        return RawMember(bytes(block), self._base + self._pos, size if data else 0, data)

    def _extended(self, block: bytes) -> RawMember:
        """A member behind extension headers (long names, PAX records): parsed by tarfile."""
        parts: list[bytes] = []
        while block[156] in _EXTENSIONS:
            if len(parts) >= 2 * _MAX_EXTENSIONS:
                raise Unusual("a long run of extension headers")
            parts += [block, self._padded(_number(block[124:136]))]
            block = bytes(self.exact(BLOCK))
            if block == _ZERO_BLOCK:
                raise Unusual("end of archive after an extension header")
            if self._check(block) not in _KNOWN_TYPES:
                raise Unusual(f"member type {chr(block[156])!r}")
        raw = b"".join(parts) + block
        offset = self._base + self._pos
        ti = RawMember(raw, offset, 0, False).info()
        data = has_data(ti)
        return RawMember(raw, offset, ti.size if data else 0, data)

    def _check(self, block: bytes | bytearray) -> int:
        """The block's type flag, after the checks tarfile makes on every header."""
        checksum = _number(block[148:156])
        if checksum != _byte_sum(block) - sum(block[148:156]) + 256:
            if checksum not in tarfile.calc_chksums(block):  # type: ignore[attr-defined]
                raise Unusual("bad checksum")
        fields = bytes(block[100:124] + block[136:148] + block[329:345])
        if fields not in self._valid_fields:
            for k in range(0, 24, 8):
                _number(fields[k:k + 8])
            _number(fields[24:36])
            _number(fields[36:44])
            _number(fields[44:52])
            self._valid_fields.add(fields)
        return block[156]

    def _padded(self, size: int) -> bytes:
        """Content of an extension header (bounded: these are names and records)."""
        if not 0 <= size <= CHUNK - BLOCK:
            raise Unusual(f"extension header of {size} bytes")
        return bytes(self.exact(size + (-size % BLOCK)))

