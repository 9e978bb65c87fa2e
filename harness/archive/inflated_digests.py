"""Uncompressed digests and sizes of compressed blobs, learnt once per process by whoever inflates a blob first.

Checking a compressed layer against its diff_id means inflating and hashing
all of it, the most expensive thing the readers do.  The same bytes inflate
to the same bytes, so the digest is kept by the blob's own (computed) digest:
a blob that two archives share, as most layers of two saves of an image are,
is inflated once, not per archive; and a layer the differ reads in full
anyway (`Recording`) needs no second inflation to be checked.  The size is
kept too: a tar member's header comes before its bytes, so the reference
writer can hash a canonical form with inflated layers as it forms it only
when their sizes are known beforehand.  Threads that ask for a blob another
thread is inflating wait for its answer.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Callable, NamedTuple

from harness.archive.compression import max_inflated
from harness.tar.streams import Wrapper, readinto

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Key = tuple[str, "int | None"]
"""The blob's computed digest, and the inflate limit it was read under (a bomb refused under one limit may
be read under another)."""

MAX_KNOWN = 4096


class Inflated(NamedTuple):
    """What a compressed blob inflates to: ``sha256:<hex>`` and length of the uncompressed bytes."""

    digest: str
    size: int


def key_of(digest: str, size: int) -> Key:
    """The key of a compressed blob whose computed digest is `digest`, read under the inflate limit in force."""
    return digest, max_inflated(size)

_lock = threading.Lock()
_known: dict[Key, Inflated] = {}
_in_flight: dict[Key, Future[Inflated]] = {}


def known(key: Key) -> Inflated | None:
    with _lock:
        return _known.get(key)


def remember(key: Key, inflated: Inflated) -> None:
    with _lock:
        if key not in _known and len(_known) >= MAX_KNOWN:
            del _known[next(iter(_known))]
        _known[key] = inflated


def digest_of(key: Key, compute: Callable[[], tuple[str, int]]) -> Inflated:
    """What `key` inflates to: known, being computed by another thread (waited for), or computed (`compute`
    returns the digest and the length, as `hash_all` does)."""
    with _lock:
        if key in _known:
            return _known[key]
        future = _in_flight.get(key)
        owner = future is None
        if future is None:
            future = _in_flight[key] = Future()
    if not owner:
        return future.result()
    try:
        inflated = Inflated(*compute())
    except BaseException as e:
        future.set_exception(e)
        raise
    finally:
        with _lock:
            del _in_flight[key]
    remember(key, inflated)
    future.set_result(inflated)
    return inflated


class Recording(Wrapper):
    """A stream of a blob's inflated bytes that hashes and counts them on the way and, read to its end, remembers
    what it inflates to.

    Stopping early, or an error at any point, remembers nothing.
    """

    def __init__(self, raw: IO[bytes], key: Key) -> None:
        super().__init__(raw)
        self._key = key
        self._hash: hashlib._Hash | None = hashlib.sha256()
        self._size = 0

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        try:
            n = readinto(self._raw, view)
        except BaseException:
            self._hash = None  # whatever the stream does next, it is not this blob read in full
            raise
        if self._hash is None:
            return n
        if n:
            self._hash.update(view[:n])
            self._size += n
        elif len(view):
            remember(self._key, Inflated("sha256:" + self._hash.hexdigest(), self._size))
            self._hash = None
        return n
