"""Digests as images name them (``sha256:<hex>``), computed while reading: of bytes, of the next bytes of a
stream, of all of one.  Nothing is read twice to be hashed."""

from __future__ import annotations

import hashlib
from typing import IO, Any, Callable

from harness.errors import MalformedArchive
from harness.tar.streams import CHUNK, readinto


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    """``sha256:<hex>`` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_exact(stream: Any, size: int, *, head: int = 0) -> tuple[str, bytes]:
    """sha256 of the next `size` bytes and their first `head` bytes; MalformedArchive if fewer remain."""
    h = hashlib.sha256()
    buf = bytearray(min(size, CHUNK) or 1)
    view = memoryview(buf)
    first = b""
    left = size
    while left > 0:
        n = readinto(stream, view[: min(left, CHUNK)])
        if not n:
            raise MalformedArchive(f"unexpected end of data ({size - left} of {size} bytes)")
        if len(first) < head:
            first += bytes(view[: min(n, head - len(first))])
        h.update(view[:n])
        left -= n
    return "sha256:" + h.hexdigest(), first


def hash_all(opener: Callable[[], IO[bytes]]) -> tuple[str, int]:
    """sha256 and length of everything a fresh stream yields."""
    h = hashlib.sha256()
    total = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with opener() as stream:
        while True:
            n = readinto(stream, view)
            if not n:
                break
            h.update(view[:n])
            total += n
    return "sha256:" + h.hexdigest(), total
