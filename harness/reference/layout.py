"""The OCI layouts (``docker``, ``oci``) of the canonical form: every object an archive holds, in canonical order.

The objects index.json names (images, indexes, attestations, artifacts) are
written one after the other, each with everything it names before it, each
blob once, at its first use (`LayoutWriter.write`).  Objects are ordered by
what they are, never by how the source encoded them: images by platform and
image ID, attestations by the image they attest, artifacts by type and
content (`_key`), so the order is the same whatever the compression.
Uncompressed, every image manifest is generated again, and every index,
attestation or artifact that names a manifest whose digest changed says the
new digest (`_restate`); keeping compression, every manifest and index is
kept byte for byte.  The form itself is specified in `harness.reference.writer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from harness.archive.refnames import parse_tagged
from harness.errors import CannotCarry, DigestMismatch
from harness.image import Archive, Compression, Image, Index, Referrer, ReferrerKind
from harness.reference.blobs import BlobWriter
from harness.reference.tarwriter import CanonicalTar
from harness.tar.hashing import sha256_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}
OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
REFERENCE_DIGEST = "vnd.docker.reference.digest"  # how BuildKit links an attestation to the image it attests
RESTATED = ("mediaType", "digest", "size", "data")  # what a descriptor says about its blob's bytes

Object = Union[Image, Index, Referrer]


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")


def blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def canonical_tags(tags: Any, *, bare: bool) -> list[str]:
    """Sorted, without duplicates, names in familiar form (``x:tag``).  With `bare` (version 2) a tag that
    names no repository (an OCI ref name such as ``1.0``) stays as it is; version 1 reads it as a name."""
    out = set()
    for tag in tags:
        if bare and not is_name(tag):
            out.add(tag)
        elif (parsed := parse_tagged(tag)) is not None:
            out.add(parsed.familiar)
    return sorted(out)


def image_label(k: int, image: Image) -> str:
    """How errors name an image: its number as the reader gives it, and its platform."""
    return f"image[{k}]" + (f" ({image.platform})" if image.platform else "")


def is_name(tag: str) -> bool:
    return ":" in tag or "/" in tag


def full_names(tags: list[str]) -> list[str]:
    """What manifest.json's RepoTags say: every name in full; a bare ref name has no place there."""
    return [parsed.full for tag in tags if is_name(tag) and (parsed := parse_tagged(tag)) is not None]


@dataclass(frozen=True)
class Written:
    """What a manifest or index became in the output: the descriptor that names it."""

    media_type: str
    digest: str
    size: int

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Planned:
    """One image as a version 1 archive holds it: images with one config (and, keeping compression, the same
    blobs) merge into one, with all their tags."""

    image: Image
    tags: list[str]
    merged: list[Image] = field(default_factory=list)


def plan_images(images: Any, *, keep_compression: bool, bare: bool) -> list[Planned]:
    """Images merged and in canonical order: by first tag ("" when untagged), then image ID."""
    merged: dict[tuple[str, ...], Planned] = {}
    for im in images:
        key = (im.config_digest, *(la.digest for la in im.layers)) if keep_compression else (im.config_digest,)
        if key in merged:
            merged[key].tags.extend(im.repo_tags)
            merged[key].merged.append(im)
        else:
            merged[key] = Planned(im, list(im.repo_tags), [im])
    for p in merged.values():
        p.tags = canonical_tags(p.tags, bare=bare)
    return sorted(merged.values(), key=lambda p: (p.tags[0] if p.tags else "", p.image.config_digest))


@dataclass
class _Top:
    """One object index.json names, with its tags."""

    key: tuple[Any, ...]
    tags: list[str]
    obj: Object
    planned: Planned | None = None  # images: the merged ones


