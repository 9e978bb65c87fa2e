"""Where the bytes of a save go as they arrive: a file, and their sha256.

Checks save the same image again and again and compare the digests.  A save
that repeats an earlier one (`Earlier`) is compared with it while the bytes
arrive, which costs a read of the earlier file from the page cache, instead of
being hashed and written: a save byte for byte the earlier one is a hard link
to it, under its digest.  At the first byte that differs, what agreed so far is
read back from the earlier file, hashed and written, and the rest is written
and hashed as it comes, so a save that differs is the file the engine sent,
whole, as without an earlier one.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ArchiveError
from harness.tar.streams import CHUNK


@dataclass(frozen=True)
class Earlier:
    """A save made before, and its digest: what a new save of the same image is expected to repeat."""

    path: Path
    digest: str


class Received:
    """The file `dest` a save is written into, with its digest (`close`); `earlier` as above."""

    def __init__(self, dest: Path, earlier: Earlier | None = None) -> None:
        self._dest = dest
        self._twin: io.FileIO | None = None
        if earlier is not None:
            try:
                self._twin = io.FileIO(earlier.path, "rb")
            except FileNotFoundError:  # removed meanwhile (a save another process kept): as without one
                earlier = None
        self._earlier = earlier
        self._twin_buf = bytearray()  # the earlier save's bytes beside each piece received (grown to the largest)
        self._agreed = 0  # bytes equal to the earlier save's so far
        self._out: io.FileIO | None = None if earlier else io.FileIO(dest, "wb")
        self._digest = hashlib.sha256()

    def __enter__(self) -> Received:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self._twin, self._out):
            if f is not None:
                f.close()

    def write(self, data: memoryview) -> None:
        if self._twin is not None:
            if len(data) > len(self._twin_buf):
                self._twin_buf = bytearray(len(data))
            n = self._twin.readinto(memoryview(self._twin_buf)[:len(data)])
            # startswith compares with memcmp; two memoryviews compare byte by byte
            if n == len(data) and self._twin_buf.startswith(data):
                self._agreed += n
                return
            self._part()
        assert self._out is not None
        self._digest.update(data)
        self._out.write(data)

    def close(self) -> str:
        """The save's digest, once every byte has arrived."""
        if self._twin is not None:
            assert self._earlier is not None
            if self._twin.read(1):  # shorter than the earlier save
                self._part()
            else:
                self._twin.close()
                self._twin = None
                _link(self._earlier.path, self._dest)
                return self._earlier.digest
        assert self._out is not None
        self._out.close()
        return "sha256:" + self._digest.hexdigest()

    def _part(self) -> None:
        """The save parts from the earlier one here: what agreed is read back from it, hashed and written."""
        assert self._twin is not None and self._earlier is not None
        self._out = io.FileIO(self._dest, "wb")
        self._twin.seek(0)
        view = memoryview(bytearray(CHUNK))
        left = self._agreed
        while left:
            n = self._twin.readinto(view[:min(left, len(view))])
            if not n:
                raise ArchiveError("the earlier save shrank while a save was compared with it",
                                   path=str(self._earlier.path))
            self._digest.update(view[:n])
            self._out.write(view[:n])
            left -= n
        self._twin.close()
        self._twin = None


def _link(earlier: Path, dest: Path) -> None:
    """`dest` as the earlier save's bytes: a hard link, else a copy (another file system)."""
    try:
        os.link(earlier, dest)
    except OSError:
        shutil.copyfile(earlier, dest)
