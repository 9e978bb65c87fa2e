"""What the image-level findings already account for, so the archive level does not repeat it.

A recompressed layer changes its stored digest, hence its blob's entry name,
the manifest's layer descriptor (digest, size, mediaType), the manifest's
digest, the index.json descriptor and manifest.json's Layers path. Reporting
each would bury the one cause. Instead, once layers, configs and manifests of
every image pair are compared, `Explanation.rewrite` restates B's metadata in
A's terms: every digest, legacy layer ID and entry name of a compared blob is
replaced by its counterpart in A (with the descriptor's size and, when the
compression differs, mediaType). What still differs after that is a cause of
its own and is reported at the archive level.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from harness.diff.layers import LayerOutcome
from harness.diff.matching import ImagePair, ReferrerPair, Unmatched, UnmatchedReferrer, claim_pairs
from harness.image import Archive, EntryType, Image, Index

ReferrerMatch = tuple[Sequence[ReferrerPair], Sequence[UnmatchedReferrer], Sequence[UnmatchedReferrer]]
_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
NAME_ANNOTATIONS = frozenset({"org.opencontainers.image.ref.name", "io.containerd.image.name"})


@dataclass(frozen=True)
class PairOutcome:
    """What the image-level comparison of one pair found, as the archive level needs it."""

    pair: ImagePair
    layers: LayerOutcome
    config_changed: bool
    manifest_changed: bool


@dataclass(frozen=True)
class RolePair:
    """Two outer entries holding the same part of an image; `explained` if a name change follows from content."""

    a: str
    b: str
    explained: bool


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def _blob_entry(archive: Archive, digest: str) -> str | None:
    name = "blobs/" + digest.replace(":", "/", 1)
    return name if archive.entry(name) else None


def _dir(name: str) -> str | None:
    head, sep, _ = name.partition("/")
    return head if sep and _HEX.fullmatch(head) else None


@dataclass
class Rewriter:
    """Restates B's names and digests in A's terms."""

    names: dict[str, str] = field(default_factory=dict)   # B entry name → A entry name
    hexes: dict[str, str] = field(default_factory=dict)   # B hex → A hex
    descriptors: dict[str, dict[str, Any]] = field(default_factory=dict)  # B digest → A's digest, size…

    def text(self, value: str) -> str:
        if value in self.names:
            return self.names[value]
        return _HEX.sub(lambda m: self.hexes.get(m.group(0), m.group(0)), value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, Mapping):
            digest = value.get("digest")
            replaced = self.descriptors.get(digest, {}) if isinstance(digest, str) else {}
            return {
                self.text(k): replaced[k] if k in replaced else self.json(v) for k, v in value.items()
            }
        return value


@dataclass
class Explanation:
    """The rewriter plus what the archive level should leave alone."""

    rewrite: Rewriter = field(default_factory=Rewriter)
    roles: list[RolePair] = field(default_factory=list)
    owned_a: set[str] = field(default_factory=set)  # entries of images/layers only in A (already `removed`)
    owned_b: set[str] = field(default_factory=set)  # entries of images/layers only in B (already `added`)
    content_explained: set[str] = field(default_factory=set)  # A entries whose bytes follow from a finding
    names: set[str] = field(default_factory=set)  # tags whose difference is already reported
    indexes: list[tuple[Index, Index]] = field(default_factory=list)  # paired nested indexes, compared by layout
    indexes_only: tuple[list[tuple[int, Index]], list[tuple[int, Index]]] = ([], [])  # (position, index) per side

    def pair(self, a: str, b: str, explained: bool) -> None:
        self.roles.append(RolePair(a, b, explained or a == b))
        if a != b:
            self.rewrite.names[b] = a

    def map_digest(self, b: str, a: str, **descriptor: Any) -> None:
        if a != b:
            self.rewrite.hexes[_hex(b)] = _hex(a)
            self.rewrite.descriptors[b] = {"digest": a, **descriptor}


class _Side:
    """Lookups into one archive: which entries hold, link to, or sit beside a blob."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.links: dict[str, list[str]] = {}
        self.under: dict[str, list[str]] = {}
        for e in archive.entries:
            h = e.header
            if h.type in (EntryType.SYMLINK, EntryType.HARDLINK):
                base = posixpath.dirname(h.name) if h.type is EntryType.SYMLINK else ""
                self.links.setdefault(posixpath.normpath(posixpath.join(base, h.linkname)), []).append(h.name)
            if (d := _dir(h.name)) is not None:
                self.under.setdefault(d, []).append(h.name)

    def places(self, name: str) -> list[str]:
        """The entry holding a blob and the links to it (legacy and podman ``<id>/layer.tar``)."""
        return [name, *self.links.get(name, [])]

    def link_dirs(self, name: str) -> list[str]:
        """Legacy layer directories (``<id>/``) whose ``layer.tar`` links to a blob."""
        return [d for p in self.links.get(name, []) if (d := _dir(p)) is not None]

    def entries(self, image: Image, layers: Iterable[int]) -> Iterator[str]:
        """Entries that hold the given layers, the config and the manifest of an image."""
        if image.config_entry:
            yield image.config_entry
        if image.manifest and (m := _blob_entry(self.archive, image.manifest.digest)):
            yield m
        for i in layers:
            if not image.layers[i].present:
                continue
            name = image.layers[i].entry_name
            yield from self.places(name)
            for d in filter(None, [_dir(name), *self.link_dirs(name)]):
                yield d
                yield from self.under.get(d, [])


