"""Byte streams over parts of an archive, read forward in large chunks.

Nothing is extracted: an outer-archive entry is a window of the file, and every
consumer opens a fresh stream on it.  Compressed streams cannot seek back, so
`ForwardReader` offers tarfile what it needs (``tell`` and *forward* ``seek``)
by reading and discarding; optionally it tees everything it passes into a hash
(the whole-archive digest) so that the archive is read exactly once.  Every
stream that reads another is a `Wrapper`: readable, and closing it closes what
it reads.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from typing import IO, TYPE_CHECKING, Any

from harness.errors import MalformedArchive

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20
"""Read size for hashing and copying: large enough that per-call overhead vanishes."""


class Wrapper(io.RawIOBase):
    """A readable stream over another, `raw`: closing it closes `raw`, once."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._release()
        super().close()

    def _release(self) -> None:
        """Give back what the stream holds: `raw`, and whatever a subclass holds besides."""
        self._raw.close()


class ForwardReader(Wrapper):
    """A forward-only view of `raw` with ``tell`` and forward ``seek``.

    Every byte that passes (read or skipped) also goes into `tee` when given.
    `last_small_read` keeps the last read of at most one tar block, so that the
    caller can tell a clean end of a tar from a truncated or garbled one after
    tarfile has stopped silently.
    """

    def __init__(self, raw: IO[bytes], *, tee: "hashlib._Hash | None" = None) -> None:
        super().__init__(raw)
        self._tee = tee
        self._pos = 0
        self._native_seek = tee is None and raw.seekable()
        self._base = raw.tell() if self._native_seek else 0
        self.last_small_read = b""

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        got = 0
        while got < len(view):
            n = readinto(self._raw, view[got:])
            if not n:
                break
            got += n
        if self._tee is not None and got:
            self._tee.update(view[:got])
        self._pos += got
        if got <= 512:
            self.last_small_read = bytes(view[:got])
        return got

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all with -1): memory grows with the data, not with a size a header claims."""
        want = -1 if size is None else size
        parts = []
        while want != 0:
            buf = bytearray(CHUNK if want < 0 else min(want, CHUNK))
            n = self.readinto(buf)
            parts.append(bytes(buf[:n]))
            if n < len(buf):
                break
            want = want - n if want > 0 else want
        return b"".join(parts)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self._pos:
            raise io.UnsupportedOperation("this stream only seeks forward")
        if self._native_seek:
            self._raw.seek(self._base + target)
            self._pos = target
        else:
            skip(self, target - self._pos)
        return self._pos


class Window(Wrapper):
    """Exactly `size` bytes of `raw` from its current position; closing it closes `raw`."""

    def __init__(self, raw: IO[bytes], size: int) -> None:
        super().__init__(raw)
        self._left = size

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")[: self._left]
        got = 0
        while got < len(view):
            n = readinto(self._raw, view[got:])
            if not n:
                raise MalformedArchive("unexpected end of data (the archive changed or is truncated)")
            got += n
        self._left -= got
        return got


class Labelled(Wrapper):
    """`raw`, whose read errors name what it is and the archive file (``what: message``).

    Layers are read long after their archive was opened, often beside another
    archive's: an error must still say which layer of which file broke.
    """

    def __init__(self, raw: IO[bytes], what: str, path: str | None) -> None:
        super().__init__(raw)
        self._what = what
        self._path = path

    def readinto(self, b: WriteableBuffer) -> int:
        try:
            return readinto(self._raw, memoryview(b).cast("B"))
        except MalformedArchive as e:
            if e.path is not None:
                raise
            raise MalformedArchive(f"{self._what}: {e.message}", path=self._path, hint=e.hint) from e


class ReadAhead(Wrapper):
    """`raw` read by a thread of its own, up to `depth` chunks ahead of the consumer.

    For inflaters, which work without holding the GIL: a layer is inflated on
    one core while the consumer walks, compares or hashes the bytes already
    inflated on another.  Memory is bounded by `depth` chunks.  An error of
    `raw` is raised to the consumer where the stream broke; closing stops the
    thread and closes `raw`.
    """

    def __init__(self, raw: IO[bytes], *, depth: int = 4) -> None:
        super().__init__(raw)
        self._chunks: queue.Queue[memoryview | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._current = memoryview(b"")
        self._ended = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name="imgharness-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                buf = bytearray(CHUNK)
                n = readinto(self._raw, memoryview(buf))
                self._put(memoryview(buf)[:n])
                if not n:
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def _put(self, item: memoryview | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        if self._error is not None:  # a broken stream never looks like one that ended
            raise self._error
        if not self._current and not self._ended and len(view):
            item = self._chunks.get()
            if isinstance(item, BaseException):
                self._error = item
                raise item
            self._current = item
            self._ended = not item
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def _release(self) -> None:
        self._stop.set()
        self._thread.join()
        self._raw.close()


def readinto(stream: Any, view: memoryview) -> int:
    """`stream.readinto`, for any binary stream (IO[bytes] does not declare it), 0 at the end."""
    return int(stream.readinto(view) or 0)


def skip(stream: Any, count: int) -> None:
    """Read and discard `count` bytes; MalformedArchive when the stream ends first."""
    buf = bytearray(min(count, CHUNK))
    view = memoryview(buf)
    while count > 0:
        n = readinto(stream, view[: min(count, CHUNK)])
        if not n:
            raise MalformedArchive("unexpected end of data")
        count -= n


def drain(stream: Any) -> None:
    """Read `stream` to its end, discarding: what follows a tar's end-of-archive blocks still counts in its digest."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while readinto(stream, view):
        pass
