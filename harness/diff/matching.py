"""Which image of A is compared with which image of B, and which layer with which.

Images are matched by platform and what a person calls them (the first
RepoTag, then any shared tag), then by identity (config digest), then among
the rest by platform (images of an index) or by position (images no index
names); so a reordered ``manifest.json`` does not turn into a cascade of
changes, and a platform on one side only is one finding.
Layers are aligned by diff_id with a sequence matcher, so one inserted layer
is one `added` layer rather than a rewrite of every layer above it.
An attestation pairs through the image it attests (so the provenance of
linux/arm64 is compared with the provenance of linux/arm64 whatever the order
of the index), an artifact by its name and type, then by type.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Callable, Sequence, TypeVar

from harness.findings import Category, Finding
from harness.image import Archive, Image, Referrer

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
    a: Sequence[T], b: Sequence[T], rules: Sequence[Callable[[T, T], bool]]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair items rule by rule (first rule first, each in A's order); a rule that holds for any two
    items pairs what is left by position.

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
    return sorted(pairs.items()), left, right


def _platform(image: Image) -> str:
    return str(image.platform) if image.platform else ""


def _same_platform(x: Image, y: Image) -> bool:
    return _platform(x) == _platform(y)


def label(index: int, image: Image, *other: Image) -> str:
    """``image[1]``; ``image[1](linux/arm64)`` where an index gives either side its platform, so that a
    finding in one platform says which."""
    if image.platform and any(im.index is not None for im in (image, *other)):
        return f"image[{index}]({image.platform})"
    return f"image[{index}]"


def match_images(
    a: Sequence[Image], b: Sequence[Image]
) -> tuple[list[ImagePair], list[Unmatched], list[Unmatched]]:
    """Pairs of images, the images only in A, and those only in B.

    Platform images of an index pair by platform (and name): an arm64 image is never compared with an
    amd64 one, so a platform on one side only is one finding.  Images no index names keep the older
    rules: the same name, the same ID, else what is left in order.
    """
    pairs, left, right = claim_pairs(a, b, [
        lambda x, y: _same_platform(x, y) and bool(x.repo_tags) and x.repo_tags[:1] == y.repo_tags[:1],
        lambda x, y: _same_platform(x, y) and bool(set(x.repo_tags) & set(y.repo_tags)),
        lambda x, y: x.config_digest == y.config_digest and bool(x.config_digest),
        lambda x, y: _same_platform(x, y) and x.index is not None and y.index is not None,
        lambda x, y: x.index is None and y.index is None,
    ])
    return (
        [ImagePair(label(i, a[i], b[j]), i, j, a[i], b[j]) for i, j in pairs],
        [Unmatched(label(i, a[i]), i, a[i]) for i in left],
        [Unmatched(label(j, b[j]), j, b[j]) for j in right],
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


@dataclass(frozen=True)
class ReferrerPair:
    label: str
    a: Referrer
    b: Referrer


@dataclass(frozen=True)
class UnmatchedReferrer:
    label: str
    referrer: Referrer
    with_its_image: bool = False  # attests an image on this side only: that image's finding covers it


def _subject_labels(images: Sequence[tuple[int, str]], archive: Archive) -> dict[str, str]:
    """Manifest digest → the label of the image pair (or unmatched image) it belongs to."""
    return {d: label for index, label in images if (d := _manifest_digest(archive, index))}


def _manifest_digest(archive: Archive, index: int) -> str | None:
    manifest = archive.images[index].manifest
    return manifest.digest if manifest is not None else None


def match_referrers(a: Archive, b: Archive, pairs: Sequence[ImagePair], only_a: Sequence[Unmatched],
                    only_b: Sequence[Unmatched]) -> tuple[list[ReferrerPair], list[UnmatchedReferrer],
                                                          list[UnmatchedReferrer]]:
    """Attestations through their images, artifacts by name and type; what is left on either side."""
    labels_a = _subject_labels([(p.a_index, p.label) for p in pairs] + [(u.index, u.label) for u in only_a], a)
    labels_b = _subject_labels([(p.b_index, p.label) for p in pairs] + [(u.index, u.label) for u in only_b], b)
    out: list[ReferrerPair] = []
    rest_a: list[UnmatchedReferrer] = []
    rest_b: list[UnmatchedReferrer] = []

    def owner(r: Referrer, labels: dict[str, str]) -> str:
        return labels.get(r.subject or "", f"subject({(r.subject or 'none')[:19]})")

    att_a, att_b = a.attestations, b.attestations
    paired, left, right = claim_pairs(att_a, att_b, [
        lambda x, y: owner(x, labels_a) == owner(y, labels_b),
        lambda x, y: x.manifest.digest == y.manifest.digest,
    ])
    alone_a = {u.label for u in only_a}
    alone_b = {u.label for u in only_b}
    out += [ReferrerPair(f"{owner(att_a[i], labels_a)}.attestation", att_a[i], att_b[j]) for i, j in paired]
    rest_a += [UnmatchedReferrer(f"{owner(att_a[i], labels_a)}.attestation", att_a[i],
                                 owner(att_a[i], labels_a) in alone_a) for i in left]
    rest_b += [UnmatchedReferrer(f"{owner(att_b[j], labels_b)}.attestation", att_b[j],
                                 owner(att_b[j], labels_b) in alone_b) for j in right]

    art_a, art_b = a.artifacts, b.artifacts
    paired, left, right = claim_pairs(art_a, art_b, [
        lambda x, y: x.artifact_type == y.artifact_type and bool(x.tags) and bool(set(x.tags) & set(y.tags)),
        lambda x, y: x.manifest.digest == y.manifest.digest,
        lambda x, y: x.artifact_type == y.artifact_type,
    ])
    out += [ReferrerPair(f"artifact[{i}]", art_a[i], art_b[j]) for i, j in paired]
    rest_a += [UnmatchedReferrer(f"artifact[{i}]", art_a[i]) for i in left]
    rest_b += [UnmatchedReferrer(f"artifact[{j}]", art_b[j]) for j in right]
    return out, rest_a, rest_b