def _media_type(raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"null").get("mediaType")
    except (ValueError, AttributeError):
        return None


def _pair_layers(ex: Explanation, out: PairOutcome, sa: _Side, sb: _Side) -> None:
    """Map every name and digest of each compared layer pair; legacy directories follow the layer chain."""
    ia, ib = out.pair.a, out.pair.b
    changed = out.layers.changed or out.config_changed
    for i, j in out.layers.pairs:
        la, lb = ia.layers[i], ib.layers[j]
        media = {"mediaType": la.media_type} if la.compression != lb.compression else {}
        if la.digest and lb.digest:
            ex.map_digest(lb.digest, la.digest, size=la.size, **media)
        if not (la.present and lb.present):  # the lack is that side's `missing` problem: the other side's
            ex.owned_a.update(sa.places(la.entry_name) if la.present else ())  # blob is no entry of its own
            ex.owned_b.update(sb.places(lb.entry_name) if lb.present else ())
            continue
        if lb.diff_id != la.diff_id:
            ex.rewrite.hexes.setdefault(_hex(lb.diff_id), _hex(la.diff_id))
        chain = ia.diff_ids[: i + 1] != ib.diff_ids[: j + 1] or out.config_changed
        ex.pair(la.entry_name, lb.entry_name, la.digest != lb.digest or chain)
        own_a, own_b = _dir(la.entry_name), _dir(lb.entry_name)
        if own_a and own_b and own_a != own_b:  # a role pair: an unexplained rename is reported as one
            ex.rewrite.hexes[own_b] = own_a
        links_a, links_b = sa.link_dirs(la.entry_name), sb.link_dirs(lb.entry_name)
        if chain:  # link directories carry IDs derived from the chain: renamed with it, else reported
            ex.rewrite.hexes.update((db, da) for da, db in zip(links_a, links_b) if da != db)
        if changed:
            ex.content_explained.update(f"{d}/json" for d in filter(None, [own_a, *links_a]))


