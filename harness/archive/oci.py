"""What an OCI layout's ``index.json`` reaches: indexes, platform images, attestations and artifacts.

Descriptors are followed by media type.  An index (nested indexes too) is
kept as an `Index` and its children are followed; an image manifest becomes
an `Image` keyed by the platform its index gives; a manifest whose config is
not an image config is an artifact, and one that BuildKit marks as an
attestation (``vnd.docker.reference.type: attestation-manifest``, or whose
layers are all in-toto statements) is linked to the image it attests.  Their
blobs are checked by digest and size but never read as layer tars.  A media
type we do not know is listed (`Unfollowed`) and not followed.

A manifest that a nested index names but the archive does not carry is a
platform that was not saved (Docker's containerd store saves only what it
has): listed as not followed.  A blob that a followed manifest needs and the
archive lacks is a `missing` problem, and everything present is still read.

A descriptor is followed once per set of tags (indexes naming one child many
times would otherwise fan out exponentially with the nesting), and at most
`MAX_VISITS` times in all.  Descriptor sizes are checked against the blobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.archive.jsonsafe import expect
from harness.archive.layers import MissingLayer
from harness.archive.read_context import ReadContext, check_digest_string
from harness.archive.refnames import familiar
from harness.archive.tarindex import IndexedEntry
from harness.errors import MalformedArchive
from harness.image import (
    Blob, Descriptor, Image, Index, Layer, Platform, Referrer, ReferrerKind, Unfollowed,
)

INDEX_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
})
MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})
CONFIG_TYPES = frozenset({
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
})
LAYER_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})
"""What a layer of a runnable image may be; a manifest with other blobs (cosign signatures) is an artifact."""
IN_TOTO = "application/vnd.in-toto+json"
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_NESTING = 8
MAX_VISITS = 100_000


@dataclass(frozen=True)
class OciContents:
    """Everything `read_oci` found, in the order index.json reaches it."""

    images: list[Image]
    indexes: list[Index]
    referrers: list[Referrer]
    unfollowed: list[Unfollowed]
    reached: set[str]  # entry names of every blob followed (for what nothing references)


@dataclass
class _Manifest:
    descriptor: Descriptor
    raw: bytes
    doc: Mapping[str, Any]
    entry: str
    parent: str | None
    tags: list[str] = field(default_factory=list)


@dataclass
class _Walk:
    ctx: ReadContext
    manifests: dict[str, _Manifest] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    unfollowed: list[Unfollowed] = field(default_factory=list)
    seen: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)


def descriptor(value: Any, what: str) -> Descriptor:
    """A type-checked OCI descriptor."""
    expect(value, dict, what)
    size = expect(value.get("size"), int, f"{what}.size")
    annotations = expect(value.get("annotations") or {}, dict, f"{what}.annotations")
    platform = value.get("platform")
    return Descriptor(
        media_type=expect(value.get("mediaType", ""), str, f"{what}.mediaType"),
        digest=check_digest_string(value.get("digest"), f"{what}.digest"),
        size=size,
        annotations={str(k): str(v) for k, v in annotations.items()},
        platform=expect(platform, dict, f"{what}.platform") if platform is not None else None,
        artifact_type=expect(value.get("artifactType", ""), str, f"{what}.artifactType"),
    )


def tags_from(annotations: Mapping[str, str]) -> list[str]:
    """The tag an index descriptor carries, in familiar form when it is a full name."""
    name = annotations.get(NAME_ANNOTATION)
    if name:
        return [familiar(name)]
    ref = annotations.get(REF_ANNOTATION)
    if ref:
        return [familiar(ref) if ":" in ref or "/" in ref else ref]
    return []


def blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/", 1)


def read_oci(ctx: ReadContext, index: Any, start: int = 0) -> OciContents:
    """Everything reachable from ``index.json``; image numbers start at `start`."""
    expect(index, dict, "index.json")
    walk = _Walk(ctx)
    for i, d in enumerate(expect(index.get("manifests") or [], list, "index.json.manifests")):
        where = f"archive:index.json:$.manifests[{i}]"
        desc = descriptor(d, where)
        _visit(walk, desc, where, tags_from(desc.annotations), parent=None, depth=0)
    images: list[Image] = []
    referrers: list[Referrer] = []
    for m in walk.manifests.values():
        kind = _kind(m)
        if kind is None:
            images.append(_image(ctx, m, start + len(images), walk.reached))
        else:
            referrers.append(_referrer(ctx, m, kind, walk.reached))
    return OciContents(images, list(walk.indexes.values()), referrers, walk.unfollowed, walk.reached)


def _visit(walk: _Walk, desc: Descriptor, where: str, tags: list[str], *, parent: str | None, depth: int) -> None:
    ctx = walk.ctx
    if depth > MAX_NESTING:
        raise MalformedArchive(f"{where}: indexes nested deeper than {MAX_NESTING}")
    known = desc.media_type in INDEX_TYPES or desc.media_type in MANIFEST_TYPES or not desc.media_type
    e = ctx.blob(desc.digest, where)
    if not known:
        if e is not None:  # named, so not left over; checked by digest (every blob is) and size
            walk.reached.add(e.name)
            ctx.mismatch(f"{where}.size", desc.size, e.size, "descriptor size vs blob")
        walk.unfollowed.append(Unfollowed(where, desc, f"media type {desc.media_type} is neither an index nor "
                                                       "a manifest: listed, not followed"))
        return
    if e is None:
        if parent is not None:
            walk.unfollowed.append(Unfollowed(where, desc, "not in the archive (a platform or manifest that was "
                                                           "not saved)"))
        else:
            ctx.missing(where, desc.digest, "the manifest index.json names")
        return
    visit = (desc.digest, desc.media_type, tuple(tags))
    if visit in walk.seen:
        return  # followed already, to the same effect
    if len(walk.seen) >= MAX_VISITS:
        raise MalformedArchive(f"{where}: more than {MAX_VISITS} descriptors to follow")
    walk.seen.add(visit)
    walk.reached.add(e.name)
    ctx.mismatch(f"{where}.size", desc.size, e.size, "descriptor size vs blob")
    raw, doc = ctx.json(e, f"blob {desc.digest}")
    expect(doc, dict, f"blob {desc.digest}")
    media_type = desc.media_type or str(doc.get("mediaType", ""))
    if media_type in INDEX_TYPES or (not media_type and "manifests" in doc):
        _index(walk, desc, e, raw, doc, tags, parent, depth)
    elif media_type in MANIFEST_TYPES or (not media_type and "config" in doc):
        if desc.digest in walk.manifests:
            held = walk.manifests[desc.digest]
            held.tags.extend(t for t in tags if t not in held.tags)
        else:
            walk.manifests[desc.digest] = _Manifest(desc, raw, doc, e.name, parent, list(dict.fromkeys(tags)))
    else:
        walk.unfollowed.append(Unfollowed(where, desc, f"media type {media_type or '(none)'} is neither an index "
                                                       "nor a manifest: listed, not followed"))


def _index(walk: _Walk, desc: Descriptor, e: IndexedEntry, raw: bytes, doc: Mapping[str, Any], tags: list[str],
           parent: str | None, depth: int) -> None:
    children = [descriptor(child, f"archive:{e.name}:$.manifests[{j}]")
                for j, child in enumerate(expect(doc.get("manifests") or [], list, f"blob {desc.digest}: manifests"))]
    held = walk.indexes.get(desc.digest)
    merged = tuple(dict.fromkeys((held.tags if held else ()) + tuple(tags)))
    walk.indexes[desc.digest] = Index(desc, raw, tuple(children), merged, held.parent if held else parent, e.name)
    for j, child in enumerate(children):
        _visit(walk, child, f"archive:{e.name}:$.manifests[{j}]", tags, parent=desc.digest, depth=depth + 1)


def _kind(m: _Manifest) -> ReferrerKind | None:
    """None for an image; else what kind of non-image manifest this is."""
    found = m.doc.get("layers")
    layers: list[Any] = found if isinstance(found, list) else []
    in_toto = bool(layers) and all(isinstance(d, dict) and d.get("mediaType") == IN_TOTO for d in layers)
    if m.descriptor.annotations.get(REFERENCE_TYPE) == ATTESTATION_MANIFEST or in_toto:
        return ReferrerKind.ATTESTATION
    config = m.doc.get("config")
    tars = all(isinstance(d, dict) and d.get("mediaType") in LAYER_TYPES for d in layers)
    if isinstance(config, dict) and config.get("mediaType") in CONFIG_TYPES and tars and not m.doc.get("artifactType"):
        return None
    return ReferrerKind.ARTIFACT


def _platform(m: _Manifest, config: Mapping[str, Any]) -> Platform | None:
    return Platform.of(m.descriptor.platform) or Platform.of(config)


def _image(ctx: ReadContext, m: _Manifest, k: int, reached: set[str]) -> Image:
    config_desc = descriptor(m.doc.get("config"), f"archive:{m.entry}:$.config")
    config_entry = _present(ctx, config_desc, f"archive:{m.entry}:$.config", f"image[{k}].config", "config")
    docs = expect(m.doc.get("layers") or [], list, f"archive:{m.entry}:$.layers")
    raw_config: bytes = b""
    config: Mapping[str, Any] = {}
    diff_ids: tuple[str, ...] = tuple("" for _ in docs)
    if config_entry is not None:
        reached.add(config_entry.name)
        raw_config, config, diff_ids = ctx.config(config_entry, f"config {config_desc.digest}")
        if len(docs) != len(diff_ids):
            raise MalformedArchive(f"manifest {m.descriptor.digest}: {len(docs)} layers but the config "
                                   f"lists {len(diff_ids)} diff_ids")
    layers: list[Layer] = []
    for j, (d, diff_id) in enumerate(zip(docs, diff_ids)):
        where = f"archive:{m.entry}:$.layers[{j}]"
        layer_desc = descriptor(d, where)
        label = f"image[{k}].layer[{j}]"
        e = _present(ctx, layer_desc, where, label, "layer")
        if e is None:
            layers.append(MissingLayer(j, diff_id, layer_desc.digest, layer_desc.size, layer_desc.media_type,
                                       label=label))
            continue
        reached.add(e.name)
        layers.append(ctx.layer(e, position=j, diff_id=diff_id, media_type=layer_desc.media_type, where=label))
    return Image(
        config_digest=config_desc.digest,
        raw_config=raw_config,
        config=config,
        repo_tags=tuple(m.tags),
        layers=tuple(layers),
        manifest=m.descriptor,
        raw_manifest=m.raw,
        config_entry=config_entry.name if config_entry is not None else "",
        platform=_platform(m, config),
        index=m.parent,
        config_missing=config_entry is None,
    )


def _referrer(ctx: ReadContext, m: _Manifest, kind: ReferrerKind, reached: set[str]) -> Referrer:
    """An attestation or artifact: its blobs are checked by digest and size, never parsed."""
    def blob(value: Any, where: str, role: str) -> Blob:
        desc = descriptor(value, where)
        e = _present(ctx, desc, where, f"{kind}({m.descriptor.digest}).{role}", role)
        if e is None:
            return Blob(desc)
        reached.add(e.name)
        return Blob(desc, e.name, ctx.index.opener(e))

    config = blob(m.doc.get("config"), f"archive:{m.entry}:$.config", "config")
    docs = expect(m.doc.get("layers") or m.doc.get("blobs") or [], list, f"archive:{m.entry}:$.layers")
    blobs = tuple(blob(d, f"archive:{m.entry}:$.layers[{j}]", f"blob[{j}]") for j, d in enumerate(docs))
    subject = m.descriptor.annotations.get(REFERENCE_DIGEST)
    if subject is None and isinstance(m.doc.get("subject"), dict):
        subject = descriptor(m.doc["subject"], f"archive:{m.entry}:$.subject").digest
    artifact_type = m.doc.get("artifactType")
    manifest = m.descriptor
    if isinstance(artifact_type, str) and not manifest.artifact_type:
        manifest = Descriptor(manifest.media_type, manifest.digest, manifest.size, manifest.annotations,
                              manifest.platform, artifact_type)
    return Referrer(kind, manifest, m.raw, config, blobs, tuple(m.tags), subject, m.parent)


def _present(ctx: ReadContext, desc: Descriptor, where: str, label: str, role: str) -> IndexedEntry | None:
    """The entry holding a blob a manifest names, or None after recording it as `missing`."""
    e = ctx.blob(desc.digest, where)
    if e is None:
        ctx.missing(label, desc.digest, f"the {role} the manifest names ({where})")
        return None
    ctx.mismatch(f"{where}.size", desc.size, e.size, "descriptor size vs blob")
    return e
