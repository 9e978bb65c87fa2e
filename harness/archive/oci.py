"""Images reached from an OCI layout's ``index.json``, through nested indexes.

Every image manifest found is kept (multi-platform archives keep all present
platforms); a child manifest that a nested index names but the archive does
not carry is a platform that was not saved (Docker's containerd store saves
only what it has), so it is skipped.  A descriptor is followed once per set
of tags (indexes naming one child many times would otherwise fan out
exponentially with the nesting), and at most `MAX_VISITS` times in all.  Anything missing that an image needs is
an error.  Non-image manifests (BuildKit attestations, artifacts) are checked
and skipped.  Descriptor sizes are checked against the blobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from harness.archive.jsonsafe import expect
from harness.archive.read_context import ReadContext, check_digest_string
from harness.archive.refnames import familiar
from harness.archive.tarindex import IndexedEntry
from harness.errors import MalformedArchive
from harness.image import Descriptor, Image

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
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_NESTING = 8
MAX_VISITS = 100_000


@dataclass
class _Found:
    descriptor: Descriptor
    raw: bytes
    manifest: Mapping[str, Any]
    tags: list[str] = field(default_factory=list)


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


def read_oci(ctx: ReadContext, index: Any, start: int = 0) -> list[Image]:
    """Every image reachable from ``index.json``; image numbers start at `start`."""
    expect(index, dict, "index.json")
    found: dict[str, _Found] = {}
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for i, d in enumerate(expect(index.get("manifests") or [], list, "index.json.manifests")):
        where = f"archive:index.json:$.manifests[{i}]"
        desc = descriptor(d, where)
        _visit(ctx, desc, where, tags_from(desc.annotations), found, seen, depth=0, optional=False)
    return [_image(ctx, f, start + k) for k, f in enumerate(found.values())]


def _visit(ctx: ReadContext, desc: Descriptor, where: str, tags: list[str], found: dict[str, _Found],
           seen: set[tuple[str, str, tuple[str, ...]]], *, depth: int, optional: bool) -> None:
    if depth > MAX_NESTING:
        raise MalformedArchive(f"{where}: indexes nested deeper than {MAX_NESTING}")
    e = ctx.blob(desc.digest, where)
    if e is None:
        if optional:
            return
        raise MalformedArchive(f"{where}: blob {desc.digest} is missing from the archive")
    visit = (desc.digest, desc.media_type, tuple(tags))
    if visit in seen:
        return  # followed already, to the same effect
    if len(seen) >= MAX_VISITS:
        raise MalformedArchive(f"{where}: more than {MAX_VISITS} descriptors to follow")
    seen.add(visit)
    ctx.mismatch(f"{where}.size", desc.size, e.size, "descriptor size vs blob")
    raw, doc = ctx.json(e, f"blob {desc.digest}")
    expect(doc, dict, f"blob {desc.digest}")
    media_type = desc.media_type or str(doc.get("mediaType", ""))
    if media_type in INDEX_TYPES or (not media_type and "manifests" in doc):
        children = expect(doc.get("manifests") or [], list, f"blob {desc.digest}: manifests")
        for j, child in enumerate(children):
            child_where = f"archive:{e.name}:$.manifests[{j}]"
            _visit(ctx, descriptor(child, child_where), child_where, tags, found, seen, depth=depth + 1,
                   optional=True)
        return
    if media_type not in MANIFEST_TYPES and not (not media_type and "config" in doc):
        return
    config = descriptor(doc.get("config"), f"archive:{e.name}:$.config")
    if config.media_type not in CONFIG_TYPES:
        return  # an attestation or artifact, not an image
    if desc.digest in found:
        found[desc.digest].tags.extend(t for t in tags if t not in found[desc.digest].tags)
    else:
        found[desc.digest] = _Found(desc, raw, doc, list(dict.fromkeys(tags)))


def _image(ctx: ReadContext, f: _Found, k: int) -> Image:
    name = f"blobs/sha256/{f.descriptor.digest.split(':', 1)[1]}"
    config_desc = descriptor(f.manifest.get("config"), f"archive:{name}:$.config")
    config_entry = _required(ctx, config_desc, f"archive:{name}:$.config")
    raw_config, config, diff_ids = ctx.config(config_entry, f"config {config_desc.digest}")
    docs = expect(f.manifest.get("layers") or [], list, f"archive:{name}:$.layers")
    if len(docs) != len(diff_ids):
        raise MalformedArchive(f"manifest {f.descriptor.digest}: {len(docs)} layers but the config "
                               f"lists {len(diff_ids)} diff_ids")
    layers = []
    for j, (d, diff_id) in enumerate(zip(docs, diff_ids)):
        where = f"archive:{name}:$.layers[{j}]"
        layer_desc = descriptor(d, where)
        e = _required(ctx, layer_desc, where)
        layers.append(ctx.layer(e, position=j, diff_id=diff_id, media_type=layer_desc.media_type,
                                where=f"image[{k}].layer[{j}]"))
    return Image(
        config_digest=config_entry.digest,
        raw_config=raw_config,
        config=config,
        repo_tags=tuple(f.tags),
        layers=tuple(layers),
        manifest=f.descriptor,
        raw_manifest=f.raw,
        config_entry=config_entry.name,
    )


def _required(ctx: ReadContext, desc: Descriptor, where: str) -> IndexedEntry:
    e = ctx.blob(desc.digest, where)
    if e is None:
        raise MalformedArchive(f"{where}: blob {desc.digest} is missing from the archive")
    ctx.mismatch(f"{where}.size", desc.size, e.size, "descriptor size vs blob")
    return e
