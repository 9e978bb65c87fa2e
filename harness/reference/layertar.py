"""Deterministic layer tars from directories or from code that writes tar members.

A layer source is a directory or a `LayerWriter`: a callable that adds members
to a `tarfile.TarFile` (what test corpora use to make uid 1000 files, xattrs or
a multi-GB file without root or disk space).  Either way the tar is produced
on demand, as often as needed: once to learn its diff_id and size, once more
while the archive is written; nothing is spooled to disk.

Directory walks are sorted by the bytes of the path, keep numeric ownership,
permission bits, xattrs (but ``security.selinux``, a property of the host),
symlinks, hardlinks (by inode), devices and FIFOs, skip sockets, and clamp
mtimes to the epoch.  Every member's mtime is clamped, for callables too.  The
tar ends with two zero blocks, as Go writes it (an empty layer is the familiar
1024 zero bytes).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, cast

from harness.tar.streams import Wrapper

if TYPE_CHECKING:
    from _typeshed import SupportsRead, WriteableBuffer

LayerWriter = Callable[[tarfile.TarFile], None]
"""Adds members to an open tar; must be deterministic, and must not close it."""

_SKIPPED_XATTRS = frozenset({"security.selinux"})


class _ClampingTarFile(tarfile.TarFile):
    """A PAX tar writer that clamps every member's mtime into [0, epoch]."""

    epoch = 0

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: SupportsRead[bytes] | None = None) -> None:
        tarinfo.mtime = max(0, min(int(tarinfo.mtime), self.epoch))
        super().addfile(tarinfo, fileobj)


def write_layer(source: LayerWriter, sink: BinaryIO | Any, epoch: int) -> None:
    """Write the layer tar of `source` to `sink` (anything with ``write`` and ``tell``)."""
    tf = _ClampingTarFile(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          errors="surrogateescape")
    tf.epoch = epoch
    source(tf)
    sink.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    cast(Any, tf).closed = True  # the end blocks are written: no 10 KiB record padding from close()


class HashSink:
    """A write-only sink that only hashes and counts."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._n = 0

    def write(self, data: bytes) -> int:
        self._h.update(data)
        self._n += len(data)
        return len(data)

    def tell(self) -> int:
        return self._n

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()

    @property
    def size(self) -> int:
        return self._n


def measure(source: LayerWriter, epoch: int) -> tuple[str, int]:
    """diff_id and size of the layer tar, without keeping it."""
    sink = HashSink()
    write_layer(source, sink, epoch)
    return sink.digest, sink.size


def produce(source: LayerWriter, epoch: int) -> IO[bytes]:
    """A readable stream of the layer tar, written by a thread into a pipe as it is read.

    An error in `source` is raised by the reader at the end of the stream;
    closing the reader early stops the writer.
    """
    r, w = os.pipe()
    errors: list[BaseException] = []

    class _Sink:
        def __init__(self) -> None:
            self._f = os.fdopen(w, "wb", buffering=1 << 20)
            self._n = 0

        def write(self, data: bytes) -> int:
            self._f.write(data)
            self._n += len(data)
            return len(data)

        def tell(self) -> int:
            return self._n

    def run() -> None:
        sink = _Sink()
        try:
            write_layer(source, sink, epoch)
        except BrokenPipeError:
            pass  # the reader went away
        except BaseException as e:  # handed to the reader
            errors.append(e)
        finally:
            try:
                sink._f.close()
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=run, name="layer-tar", daemon=True)
    thread.start()
    return cast(IO[bytes], _PipeReader(r, thread, errors))


class _PipeReader(Wrapper):
    """The reading end of `produce`: re-raises the producer's error at end of stream."""

    def __init__(self, fd: int, thread: threading.Thread, errors: list[BaseException]) -> None:
        super().__init__(os.fdopen(fd, "rb", buffering=0))
        self._thread, self._errors = thread, errors

    def readinto(self, b: WriteableBuffer) -> int:
        n = self._raw.readinto(b)
        if not n:
            self._thread.join()
            if self._errors:
                raise self._errors[0]
        return int(n or 0)

    def _release(self) -> None:
        self._raw.close()
        self._thread.join()


def directory_writer(root: str | os.PathLike[str]) -> LayerWriter:
    """A `LayerWriter` for the tree under `root` (the root itself is not an entry)."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise NotADirectoryError(str(root_path))

    def write(tf: tarfile.TarFile) -> None:
        first_of_inode: dict[tuple[int, int], str] = {}
        for rel in _walk(root_path):
            path = root_path / rel
            st = os.lstat(path)
            ti = _info(rel, st, path)
            if ti is None:
                continue
            key = (st.st_dev, st.st_ino)
            if ti.isreg() and st.st_nlink > 1:
                if key in first_of_inode:
                    ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, first_of_inode[key], 0
                else:
                    first_of_inode[key] = rel
            if ti.isreg():
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)

    return write


def _walk(root: Path) -> Iterator[str]:
    """Relative paths under `root`, sorted by their bytes (a parent always comes before its children)."""
    found: list[bytes] = []
    stack = [b""]
    base = os.fsencode(root)
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(base, rel) if rel else base) as it:
            for entry in it:
                child = os.path.join(rel, entry.name) if rel else entry.name
                found.append(child)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(child)
    for rel in sorted(found):
        yield os.fsdecode(rel)


def _info(rel: str, st: os.stat_result, path: Path) -> tarfile.TarInfo | None:
    ti = tarfile.TarInfo(rel)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid, ti.uname, ti.gname = st.st_uid, st.st_gid, "", ""
    ti.mtime = int(st.st_mtime)
    if stat.S_ISREG(st.st_mode):
        ti.type, ti.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return None  # sockets do not go into layers
    ti.pax_headers = _xattrs(path)
    return ti


def _xattrs(path: Path) -> dict[str, str]:
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
        return {f"SCHILY.xattr.{n}": os.getxattr(path, n, follow_symlinks=False).decode("utf-8", "surrogateescape")
                for n in names if n not in _SKIPPED_XATTRS}
    except OSError:
        return {}
