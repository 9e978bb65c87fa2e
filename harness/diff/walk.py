"""Two layers read in step: the side-by-side walk with its merge phases, and the merge that pairs their paths.

`SideBySide` walks both tars as raw members (`harness.tar.blocks`): runs of
byte-identical members are passed over on one side's headers, and a header is
parsed, or content hashed, only where the two differ.  Where the paths part
(a path added, removed or moved) the walk merges both streams in step
(`PathMerge`) until they stand at the same path again, and walks on.  What it
cannot decide that way raises `Diverged` (or the tar reader's `Unusual`), and
the caller compares otherwise (`harness.diff.layer_files`).
"""

from __future__ import annotations

import hashlib
from array import array
from collections import deque
from itertools import pairwise
from typing import IO, Generic, Sequence, TypeVar

from harness.diff.headers import file_findings, normalize_name, one_sided
from harness.findings import Finding
from harness.image import Layer
from harness.tar.blocks import BLOCK, RawMember, TarBlocks
from harness.tar.hashing import hash_exact, sha256_digest
from harness.tar.streams import CHUNK, ForwardReader

Digests = tuple[str | None, str | None]
T = TypeVar("T")
_REALIGN = 256  # at most this many paths shown ahead are chased to realign the two sides
_NEVER = 1 << 62


class Diverged(Exception):
    """The two layers do not list the same paths in the same order."""


class PathMerge(Generic[T]):
    """Pairs the paths of two entry streams read in step, as soon as both sides have shown one.

    What is held is the entries one side has shown and the other not yet (about as many as the
    files added, removed or moved out of place), and per paired path its hash and both positions:
    16 bytes and a set entry, where an index of both layers takes about 1 KB per file.  A path
    shown again after it was paired (the last one wins on extraction) raises `Diverged`."""

    def __init__(self) -> None:
        self.waiting: tuple[dict[str, tuple[int, T]], dict[str, tuple[int, T]]] = ({}, {})
        self.paired: set[int] = set()
        self.positions = (array("q"), array("q"))
        self.since = (0, 0)
        self.recent: tuple[deque[tuple[int, str]], deque[tuple[int, str]]] = (
            deque(maxlen=_REALIGN), deque(maxlen=_REALIGN))  # the last (position, path) to wait, per side

    def begin(self, positions: Sequence[int]) -> None:
        """A merge phase starts at these positions: what waits from an earlier phase may pair no more
        (it would pair across identical members the walk passed, which only a start over can order)."""
        self.since = (positions[0], positions[1])

    def offer(self, side: int, path: str, position: int, item: T) -> tuple[T, T] | None:
        """Both sides' items once `path` has been shown by both, else None (it waits)."""
        mine, theirs = self.waiting[side], self.waiting[1 - side]
        other = theirs.pop(path, None)
        if other is None:
            if hash(path) in self.paired:
                raise Diverged()
            first = mine.get(path)  # listed twice before the other side showed it: the last one wins
            mine[path] = (first[0] if first else position, item)
            self.recent[side].append((position, path))
            return None
        if other[0] < self.since[1 - side]:
            raise Diverged()
        self.paired.add(hash(path))
        (pa, ia), (pb, ib) = ((position, item), other) if side == 0 else (other, (position, item))
        self.positions[0].append(pa)
        self.positions[1].append(pb)
        return ia, ib

    def read_after(self, side: int, after: int, upto: int) -> list[str] | None:
        """The paths `side` showed between positions `after` and `upto` (exclusive), in order, when all
        of them still wait; else None.  Few: they are what the other side must show next to realign."""
        count = upto - after - 1
        recent = self.recent[side]
        if count > len(recent):
            return None
        lead = [recent[i] for i in range(len(recent) - count, len(recent))]
        waiting = self.waiting[side]
        if any(q != after + 1 + k or waiting.get(p, (-1,))[0] != q for k, (q, p) in enumerate(lead)):
            return None
        return [p for _, p in lead]

    def in_order(self) -> bool:
        """Whether the paired paths come in the same order on both sides: pairs are recorded as
        they meet, so in the same order both position lists only grow."""
        return all(x < y for p in self.positions for x, y in pairwise(p))