def explain(
    a: Archive, b: Archive, outcomes: list[PairOutcome], only_a: list[Unmatched], only_b: list[Unmatched],
    referrers: ReferrerMatch = ((), (), ()),
) -> Explanation:
    """Everything the archive level must treat as a consequence of image-level findings."""
    ex = Explanation()
    sa, sb = _Side(a), _Side(b)
    for out in outcomes:
        ia, ib = out.pair.a, out.pair.b
        ex.names |= set(ia.repo_tags) ^ set(ib.repo_tags)
        ex.map_digest(ib.config_digest, ia.config_digest, size=len(ia.raw_config))
        if ia.config_entry and ib.config_entry:
            ex.pair(ia.config_entry, ib.config_entry, out.config_changed)
        elif ia.config_entry or ib.config_entry:  # one side lacks it: a `missing` problem, not an entry
            (ex.owned_a if ia.config_entry else ex.owned_b).add(ia.config_entry or ib.config_entry)
        if ia.manifest and ib.manifest:
            media = _media_type(ia.raw_manifest)
            same = media == _media_type(ib.raw_manifest)
            ex.map_digest(ib.manifest.digest, ia.manifest.digest, size=ia.manifest.size,
                          **({} if same else {"mediaType": ia.manifest.media_type}))
            ma, mb = _blob_entry(a, ia.manifest.digest), _blob_entry(b, ib.manifest.digest)
            if ma and mb:
                ex.pair(ma, mb, out.manifest_changed)
        _pair_layers(ex, out, sa, sb)
        ex.owned_a.update(sa.entries(ia, out.layers.only_a))
        ex.owned_b.update(sb.entries(ib, out.layers.only_b))
    for side, owned, lookups in ((only_a, ex.owned_a, sa), (only_b, ex.owned_b, sb)):
        for um in side:
            ex.names.update(um.image.repo_tags)
            owned.update(lookups.entries(um.image, range(len(um.image.layers))))
    _pair_referrers(ex, a, b, referrers)
    # a blob that a compared image also uses is shared, not owned
    ex.owned_a -= {r.a for r in ex.roles}
    ex.owned_b -= {r.b for r in ex.roles}
    _pair_indexes(a, b, ex)
    return ex


def _pair_referrers(ex: Explanation, a: Archive, b: Archive, referrers: ReferrerMatch) -> None:
    """Paired attestations and artifacts restate B's digests in A's terms; those on one side own their blobs."""
    pairs, only_a, only_b = referrers
    for pair in pairs:
        ra, rb = pair.a, pair.b
        ex.names |= set(ra.tags) ^ set(rb.tags)
        for da, db in ((ra.manifest, rb.manifest), *((x.descriptor, y.descriptor) for x, y in
                                                     zip((ra.config, *ra.blobs), (rb.config, *rb.blobs)))):
            ex.map_digest(db.digest, da.digest, size=da.size)
            ea, eb = _blob_entry(a, da.digest), _blob_entry(b, db.digest)
            if ea and eb:
                ex.pair(ea, eb, da.digest != db.digest)
            elif ea or eb:  # one side lacks it: a `missing` problem, not an entry
                (ex.owned_a if ea else ex.owned_b).add(ea or eb or "")
    for archive, side, owned in ((a, only_a, ex.owned_a), (b, only_b, ex.owned_b)):
        for um in side:
            r = um.referrer
            owned.update(e for d in (r.manifest, r.config.descriptor, *(x.descriptor for x in r.blobs))
                         if (e := _blob_entry(archive, d.digest)))
            ex.names.update(r.tags)


def _pair_indexes(a: Archive, b: Archive, ex: Explanation) -> None:
    """Indexes pair by the names they carry, then by position; B's digest is restated as A's (what differs
    inside them is compared by `harness.diff.layout`)."""
    pairs, only_a, only_b = claim_pairs(a.indexes, b.indexes, [
        lambda x, y: bool(x.tags) and x.tags == y.tags,
        lambda x, y: x.descriptor.digest == y.descriptor.digest,
        lambda x, y: True,
    ])
    for i, j in pairs:
        ia, ib = a.indexes[i], b.indexes[j]
        ex.indexes.append((ia, ib))
        ex.map_digest(ib.descriptor.digest, ia.descriptor.digest, size=ia.descriptor.size)
        ex.pair(ia.entry_name, ib.entry_name, True)
    ex.indexes_only = ([(k, a.indexes[k]) for k in only_a], [(k, b.indexes[k]) for k in only_b])
    for archive, side, owned in ((a, only_a, ex.owned_a), (b, only_b, ex.owned_b)):
        owned.update(archive.indexes[k].entry_name for k in side)
