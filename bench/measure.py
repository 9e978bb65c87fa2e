"""Timing, peak memory and the floors the differ is measured against.

Children run from `spawner.py` and are waited for with ``os.wait4``, which
returns the resource usage of that one child (peak RSS, CPU), not a maximum
over every child so far as ``getrusage(RUSAGE_CHILDREN)`` would.  Every
figure is the best of a few runs: the machine may be shared, and the best
run is the one least disturbed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, Sequence, cast

from isal import igzip, isal_zlib

from harness.archive.compression import GZIP_MAGIC
from harness.archive.tarindex import build_index
from harness.tar.streams import CHUNK, Window


@dataclass(frozen=True)
class Child:
    """How one child process ran."""

    code: int | None    # exit code; None when it was killed at its deadline
    wall: float         # seconds
    cpu: float          # user + system seconds
    rss_mb: float       # peak resident set size
    stdout: str = ""

    @property
    def timed_out(self) -> bool:
        return self.code is None


class Spawner:
    """The client of `spawner.py`: start it first, while this process is still small."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("spawner.py")
        self._proc = subprocess.Popen([sys.executable, "-S", str(script)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)

    def run(self, argv: Sequence[str], *, timeout: float | None = None, env: Mapping[str, str] | None = None,
            capture: bool = False) -> Child:
        """Run `argv` (killing it and its group at `timeout`); its stdout is kept when `capture`."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request = {"argv": list(argv), "timeout": timeout, "env": dict(env) if env is not None else None,
                   "capture": capture}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return Child(**json.loads(self._proc.stdout.readline()))

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait()


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of something run in this process (CPU of every thread)."""

    wall: float
    cpu: float


def timed(fn: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def sha256_files(paths: Sequence[Path]) -> None:
    """The hashing floor: every byte of every file through hashlib's sha256 (OpenSSL), 1 MiB reads."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                h.update(view[:n])


def gzip_blobs(paths: Sequence[Path]) -> list[tuple[Path, int, int]]:
    """(archive, offset, size) of every gzip entry of the archives: the layers a gzip pair holds."""
    out = []
    for path in paths:
        index = build_index(path)
        out += [(path, e.offset, e.size) for e in index.entries if e.head.startswith(GZIP_MAGIC)]
    return out


def _inflate_with(decompressobj: Callable[[int], object], blobs: Sequence[tuple[Path, int, int]]) -> None:
    """Inflate every blob with a zlib-style decompressor fed 256 KiB at a time, output discarded."""
    for path, offset, size in blobs:
        d = decompressobj(31)
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            left = size
            while left:
                data = f.read(min(left, 256 * 1024))
                left -= len(data)
                d.decompress(data)  # type: ignore[attr-defined]


def _inflate_isal_reader(blobs: Sequence[tuple[Path, int, int]]) -> None:
    """Inflate with ISA-L's C gzip reader into one reused 1 MiB buffer (what the archive readers use)."""
    buf = bytearray(CHUNK)
    for path, offset, size in blobs:
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            reader = igzip._IGzipReader(cast(BinaryIO, Window(f, size)), CHUNK)
            while reader.readinto(buf):
                pass


INFLATERS: dict[str, Callable[[Sequence[tuple[Path, int, int]]], None]] = {
    "zlib": lambda blobs: _inflate_with(zlib.decompressobj, blobs),
    "isal.isal_zlib": lambda blobs: _inflate_with(isal_zlib.decompressobj, blobs),
    "isal.igzip reader": _inflate_isal_reader,
}
