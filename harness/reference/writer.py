"""The canonical reference archive: one byte sequence per image, whatever engine it came through.

Canonical form, version 1 (the README quotes this docstring)
-------------------------------------------------------------

Container
  A POSIX ustar tar; no PAX or GNU extension headers (a number that does not
  fit its octal field, a blob of 8 GiB or more, is written in base-256 as GNU
  tar and Go do).  The archive ends with two 512-byte zero blocks and no
  further record padding.

Headers
  mtime = the epoch: ``SOURCE_DATE_EPOCH`` when set, else 0 (an explicit
  ``epoch`` argument wins); uid = gid = 0; uname = gname = ""; devmajor =
  devminor = 0; mode 0644 for files, 0755 for directories (names end in
  ``/``), 0777 for symlinks; magic ``ustar\\0`` version ``00``.

Entry order
  1. a directory entry for every parent directory of every file, sorted by name;
  2. per image, images sorted by (first RepoTag in sorted order, or "" when
     untagged; config digest): the config blob, the layer blobs in layer order,
     the manifest blob (OCI layouts) — a blob appears once in the archive, at
     its first use;
  3. the metadata: ``index.json``, ``manifest.json``, ``oci-layout`` (layout
     ``docker``); ``index.json``, ``oci-layout`` (``oci``); ``manifest.json``,
     ``repositories`` (``legacy``).

Content
  Layers are stored uncompressed: each blob is exactly the uncompressed layer
  tar, so its digest is the diff_id and the config (kept byte for byte) keeps
  the image ID.  Layer media type ``application/vnd.oci.image.layer.v1.tar``,
  config ``application/vnd.oci.image.config.v1+json``, manifest
  ``application/vnd.oci.image.manifest.v1+json`` with no annotations.  With
  ``keep_compression`` the blobs are copied as stored and the original
  manifest bytes are kept (generated, with ``+gzip``/``+zstd`` layer types,
  when the source had none), so manifest digests are preserved.
  Generated JSON is ``json.dumps(value, sort_keys=True, separators=(",", ":"))``
  (ASCII; other characters as ``\\u`` escapes), with no trailing newline.
  Tags are sorted by their familiar form (``x:tag``), without duplicates;
  ``manifest.json`` RepoTags name them in full (``docker.io/library/x:tag``),
  as podman writes them: Docker shortens them on load, and podman would file
  short names of a multi-image archive under ``localhost/``.

Layouts
  ``docker``: ``blobs/sha256/<hex>``, ``oci-layout`` (``{"imageLayoutVersion":"1.0.0"}``),
  ``index.json`` with one manifest descriptor per RepoTag, annotated
  ``io.containerd.image.name`` (full name, ``docker.io/library/x:tag``) and
  ``org.opencontainers.image.ref.name`` (the tag), or one unannotated
  descriptor when untagged; ``manifest.json`` (``Config``, ``Layers`` as
  ``blobs/sha256/<hex>`` paths, ``RepoTags``).  Docker 20.10 reads only
  manifest.json; Docker >= 25 and podman read either.
  ``oci``: the same without ``manifest.json`` (graph-driver Docker cannot
  load it; podman 4 loads single-image OCI archives only).
  ``legacy``: Docker <= 24's layout: ``<config-hex>.json``; per layer
  ``<v1-id>/VERSION`` (``1.0``), ``<v1-id>/json``, ``<v1-id>/layer.tar``, with
  v1 IDs and ``json`` computed as moby 24 does (`harness.reference.legacy`);
  a layer already written under another v1 ID is a symlink
  ``../<first-id>/layer.tar``; ``manifest.json`` (``Config``, ``Layers``,
  ``RepoTags``) and ``repositories`` (``{"repo": {"tag": "<top v1 id>"}}``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.archive.refnames import parse_tagged
from harness.errors import DigestMismatch, HarnessError, UsageError
from harness.image import Archive, Compression, Image, Layer
from harness.reference.legacy import legacy_layers
from harness.reference.tarwriter import CanonicalTar
from harness.tar.hashing import sha256_digest

Layout = Literal["docker", "oci", "legacy"]
LAYOUTS: tuple[Layout, ...] = ("docker", "oci", "legacy")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}
OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")


def resolve_epoch(epoch: int | None) -> int:
    """The explicit epoch, else ``SOURCE_DATE_EPOCH``, else 0."""
    if epoch is not None:
        return epoch
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds") from None


def blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


@dataclass
class _Planned:
    """One image to write: the source image, its canonical tags, and what writing it produced."""

    image: Image
    tags: list[str]
    layer_paths: list[str] = field(default_factory=list)
    layer_descs: list[dict[str, Any]] = field(default_factory=list)
    manifest: bytes = b""
    manifest_type: str = OCI_MANIFEST


def write_reference(archive: Archive, out: str | os.PathLike[str], *, layout: Layout = "docker",
                    keep_compression: bool = False, epoch: int | None = None) -> None:
    """Write the canonical archive of `archive`'s images to `out` (see the module docstring).

    Writes to ``out + ".partial"`` (created anew: an existing file of that
    name is never overwritten) and renames at the end; on any error (a layer
    whose content does not hash to its diff_id raises `DigestMismatch`, a file
    that cannot be written `HarnessError`) the partial file is removed and
    nothing is left at `out`.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if keep_compression and layout == "legacy":
        raise UsageError("--keep-compression needs an OCI layout: the legacy layout stores layer.tar uncompressed")
    plan = _plan(archive, keep_compression)
    out = os.fspath(out)
    partial = out + ".partial"
    created = False
    try:
        with open(partial, "xb") as f:
            created = True
            tar = CanonicalTar(f, resolve_epoch(epoch))
            if layout == "legacy":
                _write_legacy(tar, plan)
            else:
                _write_oci(tar, plan, keep_compression=keep_compression, with_manifest_json=layout == "docker")
            tar.close()
        os.replace(partial, out)
    except BaseException as e:
        if created and os.path.exists(partial):
            os.remove(partial)
        if isinstance(e, OSError):
            raise HarnessError(f"cannot write {e.filename2 or e.filename or out}: {e.strerror or e}") from e
        raise


