"""Walking a tar stream member by member, for outer archives and layers alike.

tarfile stops *silently* at a garbled or cut header after the first member;
`iter_members` looks at the block that stopped it and says which it was.  The
TarInfo → `TarHeader` conversion lives here too, so outer entries and layer
files are described the same way.

tarfile reads the content of a PAX or GNU long-name header into memory whole
(and parses it at five times its size) and follows a run of them by
recursion: such headers are refused above 1 MiB, as Go's archive/tar does,
and a run too long to follow is an error like any other broken header.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any, Iterator, cast

from harness.errors import MalformedArchive
from harness.image import EntryType, TarHeader
from harness.tar.streams import ForwardReader

_TYPES = {
    tarfile.REGTYPE: EntryType.FILE,
    tarfile.AREGTYPE: EntryType.FILE,
    tarfile.CONTTYPE: EntryType.FILE,
    tarfile.GNUTYPE_SPARSE: EntryType.FILE,
    tarfile.DIRTYPE: EntryType.DIR,
    tarfile.SYMTYPE: EntryType.SYMLINK,
    tarfile.LNKTYPE: EntryType.HARDLINK,
    tarfile.CHRTYPE: EntryType.CHAR,
    tarfile.BLKTYPE: EntryType.BLOCK,
    tarfile.FIFOTYPE: EntryType.FIFO,
}

# PAX records tarfile folds into TarInfo fields; the rest stay visible in `TarHeader.pax`.
_FOLDED = frozenset({"path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname"})

MAX_EXTENSION = 1 << 20  # Go's archive/tar: maxSpecialFileSize
_EXTENSIONS = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                         tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK})


class _TarInfo(tarfile.TarInfo):
    """A header that refuses, before tarfile reads it, extension content larger than `MAX_EXTENSION`."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _TarInfo:
        ti = super().frombuf(buf, encoding, errors)
        if ti.type in _EXTENSIONS and ti.size > MAX_EXTENSION:
            raise MalformedArchive(f"a {ti.size}-byte extension header (PAX or long name) exceeds 1 MiB")
        return ti


def has_data(ti: tarfile.TarInfo) -> bool:
    """Whether the member carries content bytes (regular files, and unknown types tarfile reads as such)."""
    return ti.isreg() or ti.type not in _TYPES


def tar_header(ti: tarfile.TarInfo) -> TarHeader:
    """The user-observable fields of one tar member."""
    return TarHeader(
        name=ti.name,
        type=_TYPES.get(ti.type, EntryType.FILE),
        mode=ti.mode,
        uid=ti.uid,
        gid=ti.gid,
        uname=ti.uname,
        gname=ti.gname,
        mtime=ti.mtime,
        size=ti.size if has_data(ti) else 0,
        linkname=ti.linkname,
        pax=tuple(sorted((k, v) for k, v in ti.pax_headers.items() if k not in _FOLDED)),
        devmajor=ti.devmajor if ti.ischr() or ti.isblk() else 0,
        devminor=ti.devminor if ti.ischr() or ti.isblk() else 0,
    )


def iter_members(reader: ForwardReader, *, strict_names: bool) -> Iterator[tarfile.TarInfo]:
    """Every member of the tar that `reader` yields, in order.

    The caller may read a member's data (forward) between steps.  Names that are
    not UTF-8 are an error with `strict_names` (outer archives); layers keep them
    as surrogate escapes, since filesystems allow any bytes.
    """
    errors = "strict" if strict_names else "surrogateescape"
    try:
        tf = tarfile.TarFile(fileobj=reader, mode="r", encoding="utf-8", errors=errors, tarinfo=_TarInfo)
        while True:
            ti = tf.next()
            if ti is None:
                break
            cast(Any, tf).members.clear()  # tarfile keeps every member; we do not need them
            if ti.size < 0:  # base-256 fields can be negative; tarfile takes them as they are
                raise MalformedArchive(f"negative size {ti.size} in the header at offset {ti.offset}")
            yield ti
    except tarfile.TarError as e:
        raise MalformedArchive(f"not a valid tar ({e})" if reader.tell() <= 512 else f"broken tar: {e}") from e
    except UnicodeDecodeError as e:
        raise MalformedArchive(f"entry name is not UTF-8 near offset {reader.tell()}") from e
    except io.UnsupportedOperation as e:
        raise MalformedArchive(f"tar members out of order near offset {reader.tell()}") from e
    except RecursionError as e:
        raise MalformedArchive(f"too many extension headers in a row near offset {reader.tell()}") from e
    except IndexError as e:  # tarfile reading past a GNU sparse header whose extension blocks are missing
        raise MalformedArchive(f"tar header cut short near offset {reader.tell()}") from e
    except (ValueError, OverflowError) as e:
        raise MalformedArchive(f"broken tar header near offset {reader.tell()}: {e}") from e
    last = reader.last_small_read
    if last and len(last) < tarfile.BLOCKSIZE:
        raise MalformedArchive(f"tar truncated inside a header at offset {reader.tell() - len(last)}")
    if last.strip(b"\0"):
        raise MalformedArchive(f"invalid tar header at offset {reader.tell() - len(last)}")
