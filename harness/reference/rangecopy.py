"""A byte range of one file into another (by the kernel, or read, hashed and written by the caller), or hashed.

A blob whose digest is known already is copied by ``os.copy_file_range``,
inside the kernel, without its bytes reaching Python (filesystems that
cannot, ``EXDEV``, ``EINVAL``, ``ENOSYS``, ``EOPNOTSUPP``, get ``pread``/
``pwrite``).  A blob that must be hashed is read with ``pread`` into one
buffer, hashed, and written from that same buffer with ``pwrite``: the bytes
hashed are the bytes written, and several blobs go at once on several cores
(sha256 and the system calls release the GIL).  No file position moves.  A
source shorter than the range it should hold changed under us: an
`ArchiveError`, never a short copy or a digest of fewer bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os

from harness.tar.streams import CHUNK
from harness.errors import ArchiveError

KERNEL_CHUNK = 64 << 20  # per copy_file_range call: large, yet an interrupt is seen within a fraction of a second
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ETXTBSY, errno.EPERM})


def _shrunk(done: int, size: int) -> ArchiveError:
    return ArchiveError(f"the archive file ends {size - done} bytes early inside a blob: it changed after it was read")


def copy_hashed(src: int, offset: int, size: int, dst: int, dst_offset: int) -> str:
    """Copy `size` bytes of file descriptor `src` from `offset` to `dst` at `dst_offset`, and return their
    ``sha256:<hex>``."""
    h = hashlib.sha256()
    _copy_through_user_space(src, offset, size, dst, dst_offset, h)
    return "sha256:" + h.hexdigest()


def copy_range(src: int, offset: int, size: int, dst: int, dst_offset: int) -> None:
    """Copy `size` bytes of file descriptor `src` from `offset` to `dst` at `dst_offset`."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src, dst, min(KERNEL_CHUNK, size - done), offset + done, dst_offset + done)
        except OSError as e:
            if e.errno not in _NO_KERNEL_COPY:
                raise
            _copy_through_user_space(src, offset + done, size - done, dst, dst_offset + done)
            return
        if not n:
            raise _shrunk(done, size)
        done += n


def hash_range(src: int, offset: int, size: int, h: hashlib._Hash) -> None:
    """Feed `size` bytes of file descriptor `src` from `offset` to `h`."""
    _copy_through_user_space(src, offset, size, None, 0, h)


def _copy_through_user_space(src: int, offset: int, size: int, dst: int | None, dst_offset: int,
                             h: hashlib._Hash | None = None) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    done = 0
    while done < size:
        n = os.preadv(src, [view[: min(CHUNK, size - done)]], offset + done)
        if not n:
            raise _shrunk(done, size)
        if h is not None:
            h.update(view[:n])
        written = 0
        while dst is not None and written < n:
            written += os.pwrite(dst, view[written:n], dst_offset + done + written)
        done += n