class SideBySide:
    """One walk of two layers, member by member; where their paths part, merged until the sides realign.

    Its state is what the walk and its merge phases share: the two streams, the position each
    side has reached, what was found per path (a path listed twice is judged by its last pair,
    as the last one wins on extraction, so findings are kept per path until the walk ends), the
    merge that pairs paths across parted stretches, and `merged`, A's position ranges read by
    merge phases.
    """

    def __init__(self, where: str, a: Layer, b: Layer) -> None:
        self.where, self.a, self.b = where, a, b
        self.found: dict[str, list[Finding]] = {}
        self.merge: PathMerge[tuple[RawMember, str | None]] = PathMerge()
        self.merged: list[tuple[int, int]] = []
        self.pos = [0, 0]  # of the next member of A and of B
        self._large = _LargeFiles()

    def findings(self) -> list[Finding]:
        """Every file that differs, after reading both layers to their ends (which settles their
        diff_id checks); `Diverged` or `Unusual` when the walk cannot decide."""
        where, a, b, found, pos, large = self.where, self.a, self.b, self.found, self.pos, self._large
        with a.uncompressed() as sa, b.uncompressed() as sb:
            ta, tb = TarBlocks(sa), TarBlocks(sb)
            while True:
                ma, mb, passed = self._next_pair(ta, tb)
                pos[0] += passed
                pos[1] += passed
                if ma is None and mb is None:
                    ta.drain()  # the rest counts in the layers' digests, which reading them in full settles
                    tb.drain()
                    break
                if ma is not None and mb is not None:
                    if ma.raw == mb.raw:
                        pos[0] += 1
                        pos[1] += 1
                        digests = large.content(ta, tb, ma, mb, a, b)
                        if digests is None and not found:
                            continue
                        path = normalize_name(ma.name)
                        if digests is None:
                            found.pop(path, None)
                            continue
                        header = ma.header()
                        found[path] = file_findings(f"{where}:{path}", header, header, digests)
                        continue
                    ha, hb = ma.header(), mb.header()
                    path = normalize_name(ha.name)
                    if normalize_name(hb.name) == path:
                        pos[0] += 1
                        pos[1] += 1
                        digests = large.content(ta, tb, ma, mb, a, b)
                        found[path] = file_findings(f"{where}:{path}", ha, hb, digests or (None, None))
                        if not found[path]:
                            del found[path]
                        continue
                start = pos[0]
                ended = self._merge_phase((ta, tb), (ma, mb))
                self.merged.append((start, pos[0]))
                if ended:
                    break
        if self.merged:
            self._settle()
        return [f for fs in found.values() for f in fs]

    def _next_pair(self, ta: TarBlocks, tb: TarBlocks) -> tuple[RawMember | None, RawMember | None, int]:
        """The next members of both sides, after passing over a run of byte-identical ones on A's headers
        alone, and how many were passed over.

        Members that lie wholly within bytes both streams share are equal pairs:
        B is moved past them without being parsed; the member that reaches past
        the shared bytes is read on both sides and compared as usual.
        """
        found = self.found
        same = ta.shared(tb)
        start_a, start_b = ta.offset, tb.offset
        passed = -1
        while True:
            passed += 1
            header_at = ta.offset
            ma = ta.next()
            if ma is None or ta.offset - start_a > same:
                break
            end = ma.offset + ma.size + (-ma.size % BLOCK)
            if end - start_a > same:
                break
            ta.skip(end - ta.offset)
            if found:  # an equal last pair clears what an earlier pair of the same path found
                found.pop(normalize_name(ma.name), None)
        tb.skip(header_at - start_a - (tb.offset - start_b))
        return ma, tb.next(ma), passed

    def _merge_phase(self, blocks: tuple[TarBlocks, TarBlocks], first: tuple[RawMember | None, RawMember | None]
                     ) -> bool:
        """From where the walk's paths part (`first`, read on both sides), merge until the sides realign.

        Both sides are read in step.  When a pair is made, the side that had shown the path first has
        shown a few more since; once the other side has shown exactly those, in that order, both
        streams stand at the same path again and the walk takes over (returns False).  Returns True
        when both layers ended in the merge (their streams drained)."""
        merge, pos, found = self.merge, self.pos, self.found
        merge.begin(pos)
        heads: list[RawMember | None] = list(first)
        unread = [False, False]
        side, chaser = 0, -1
        chase: list[str] = []
        while True:
            if chaser >= 0:
                side = chaser
            for _ in range(2):
                if unread[side]:
                    heads[side], unread[side] = blocks[side].next(), False
                if heads[side] is not None:
                    break
                side, chaser = 1 - side, -1
            m = heads[side]
            if m is None:
                blocks[0].drain()
                blocks[1].drain()
                return True
            digest = _read_digest(blocks[side], m)
            path = normalize_name(m.name)
            pair = merge.offer(side, path, pos[side], (m, digest))
            pos[side] += 1
            unread[side] = True
            if pair is not None:
                (xa, da), (xb, db) = pair
                if xa.raw != xb.raw or da != db:
                    found[path] = file_findings(f"{self.where}:{path}", xa.header(), xb.header(), (da, db))
                if chaser >= 0 and chase and chase[0] == path:
                    chase.pop(0)
                else:  # the other side showed this path first: what has it shown since?
                    ahead = 1 - side
                    lead = merge.read_after(ahead, merge.positions[ahead][-1], pos[ahead])
                    chaser, chase = (side, lead) if lead is not None else (-1, [])
                if chaser >= 0 and not chase:
                    return False
            else:
                chaser, chase = -1, []
            if chaser < 0:
                side = 1 - side

    def _settle(self) -> None:
        """After a walk with merge phases: the paths left waiting are added or removed.

        The walk pairs the same paths on both sides, so only a path it paired that a merge phase also
        read could change what was found (a path listed twice): A's members outside the merge phases
        are read once more, names only, to rule that out.  That and paired paths in another order
        raise `Diverged`, for the caller to start over."""
        merge, found = self.merge, self.found
        if not merge.in_order():
            raise Diverged()
        rest = merge.paired | {hash(p) for side in merge.waiting for p in side}
        phases = iter(self.merged)
        start = end = 0
        with self.a.uncompressed() as stream:
            t = TarBlocks(stream)
            position = 0
            while (member := t.next()) is not None:
                while position >= end and end != _NEVER:
                    start, end = next(phases, (_NEVER, _NEVER))
                if position < start and hash(normalize_name(member.name)) in rest:
                    raise Diverged()
                t.skip(member.size + (-member.size % BLOCK))
                position += 1
        for side in (0, 1):
            for p, (_, (m, digest)) in merge.waiting[side].items():
                found[p] = [one_sided(side, f"{self.where}:{p}", m.header(), digest)]


