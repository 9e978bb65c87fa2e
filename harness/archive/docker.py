"""Images named by ``manifest.json``: Docker legacy saves, podman/skopeo docker-archives, go-containerregistry tarballs.

``manifest.json`` lists, per image, a config path, layer paths and RepoTags.
Paths are whatever the producer chose (``<id>/layer.tar`` symlinks,
``<diffID>.tar``, ``<hex>.tar.gz``, ``sha256:<hex>``, ``blobs/sha256/<hex>``);
where a name carries a digest, that digest is checked too.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Mapping

from harness.archive.jsonsafe import expect
from harness.archive.layers import IMPLIED_MEDIA_TYPES, MissingLayer
from harness.archive.read_context import ReadContext
from harness.archive.refnames import familiar
from harness.archive.tarindex import normalize
from harness.errors import MalformedArchive
from harness.image import Image, Layer, Platform

_HEX = r"([0-9a-f]{64})"
_BLOB_NAMED = re.compile(rf"^(?:sha256:{_HEX}|{_HEX}\.json|{_HEX}\.tar\.gz|{_HEX}\.tgz)$")
_BLOBS_PATH = re.compile(rf"^blobs/sha256/{_HEX}$")
_DIFF_NAMED = re.compile(rf"^{_HEX}\.tar$")
_LEGACY_LAYER = re.compile(r"^([^/]+)/layer\.tar$")


def read_manifest_json(ctx: ReadContext) -> list[Mapping[str, Any]] | None:
    """The parsed, type-checked ``manifest.json``, or None when the archive has none."""
    e = ctx.index.get("manifest.json")
    if e is None:
        return None
    _, items = ctx.json(ctx.resolve("manifest.json", "manifest.json"), "manifest.json")
    expect(items, list, "manifest.json")
    for i, item in enumerate(items):
        what = f"manifest.json[{i}]"
        expect(item, dict, what)
        expect(item.get("Config"), str, f"{what}.Config")
        for layer in expect(item.get("Layers") or [], list, f"{what}.Layers"):
            expect(layer, str, f"{what}.Layers[]")
        for tag in expect(item.get("RepoTags") or [], list, f"{what}.RepoTags"):
            expect(tag, str, f"{what}.RepoTags[]")
    return items


def is_legacy(ctx: ReadContext, items: list[Mapping[str, Any]]) -> bool:
    """Docker <= 24 layout: every layer is ``<id>/layer.tar`` beside an ``<id>/VERSION``."""
    paths = [p for item in items for p in item.get("Layers") or []]
    for p in paths:
        m = _LEGACY_LAYER.match(normalize(p))
        if not m or ctx.index.get(f"{m.group(1)}/VERSION") is None:
            return False
    return bool(paths)


def image_from_item(ctx: ReadContext, item: Mapping[str, Any], i: int, k: int) -> Image:
    """Image number `k` of the archive, from ``manifest.json`` item `i`; blobs it names that the archive
    lacks are `missing` problems (engines write such archives), and what is there is read."""
    what = f"manifest.json[{i}]"
    config_path = item["Config"]
    config_entry = ctx.find(config_path, f"{what}.Config")
    named = _named_digest(config_path)
    paths = list(item.get("Layers") or [])
    raw: bytes = b""
    config: Mapping[str, Any] = {}
    diff_ids: tuple[str, ...] = tuple("" for _ in paths)
    if config_entry is None:
        ctx.missing(f"image[{k}].config", digest_in_name(config_path) or config_path, f"the config {what} names")
    else:
        if named and named[0] == "blob":
            ctx.mismatch(f"archive:{config_entry.name}", named[1], config_entry.digest, "file name vs content")
        raw, config, diff_ids = ctx.config(config_entry, f"config {config_path}")
        if len(paths) != len(diff_ids):
            raise MalformedArchive(f"{what}: {len(paths)} layers but the config lists {len(diff_ids)} diff_ids")
    layers: list[Layer] = []
    for j, (path, diff_id) in enumerate(zip(paths, diff_ids)):
        label = f"image[{k}].layer[{j}]"
        e = ctx.find(path, f"{what}.Layers[{j}]")
        named = _named_digest(path)
        if e is None:
            digest = digest_in_name(path) or diff_id
            ctx.missing(label, digest or path, f"the layer {what} names ({path})")
            layers.append(MissingLayer(j, diff_id, digest, 0, "", label=label))
            continue
        layer = ctx.layer(e, position=j, diff_id=diff_id, media_type=IMPLIED_MEDIA_TYPES[e.compression], where=label)
        if named and named[0] == "blob":
            ctx.mismatch(f"archive:{path}", named[1], layer.digest, "file name vs content")
        elif named:
            ctx.check_inflated(f"archive:{path}", named[1], e, "file name vs content", context=label)
        layers.append(layer)
    return Image(
        config_digest=config_entry.digest if config_entry is not None else digest_in_name(config_path),
        raw_config=raw,
        config=config,
        repo_tags=tuple(familiar(t) for t in item.get("RepoTags") or ()),
        layers=tuple(layers),
        config_entry=config_entry.name if config_entry is not None else "",
        platform=Platform.of(config),
        config_missing=config_entry is None,
    )


def digest_in_name(path: str) -> str:
    """The digest a missing blob's path carries (``blobs/sha256/<hex>``, ``<hex>.json`` …), or ""."""
    m = _BLOBS_PATH.match(normalize(path))
    if m:
        return "sha256:" + m.group(1)
    named = _named_digest(path)
    return named[1] if named else ""


def _named_digest(path: str) -> tuple[str, str] | None:
    """("blob" | "diff", digest) when a file name carries a digest (``blobs/sha256/`` names are checked globally)."""
    base = posixpath.basename(path)
    m = _BLOB_NAMED.match(base)
    if m:
        return "blob", "sha256:" + next(g for g in m.groups() if g)
    m = _DIFF_NAMED.match(base)
    if m:
        return "diff", "sha256:" + m.group(1)
    return None
