"""Streaming readers for every image archive format, into the model of `harness.image`.

    read_archive(path)  →  Archive
      tarindex      one pass over the file: headers, sha256 of every entry, offsets
      read_context  blob lookup, bounded JSON, digest checks → Archive.problems
      oci           index.json → (nested indexes) → manifests → config + layers
      docker        manifest.json → config + layers (legacy, podman, skopeo, ggcr)

Formats (`ArchiveFormat`): ``oci-layout`` with ``manifest.json`` is a Docker >= 25
save (DOCKER_OCI); ``oci-layout`` alone a plain OCI layout (OCI);
``manifest.json`` whose layers are all ``<id>/layer.tar`` beside ``<id>/VERSION``
a Docker <= 24 save (DOCKER_LEGACY); any other ``manifest.json`` archive
(podman, skopeo, go-containerregistry) DOCKER_ARCHIVE.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Mapping

from harness.archive.docker import digest_in_name, image_from_item, is_legacy, read_manifest_json
from harness.archive.jsonsafe import MAX_JSON_BYTES, expect, load_json
from harness.archive.oci import OciContents, read_oci
from harness.archive.read_context import ReadContext
from harness.archive.refnames import familiar
from harness.archive.tarindex import IndexedEntry, build_index, normalize
from harness.errors import ArchiveError, MalformedArchive
from harness.image import Archive, ArchiveFormat, EntryType, Image, Problems, Unreferenced

__all__ = ["read_archive", "read_archives"]

METADATA_FILES = ("index.json", "manifest.json", "oci-layout", "repositories")
UNREFERENCED_JSON_BYTES = 64 << 10


def read_archive(path: str | os.PathLike[str], *, source: str | None = None, whole_digest: bool = False,
                 defer_checks: bool = False, defer_hashing: bool = False) -> Archive:
    """Read an image archive of any supported format; layer bytes stay on disk until asked for.

    Digest mismatches become findings in `Archive.problems`; an archive that
    cannot be read as images raises `MalformedArchive` with a one-line message.
    With `defer_checks`, compressed layers are checked against their diff_ids
    only when the problems are first looked at (which may raise the same
    errors then): a caller that reads layers in full first, as the differ
    does, inflates them once instead of twice.  With `defer_hashing`,
    uncompressed ``blobs/sha256/`` entries are not hashed (`tarindex`): their
    digests are the ones their names claim, for a caller that verifies every
    byte it uses (the reference writer); no other caller may use it.
    """
    path_str = os.fspath(path)
    try:
        return _read(path_str, source or path_str, whole_digest, defer_checks, defer_hashing)
    except MalformedArchive as e:
        if e.path is not None:
            raise
        raise MalformedArchive(e.message, path=path_str, hint=e.hint) from e
    except OSError as e:
        raise ArchiveError(f"cannot read: {e.strerror or e}", path=path_str) from e


def read_archives(*sources: tuple[str | os.PathLike[str], str | None], defer_checks: bool = False) -> list[Archive]:
    """Several archives (path, source) read side by side, one thread each: reading is mostly hashing,
    which runs without the GIL.  The first error, in argument order, is raised."""
    workers = min(len(sources), os.cpu_count() or 1)
    with ThreadPoolExecutor(max(workers, 1), thread_name_prefix="imgharness-read") as pool:
        futures = [pool.submit(read_archive, path, source=source, defer_checks=defer_checks)
                   for path, source in sources]
        return [f.result() for f in futures]


def _read(path: str, source: str, whole_digest: bool, defer_checks: bool, defer_hashing: bool) -> Archive:
    index = build_index(path, whole_digest=whole_digest, defer_hashing=defer_hashing)
    ctx = ReadContext(index)
    items = read_manifest_json(ctx)
    has_layout = index.get("oci-layout") is not None
    oci_index: Mapping[str, Any] | None = None
    if has_layout or (items is None and index.get("index.json") is not None):
        _, oci_index = ctx.json(ctx.resolve("index.json", "index.json"), "index.json")
    if items is None and oci_index is None:
        raise MalformedArchive("not an image archive: neither manifest.json nor index.json")

    contents = read_oci(ctx, oci_index) if oci_index is not None else OciContents([], [], [], [], set())
    images = contents.images
    if oci_index is not None:
        if items is not None:
            images = _merge_manifest_json(ctx, images, items)
        fmt = ArchiveFormat.DOCKER_OCI if items is not None else ArchiveFormat.OCI
    else:
        assert items is not None
        images = [image_from_item(ctx, item, i, i) for i, item in enumerate(items)]
        fmt = ArchiveFormat.DOCKER_LEGACY if is_legacy(ctx, items) else ArchiveFormat.DOCKER_ARCHIVE

    return Archive(
        source=source,
        format=fmt,
        entries=tuple(e.entry for e in index.entries),
        images=tuple(images),
        index=oci_index,
        manifest_json=tuple(items) if items is not None else None,
        repositories=_repositories(ctx),
        problems=Problems(settle=ctx.settle) if defer_checks else Problems(ctx.settle()),
        size=index.size,
        digest=index.whole_digest,
        indexes=tuple(contents.indexes),
        referrers=tuple(contents.referrers),
        unfollowed=tuple(contents.unfollowed),
        unreferenced=_unreferenced(ctx, contents.reached, items or []),
    )


def _merge_manifest_json(ctx: ReadContext, images: list[Image], items: list[Mapping[str, Any]]) -> list[Image]:
    """Give OCI-walked images the RepoTags of Docker's manifest.json, checking that both agree.

    An item whose config no walked image has becomes an image of its own.  Blobs missing from the
    archive are named by their paths here; the OCI walk has recorded them already.
    """
    images = list(images)
    tagged: set[int] = set()  # images whose tags come from manifest.json already
    for i, item in enumerate(items):
        config_digest = _digest_of(ctx, item["Config"], f"manifest.json[{i}].Config")
        layer_digests = [_digest_of(ctx, p, f"manifest.json[{i}].Layers[{j}]")
                         for j, p in enumerate(item.get("Layers") or [])]
        candidates = [k for k, im in enumerate(images) if im.config_digest == config_digest]
        if not candidates:
            images.append(image_from_item(ctx, item, i, len(images)))
            continue
        exact = [k for k in candidates if [la.digest for la in images[k].layers] == layer_digests]
        k = (exact or candidates)[0]
        if not exact:
            for j, layer in enumerate(images[k].layers):
                actual = layer_digests[j] if j < len(layer_digests) else None
                ctx.mismatch(f"archive:manifest.json[{i}].Layers[{j}]", layer.digest, actual,
                             "manifest.json layer vs OCI manifest")
        tags = tuple(familiar(t) for t in item.get("RepoTags") or ())
        if tags:
            before = images[k].repo_tags if k in tagged else ()
            images[k] = replace(images[k], repo_tags=tuple(dict.fromkeys(before + tags)))
            tagged.add(k)
    return images


def _digest_of(ctx: ReadContext, path: str, what: str) -> str:
    """The digest of the entry a path names, or the one its name carries when the archive lacks it."""
    e = ctx.find(path, what)
    return e.digest if e is not None else digest_in_name(path)


def _unreferenced(ctx: ReadContext, reached: set[str], items: list[Mapping[str, Any]]) -> tuple[Unreferenced, ...]:
    """Regular entries that neither index.json (through every manifest and index it reaches), nor
    manifest.json, nor a layer directory of the legacy layouts, names."""
    named = set(reached) | set(METADATA_FILES)
    dirs: set[str] = set()
    for item in items:
        for path in [item["Config"], *(item.get("Layers") or [])]:
            named.add(normalize(path))
            if (e := ctx.find(path, "manifest.json")) is not None:
                named.add(e.name)
            head, sep, _ = normalize(path).partition("/")
            if sep and head != "blobs":
                dirs.add(head)
    return tuple(Unreferenced(e.name, e.size, _looks_like(ctx, e)) for e in ctx.index.entries
                 if e.type is EntryType.FILE and e.name not in named and e.name.partition("/")[0] not in dirs)


def _looks_like(ctx: ReadContext, e: IndexedEntry) -> str:
    """What an unreferenced entry holds, as far as its first bytes tell."""
    if e.size > UNREFERENCED_JSON_BYTES or not e.head.lstrip()[:1] == b"{":
        return "data"
    try:
        value = load_json(ctx.index.read_bytes(e, UNREFERENCED_JSON_BYTES, e.name), e.name)
    except MalformedArchive:
        return "data"
    if isinstance(value, dict) and isinstance(value.get("id"), str) and "rootfs" not in value and (
            "container_config" in value or "config" in value):
        return f"legacy layer JSON (v1 id {value['id'][:12]}): Docker's graph-driver save writes it beside the OCI layout"
    return "JSON"


def _repositories(ctx: ReadContext) -> Mapping[str, Any] | None:
    e = ctx.index.get("repositories")
    if e is None:
        return None
    e = ctx.resolve("repositories", "repositories")
    value = load_json(ctx.index.read_bytes(e, MAX_JSON_BYTES, "repositories"), "repositories")
    return expect(value, dict, "repositories")
