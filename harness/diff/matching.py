"""Which image of A is compared with which image of B, and which layer with which.

Images are matched by what a person calls them (the first RepoTag, then any
shared tag), then by identity (config digest), then by position among the
rest; so a reordered ``manifest.json`` does not turn into a cascade of changes.
Layers are aligned by diff_id with a sequence matcher, so one inserted layer
is one `added` layer rather than a rewrite of every layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Callable, Sequence, TypeVar

from harness.findings import Category, Finding
from harness.image import Image

T = TypeVar("T")


@dataclass(frozen=True)
class ImagePair:
    """An image of A and its counterpart in B; `label` prefixes every finding about it."""

    label: str
    a_index: int
    b_index: int
    a: Image
    b: Image


@dataclass(frozen=True)
class Unmatched:
    """An image on one side only."""

    label: str
    index: int
    image: Image


def claim_pairs(
    a: Sequence[T], b: Sequence[T], rules: Sequence[Callable[[T, T], bool]], *, by_position: bool = False
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair items rule by rule (first rule first, each in A's order), then optionally by position.

    Returns the (A index, B index) pairs in A's order and the indexes left on either side.
    """
    left = list(range(len(a)))
    right = list(range(len(b)))
    pairs: dict[int, int] = {}
    for same in rules:
        for i in list(left):
            j = next((j for j in right if same(a[i], b[j])), None)
            if j is not None:
                pairs[i] = j
                left.remove(i)
                right.remove(j)
    if by_position:
        pairs.update(zip(left, right))
        common = min(len(left), len(right))
        left, right = left[common:], right[common:]
    return sorted(pairs.items()), left, right


def match_images(
    a: Sequence[Image], b: Sequence[Image]
) -> tuple[list[ImagePair], list[Unmatched], list[Unmatched]]:
    """Pairs of images, the images only in A, and those only in B."""
    pairs, left, right = claim_pairs(a, b, [
        lambda x, y: bool(x.repo_tags) and x.repo_tags[:1] == y.repo_tags[:1],
        lambda x, y: bool(set(x.repo_tags) & set(y.repo_tags)),
        lambda x, y: x.config_digest == y.config_digest,
    ], by_position=True)
    return (
        [ImagePair(f"image[{i}]", i, j, a[i], b[j]) for i, j in pairs],
        [Unmatched(f"image[{i}]", i, a[i]) for i in left],
        [Unmatched(f"image[{j}]", j, b[j]) for j in right],
    )


def first_divergence(a: list[str], b: list[str]) -> tuple[int, str, str] | None:
    """Where two sequences first part when only their common names are kept, or None in the same order."""
    shared = set(a) & set(b)
    common_a = [n for n in a if n in shared]
    common_b = [n for n in b if n in shared]
    for k, (x, y) in enumerate(zip(common_a, common_b)):
        if x != y:
            return k, x, y
    return None


def order_finding(where: str, k: int, x: str, y: str) -> Finding:
    """The `order` finding for two sequences that first part at common entry `k`, `x` in A and `y` in B."""
    return Finding(Category.ORDER, where, x, y, f"entries in another order, first at common entry {k}")


def align_layers(
    a: Sequence[str], b: Sequence[str]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Align two diff_id lists: (A position, B position) pairs, positions only in A, only in B.

    Equal runs pair up; a replaced run pairs position by position and its
    surplus is added or removed.
    """
    pairs: list[tuple[int, int]] = []
    only_a: list[int] = []
    only_b: list[int] = []
    matcher = SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        common = min(i2 - i1, j2 - j1)
        pairs.extend((i1 + k, j1 + k) for k in range(common))
        only_a.extend(range(i1 + common, i2))
        only_b.extend(range(j1 + common, j2))
    return pairs, only_a, only_b