def _plan(archive: Archive, keep_compression: bool) -> list[_Planned]:
    """Images in canonical order, merged when they are the same image (same config, and same blobs if kept)."""
    merged: dict[tuple[str, ...], _Planned] = {}
    for im in archive.images:
        key = (im.config_digest, *(la.digest for la in im.layers)) if keep_compression else (im.config_digest,)
        tags = [p.familiar for p in map(parse_tagged, im.repo_tags) if p is not None]
        if key in merged:
            merged[key].tags.extend(tags)
        else:
            merged[key] = _Planned(im, tags)
    for p in merged.values():
        p.tags = sorted(set(p.tags))
    return sorted(merged.values(), key=lambda p: (p.tags[0] if p.tags else "", p.image.config_digest))


def _copy_layer(tar: CanonicalTar, name: str, layer: Layer, *, keep_compression: bool) -> tuple[str, int]:
    """Write one layer blob (as stored, or uncompressed) and check it against the digest that names it."""
    known = layer.size if keep_compression or layer.compression is Compression.NONE else None
    expected, what = ((layer.digest, f"layer {layer.position} blob") if keep_compression
                      else (layer.diff_id, f"layer {layer.position} (uncompressed)"))
    with layer.compressed() if keep_compression else layer.uncompressed() as src:
        digest, size = tar.stream(name, src, known)
    if digest != expected:
        raise DigestMismatch(what, expected, digest)
    if known is not None and size != known:
        raise DigestMismatch(what, f"{known} bytes", f"{size} bytes")
    return digest, size


