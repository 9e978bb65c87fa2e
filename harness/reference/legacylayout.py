"""The ``legacy`` layout of the canonical form (version 1 only): Docker <= 24's save, from the images alone."""

from __future__ import annotations

from harness.archive.refnames import parse_tagged
from harness.errors import DigestMismatch, UsageError
from harness.image import Archive
from harness.reference.blobs import BlobWriter
from harness.reference.layout import canonical_json, full_names, image_label, plan_images
from harness.reference.legacy import legacy_layers
from harness.reference.tarwriter import CanonicalTar
from harness.tar.hashing import sha256_digest


def write_legacy(tar: CanonicalTar, blobs: BlobWriter, archive: Archive) -> None:
    plan = plan_images(archive.images, keep_compression=False, bare=False)
    labels = {id(im): image_label(k, im) for k, im in enumerate(archive.images)}
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
        image = p.image
        label = labels[id(image)]
        if (actual := sha256_digest(image.raw_config)) != image.config_digest:
            raise DigestMismatch(f"{label} config", image.config_digest, actual)
        hex_id = image.config_digest.split(":", 1)[1]
        tar.file(f"{hex_id}.json", image.raw_config)
        for la, src in zip(layers, image.layers):
            if la.v1_id in done:
                continue
            done.add(la.v1_id)
            tar.file(f"{la.v1_id}/VERSION", b"1.0")
            tar.file(f"{la.v1_id}/json", la.json)
            if la.diff_id in first_dir:
                tar.symlink(f"{la.v1_id}/layer.tar", f"../{first_dir[la.diff_id]}/layer.tar")
            else:
                first_dir[la.diff_id] = la.v1_id
                blobs.layer(f"{la.v1_id}/layer.tar", src, f"{label} layer {src.position}", keep_compression=False)
        for tag in p.tags:
            parsed = parse_tagged(tag)
            assert parsed is not None  # canonical_tags kept only tags that parse
            repositories.setdefault(parsed.familiar_repo, {})[parsed.tag] = layers[-1].v1_id
        manifest.append({"Config": f"{hex_id}.json", "RepoTags": full_names(p.tags),
                         "Layers": [f"{la.v1_id}/layer.tar" for la in layers]})
    tar.file("manifest.json", canonical_json(manifest))
    if repositories:
        tar.file("repositories", canonical_json(repositories))