class LayoutWriter:
    """Writes the objects of `archive` (version 2 when it holds indexes or referrers) into `tar`."""

    def __init__(self, tar: CanonicalTar, blobs: BlobWriter, archive: Archive, *, keep_compression: bool) -> None:
        self._tar = tar
        self._blobs = blobs
        self._archive = archive
        self._keep = keep_compression
        self._v2 = bool(archive.indexes or archive.referrers)
        self._images = {im.manifest.digest: im for im in archive.images if im.manifest is not None}
        self._indexes = {ix.descriptor.digest: ix for ix in archive.indexes}
        self._referrers = {r.manifest.digest: r for r in archive.referrers}
        self._labels = {id(im): image_label(k, im) for k, im in enumerate(archive.images)}
        self._sizes: dict[str, int] = {}        # blob digest → size, for every blob written
        self._done: dict[int, Written] = {}     # id(object) → what it became
        self._busy: set[int] = set()            # objects being written (a cycle is refused)
        self._identities: dict[int, str] = {}   # id(index) → its identity (`_index_identity`)
        self._keying: set[int] = set()          # indexes whose identity is being worked out
        self._docker: dict[str, dict[str, Any]] = {}  # written manifest digest → its manifest.json item

    def write(self, *, with_manifest_json: bool) -> None:
        self._tar.directory("blobs")
        self._tar.directory("blobs/sha256")
        index_json = []
        for top in self._tops():
            written = self._object(top.obj)
            for im in top.planned.merged if top.planned else ():
                self._done[id(im)] = written  # what names another of the merged images names this one
            if top.planned is not None:
                self._docker[written.digest]["RepoTags"] = full_names(top.tags)
            index_json += _descriptors(written, top.tags, bare=self._v2)
        everything: list[Object] = [*self._archive.images, *self._archive.indexes, *self._archive.referrers]
        left = [_digest(obj) for obj in everything if id(obj) not in self._done]
        if left:  # nothing is dropped silently: what the form could not place is an error
            raise CannotCarry(f"{left[0]}" + (f" and {len(left) - 1} more" if len(left) > 1 else "")
                              + ": neither index.json nor an index written names it")
        self._tar.file("index.json", canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                     "manifests": index_json}))
        if with_manifest_json:
            self._tar.file("manifest.json", canonical_json(list(self._docker.values())))
        self._tar.file("oci-layout", OCI_LAYOUT_FILE)

    def _tops(self) -> list[_Top]:
        """index.json's objects, images and indexes first, then attestations and artifacts (so that what one
        of those names is written before it), each group by first tag, then kind and identity."""
        archive = self._archive
        named = {d.get("digest") for d in archive.index.get("manifests") or [] if isinstance(d, Mapping)} \
            if archive.index is not None else None

        def top(digest: str | None, parent: str | None) -> bool:
            """Named by index.json, or by nothing of this archive (a model built or cut down by a caller)."""
            return named is None or digest is None or digest in named or parent not in self._indexes

        images = [im for im in archive.images if top(im.manifest.digest if im.manifest else None, im.index)]
        tops = [_Top((0, p.tags[0] if p.tags else "", 0, p.image.config_digest), p.tags, p.image, p)
                for p in plan_images(images, keep_compression=self._keep, bare=self._v2)]
        for ix in archive.indexes:
            if top(ix.descriptor.digest, ix.parent):
                tags = canonical_tags(ix.tags, bare=True)
                tops.append(_Top((0, tags[0] if tags else "", 1, self._index_identity(ix)), tags, ix))
        for r in archive.referrers:
            if top(r.manifest.digest, r.index):
                tags = canonical_tags(r.tags, bare=True)
                tops.append(_Top((1, tags[0] if tags else "", *self._key(r)), tags, r))
        return sorted(tops, key=lambda t: t.key)

    # Objects: each written once, after everything it names.

    def _object(self, obj: Object) -> Written:
        if id(obj) in self._done:
            return self._done[id(obj)]
        if id(obj) in self._busy:
            raise CannotCarry(f"{_digest(obj)}: manifests and indexes that name each other in a circle")
        self._busy.add(id(obj))
        if isinstance(obj, Index):
            written = self._index(obj)
        elif isinstance(obj, Referrer):
            written = self._referrer(obj)
        else:
            written = self._image(obj)
        self._busy.discard(id(obj))
        self._done[id(obj)] = written
        return written

    def _named(self, digest: Any) -> Object | None:
        """The object of this archive a digest names, if any."""
        if not isinstance(digest, str):
            return None
        return self._images.get(digest) or self._indexes.get(digest) or self._referrers.get(digest)

    def _image(self, im: Image) -> Written:
        label = self._labels.get(id(im), "image")
        source = None  # the manifest the image was read from, if any: what it is made of must be what it says
        if im.raw_manifest is not None and im.manifest is not None:
            source = self._verified(im.raw_manifest, im.manifest.digest, f"{label} manifest")
        self._blob(im.raw_config, im.config_digest, f"{label} config")
        layers, paths = [], []
        for la in im.layers:
            digest = la.digest if self._keep else la.diff_id
            if digest not in self._sizes:
                self._sizes[digest] = self._blobs.layer(blob_path(digest), la, f"{label} layer {la.position}",
                                                        keep_compression=self._keep)
            layers.append({"mediaType": OCI_LAYER[la.compression if self._keep else Compression.NONE],
                           "digest": digest, "size": self._sizes[digest]})
            paths.append(blob_path(digest))
        if self._keep and source is not None and im.manifest is not None:
            raw, media_type = source, im.manifest.media_type or OCI_MANIFEST
        else:
            doc: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": im.config_digest, "size": len(im.raw_config)},
                "layers": layers,
            }
            if self._v2 and source is not None:
                said = json.loads(source)
                if "annotations" in said:
                    doc["annotations"] = said["annotations"]
                if isinstance(said.get("subject"), dict):
                    doc["subject"] = self._restate(said["subject"])
            raw, media_type = canonical_json(doc), OCI_MANIFEST
        written = self._json(raw, media_type)
        self._docker.setdefault(written.digest, {"Config": blob_path(im.config_digest), "RepoTags": [],
                                                 "Layers": paths})
        return written

    def _referrer(self, r: Referrer) -> Written:
        what = f"{r.kind} {r.manifest.digest}"
        for role, blob in (("config", r.config), *((f"blob[{j}]", b) for j, b in enumerate(r.blobs))):
            if blob.descriptor.digest not in self._sizes:
                self._blobs.blob(blob_path(blob.descriptor.digest), blob, f"{what} {role}")
                self._sizes[blob.descriptor.digest] = blob.descriptor.size
        raw = self._verified(r.raw_manifest, r.manifest.digest, f"{what} manifest")
        doc = json.loads(raw)
        media_type = r.manifest.media_type or str(doc.get("mediaType") or OCI_MANIFEST)
        if not self._keep and isinstance(doc.get("subject"), dict):
            subject = self._restate(doc["subject"])
            if subject != doc["subject"]:
                raw = canonical_json({**doc, "subject": subject})
        return self._json(raw, media_type)

    def _index(self, ix: Index) -> Written:
        raw = self._verified(ix.raw, ix.descriptor.digest, f"index {ix.descriptor.digest}")
        doc = json.loads(raw)
        children = sorted(_children(doc), key=self._child_key)
        for child in children:
            if (obj := self._named(child.get("digest"))) is not None:
                self._object(obj)
        if self._keep:
            return self._json(raw, ix.descriptor.media_type or str(doc.get("mediaType") or OCI_INDEX))
        doc["mediaType"] = OCI_INDEX
        doc["manifests"] = [self._restate(c) for c in children]
        if isinstance(doc.get("subject"), dict):
            doc["subject"] = self._restate(doc["subject"])
        return self._json(canonical_json(doc), OCI_INDEX)

    def _restate(self, desc: dict[str, Any]) -> dict[str, Any]:
        """A descriptor naming what its object became: digest, size and media type, and the image an
        attestation's annotation names; every other field as it was."""
        out = dict(desc)
        named = self._named(desc.get("digest"))
        if named is not None:
            written = self._object(named)
            if written.digest != desc.get("digest"):
                out = {k: v for k, v in desc.items() if k not in RESTATED} | written.descriptor()
        annotations = desc.get("annotations")
        if isinstance(annotations, dict) and (attested := self._named(annotations.get(REFERENCE_DIGEST))):
            out["annotations"] = {**annotations, REFERENCE_DIGEST: self._object(attested).digest}
        return out

    # Order: by what an object is, the same whatever its encoding.

    def _child_key(self, desc: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key of what a descriptor names, then what it says of it besides its bytes (platform,
        annotations other than the attested digest), then its digest."""
        said = {k: v for k, v in desc.items() if k not in RESTATED}
        if isinstance(said.get("annotations"), dict):
            said["annotations"] = {k: v for k, v in said["annotations"].items() if k != REFERENCE_DIGEST}
        obj = self._named(desc.get("digest"))
        return (self._key(obj) if obj is not None else (9,)), canonical_json(said).decode(), str(desc.get("digest"))

    def _key(self, obj: Object) -> tuple[Any, ...]:
        """Images by platform and image ID, then indexes, attestations by the image they attest, artifacts
        by type; configs and blobs, which no rewriting changes, tell the rest apart."""
        if isinstance(obj, Image):
            return 0, str(obj.platform or ""), obj.config_digest
        if isinstance(obj, Index):
            return 1, self._index_identity(obj)
        content = (obj.config.descriptor.digest, *(b.descriptor.digest for b in obj.blobs))
        if obj.kind is ReferrerKind.ATTESTATION:
            attested = self._named(obj.subject)
            about = self._key(attested)[1:] if isinstance(attested, Image) else ("", str(obj.subject))
            return (2, *about, *content)
        return 3, obj.artifact_type, *content

    def _index_identity(self, ix: Index) -> str:
        """What an index holds, as the sorted keys of its children: no digest that rewriting changes."""
        if id(ix) not in self._identities:
            if id(ix) in self._keying:
                raise CannotCarry(f"{ix.descriptor.digest}: indexes that name each other in a circle")
            self._keying.add(id(ix))
            keys = sorted(json.dumps(self._child_key(d)[:2]) for d in _children(json.loads(ix.raw)))
            self._keying.discard(id(ix))
            self._identities[id(ix)] = sha256_digest(canonical_json(keys))
        return self._identities[id(ix)]

    # Blobs.

    def _blob(self, raw: bytes, digest: str, what: str) -> None:
        """A small blob held in memory (a config), checked against the digest it is written under."""
        if digest not in self._sizes:
            self._tar.file(blob_path(digest), self._verified(raw, digest, what))
            self._sizes[digest] = len(raw)

    def _json(self, raw: bytes, media_type: str) -> Written:
        digest = sha256_digest(raw)
        if digest not in self._sizes:
            self._tar.file(blob_path(digest), raw)
            self._sizes[digest] = len(raw)
        return Written(media_type, digest, len(raw))

    @staticmethod
    def _verified(raw: bytes, digest: str, what: str) -> bytes:
        if (actual := sha256_digest(raw)) != digest:
            raise DigestMismatch(what, digest, actual)
        return raw


def _children(doc: Any) -> list[dict[str, Any]]:
    """An index's descriptors (the reader has checked that each is one)."""
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    return [c for c in manifests or [] if isinstance(c, dict)]


def _digest(obj: Object) -> str:
    if isinstance(obj, Index):
        return obj.descriptor.digest
    if isinstance(obj, Referrer):
        return obj.manifest.digest
    return obj.manifest.digest if obj.manifest else obj.config_digest


def _descriptors(written: Written, tags: list[str], *, bare: bool) -> list[dict[str, Any]]:
    """index.json's descriptors of one object: one per tag, or one unannotated when it has none."""
    if not tags:
        return [written.descriptor()]
    out = []
    for tag in tags:
        if bare and not is_name(tag):
            annotations = {REF_ANNOTATION: tag}
        else:
            parsed = parse_tagged(tag)
            assert parsed is not None  # canonical_tags kept only tags that parse
            annotations = {NAME_ANNOTATION: parsed.full, REF_ANNOTATION: parsed.tag}
        out.append({**written.descriptor(), "annotations": annotations})
    return out