def _write_oci(tar: CanonicalTar, plan: list[_Planned], *, keep_compression: bool, with_manifest_json: bool) -> None:
    tar.directory("blobs")
    tar.directory("blobs/sha256")
    written: set[str] = set()

    def blob(digest: str, data: bytes) -> None:
        if digest not in written:
            written.add(digest)
            tar.file(blob_path(digest), data)

    for p in plan:
        im = p.image
        blob(im.config_digest, im.raw_config)
        for la in im.layers:
            digest = la.digest if keep_compression else la.diff_id
            if digest not in written:
                written.add(digest)
                _, size = _copy_layer(tar, blob_path(digest), la, keep_compression=keep_compression)
            else:
                size = la.size if keep_compression else _written_size(plan, digest)
            media_type = OCI_LAYER[la.compression if keep_compression else Compression.NONE]
            p.layer_descs.append({"mediaType": media_type, "digest": digest, "size": size})
            p.layer_paths.append(blob_path(digest))
        if keep_compression and im.raw_manifest is not None and im.manifest is not None:
            p.manifest, p.manifest_type = im.raw_manifest, im.manifest.media_type or OCI_MANIFEST
        else:
            p.manifest = canonical_json({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": im.config_digest, "size": len(im.raw_config)},
                "layers": p.layer_descs,
            })
        blob(sha256_digest(p.manifest), p.manifest)

    tar.file("index.json", canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                           "manifests": [d for p in plan for d in _index_descriptors(p)]}))
    if with_manifest_json:
        tar.file("manifest.json", canonical_json([
            {"Config": blob_path(p.image.config_digest), "RepoTags": _full_names(p.tags), "Layers": p.layer_paths}
            for p in plan]))
    tar.file("oci-layout", OCI_LAYOUT_FILE)


def _written_size(plan: list[_Planned], digest: str) -> int:
    """Size of an uncompressed layer blob written earlier in this archive."""
    return next(d["size"] for p in plan for d in p.layer_descs if d["digest"] == digest)


def _full_names(tags: list[str]) -> list[str]:
    return [parsed.full for parsed in map(parse_tagged, tags) if parsed is not None]


def _index_descriptors(p: _Planned) -> list[dict[str, Any]]:
    base = {"mediaType": p.manifest_type, "digest": sha256_digest(p.manifest), "size": len(p.manifest)}
    if not p.tags:
        return [base]
    out = []
    for tag in p.tags:
        parsed = parse_tagged(tag)
        assert parsed is not None  # tags were filtered through parse_tagged
        out.append({**base, "annotations": {"io.containerd.image.name": parsed.full,
                                            "org.opencontainers.image.ref.name": parsed.tag}})
    return out


def _write_legacy(tar: CanonicalTar, plan: list[_Planned]) -> None:
    if any(not p.image.layers for p in plan):
        raise UsageError("the legacy layout cannot hold an image without layers (Docker <= 24 refuses it too)")
    per_image = [legacy_layers(p.image.config, [la.diff_id for la in p.image.layers]) for p in plan]
    for v1 in sorted({la.v1_id for layers in per_image for la in layers}):
        tar.directory(v1)
    done: set[str] = set()
    first_dir: dict[str, str] = {}  # diff_id → v1 id whose layer.tar holds it
    repositories: dict[str, dict[str, str]] = {}
    manifest = []
    for p, layers in zip(plan, per_image):
        hex_id = p.image.config_digest.split(":", 1)[1]
        tar.file(f"{hex_id}.json", p.image.raw_config)
        for la, src in zip(layers, p.image.layers):
            if la.v1_id in done:
                continue
            done.add(la.v1_id)
            tar.file(f"{la.v1_id}/VERSION", b"1.0")
            tar.file(f"{la.v1_id}/json", la.json)
            if la.diff_id in first_dir:
                tar.symlink(f"{la.v1_id}/layer.tar", f"../{first_dir[la.diff_id]}/layer.tar")
            else:
                first_dir[la.diff_id] = la.v1_id
                _copy_layer(tar, f"{la.v1_id}/layer.tar", src, keep_compression=False)
        for tag in p.tags:
            parsed = parse_tagged(tag)
            assert parsed is not None
            repositories.setdefault(parsed.familiar_repo, {})[parsed.tag] = layers[-1].v1_id
        manifest.append({"Config": f"{hex_id}.json", "RepoTags": _full_names(p.tags),
                         "Layers": [f"{la.v1_id}/layer.tar" for la in layers]})
    tar.file("manifest.json", canonical_json(manifest))
    if repositories:
        tar.file("repositories", canonical_json(repositories))