class _LargeFiles:
    """Reads both members' content: None when it is the same bytes, else the digests of both sides.

    Equal bytes are compared, never hashed.  A large file whose bytes differ
    after its first chunk has lost the start of its digest: the first such
    file of a walk is hashed again from fresh streams of both layers, and from
    then on large files are hashed as they are compared, since a second fresh
    read per file would re-inflate a compressed layer up to it every time.
    """

    def __init__(self) -> None:
        self.hash_as_compared = False

    def content(self, ta: TarBlocks, tb: TarBlocks, ma: RawMember, mb: RawMember, a: Layer, b: Layer
                ) -> Digests | None:
        if not ma.data and not mb.data:
            return None
        if not (ma.data and mb.data and ma.size == mb.size):
            return _read_digest(ta, ma), _read_digest(tb, mb)
        size = ma.size
        padding = -size % BLOCK
        if size + padding <= CHUNK:
            xa, xb = ta.exact(size + padding), tb.exact(size + padding)
            if xa == xb or xa[:size] == xb[:size]:  # padding is not content
                return None
            return sha256_digest(xa[:size]), sha256_digest(xb[:size])
        prefix = hashlib.sha256() if self.hash_as_compared else None
        left = size
        while left:
            n = min(left, CHUNK)
            xa, xb = ta.exact(n), tb.exact(n)
            left -= n
            if xa == xb:
                if prefix is not None:
                    prefix.update(xa)
                continue
            if prefix is None:
                ta.skip(left + padding)
                tb.skip(left + padding)
                self.hash_as_compared = True
                return _member_digest(a, ma), _member_digest(b, mb)
            ha, hb = prefix, prefix.copy()
            ha.update(xa)
            hb.update(xb)
            while left:
                n = min(left, CHUNK)
                ha.update(ta.exact(n))
                hb.update(tb.exact(n))
                left -= n
            ta.skip(padding)
            tb.skip(padding)
            return "sha256:" + ha.hexdigest(), "sha256:" + hb.hexdigest()
        ta.skip(padding)
        tb.skip(padding)
        return None


def _read_digest(t: TarBlocks, m: RawMember) -> str | None:
    """Digest of a member's content read from the walk (None for members without content)."""
    return t.content_digest(m.size) if m.data else None


def _member_digest(layer: Layer, m: RawMember) -> str:
    """Digest of a large member's content from a fresh stream (its start was compared, not hashed)."""
    stream: IO[bytes] = layer.uncompressed()
    with ForwardReader(stream) as reader:
        reader.seek(m.offset)
        return hash_exact(reader, m.size)[0]
