"""Images and archives built straight into the image model, for differ tests.

`image()` makes a config, an OCI manifest and tags over `MemLayer`s; `archive()`
lays images out as Docker >= 25 (`docker-oci`), plain `oci` or `docker-legacy`
would, with the entries, index.json, manifest.json and repositories a reader
would report. Building the same images twice gives equal archives; tests then
change one thing (`retouch` a header, reorder entries, rebuild a layer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Iterable

from tests.memlayer import MemLayer, sha256

from harness.findings import Finding
from harness.image import Archive, ArchiveFormat, Descriptor, Entry, EntryType, Image, Layer, TarHeader

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def image(
    layers: Iterable[MemLayer],
    *,
    tags: tuple[str, ...] = ("example/app:1",),
    env: tuple[str, ...] = ("PATH=/bin",),
    created: str = "2024-01-01T00:00:00Z",
    history: list[dict[str, Any]] | None = None,
    manifest_annotations: dict[str, str] | None = None,
) -> Image:
    layers = tuple(dataclasses.replace(lay, position=k) for k, lay in enumerate(layers))
    config = {
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Env": list(env), "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
        "history": history if history is not None else [
            {"created": created, "created_by": f"layer {k}"} for k in range(len(layers))
        ],
    }
    raw_config = dumps(config)
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(raw_config), "size": len(raw_config)},
        "layers": [{"mediaType": lay.media_type, "digest": lay.digest, "size": lay.size} for lay in layers],
    }
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    raw_manifest = dumps(manifest)
    annotations = {}
    if tags:
        annotations = {"io.containerd.image.name": "docker.io/" + tags[0],
                       "org.opencontainers.image.ref.name": tags[0].rpartition(":")[2]}
    return Image(
        config_digest=sha256(raw_config), raw_config=raw_config, config=config, repo_tags=tags, layers=layers,
        manifest=Descriptor(OCI_MANIFEST, sha256(raw_manifest), len(raw_manifest), annotations),
        raw_manifest=raw_manifest,
    )


def _entry(position: int, name: str, data: bytes | None, mtime: float) -> Entry:
    kind = EntryType.DIR if data is None else EntryType.FILE
    header = TarHeader(name, kind, 0o755 if data is None else 0o644, 0, 0, "", "", mtime, len(data or b""))
    return Entry(position, header, sha256(data) if data is not None else None)


def _mem(layer: Layer) -> MemLayer:
    assert isinstance(layer, MemLayer)
    return layer


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


Layout = tuple[dict[str, "bytes | None"], tuple[Image, ...], dict[str, Any]]
"""Entry name → bytes (None: a directory), the images with their entry names, the parsed documents."""


def _docker_oci(images: tuple[Image, ...], fmt: ArchiveFormat) -> Layout:
    files: dict[str, bytes | None] = {"blobs/": None, "blobs/sha256/": None}
    placed = []
    for im in images:
        layers = tuple(
            dataclasses.replace(_mem(lay), entry_name=f"blobs/sha256/{_hex(lay.digest)}") for lay in im.layers
        )
        placed.append(dataclasses.replace(im, layers=layers, config_entry=f"blobs/sha256/{_hex(im.config_digest)}"))
        files[placed[-1].config_entry] = im.raw_config
        files.update((lay.entry_name, lay.blob) for lay in layers)
        assert im.manifest and im.raw_manifest
        files[f"blobs/sha256/{_hex(im.manifest.digest)}"] = im.raw_manifest
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": im.manifest.media_type, "digest": im.manifest.digest, "size": im.manifest.size,
         **({"annotations": dict(im.manifest.annotations)} if im.manifest.annotations else {})}
        for im in images if im.manifest
    ]}
    files["index.json"] = dumps(index)
    docs: dict[str, Any] = {"index": index}
    if fmt is ArchiveFormat.DOCKER_OCI:
        docs["manifest_json"] = tuple(
            {"Config": im.config_entry, "RepoTags": list(im.repo_tags), "Layers": [lay.entry_name for lay in im.layers]}
            for im in placed
        )
        files["manifest.json"] = dumps(list(docs["manifest_json"]))
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    if fmt is ArchiveFormat.DOCKER_OCI:
        docs["repositories"] = _repositories(placed, lambda im: _hex(im.config_digest))
        files["repositories"] = dumps(docs["repositories"])
    return files, tuple(placed), docs


def _repositories(images: Iterable[Image], top: Any) -> dict[str, dict[str, str]]:
    repos: dict[str, dict[str, str]] = {}
    for im in images:
        for tag in im.repo_tags:
            repo, _, name = tag.rpartition(":")
            repos.setdefault(repo, {})[name] = top(im)
    return repos


def _legacy(images: tuple[Image, ...]) -> Layout:
    files: dict[str, bytes | None] = {}
    placed = []
    tops = {}
    for im in images:
        parent, layers = "", []
        for k, lay in enumerate(map(_mem, im.layers)):
            salt = im.raw_config if k == len(im.layers) - 1 else im.config["created"].encode()
            v1 = hashlib.sha256(parent.encode() + lay.diff_id.encode() + salt).hexdigest()
            v1json = {"id": v1, **({"parent": parent} if parent else {}), "created": im.config["created"]}
            files.update({f"{v1}/": None, f"{v1}/VERSION": b"1.0", f"{v1}/json": dumps(v1json),
                          f"{v1}/layer.tar": lay.tar})
            layers.append(dataclasses.replace(lay, entry_name=f"{v1}/layer.tar", media=DOCKER_LAYER))
            parent = v1
        placed.append(dataclasses.replace(im, layers=tuple(layers), config_entry=f"{_hex(im.config_digest)}.json",
                                          manifest=None, raw_manifest=None))
        files[placed[-1].config_entry] = im.raw_config
        tops[im.config_digest] = parent
    manifest_json = tuple(
        {"Config": im.config_entry, "RepoTags": list(im.repo_tags), "Layers": [lay.entry_name for lay in im.layers]}
        for im in placed
    )
    files["manifest.json"] = dumps(list(manifest_json))
    repositories = _repositories(placed, lambda im: tops[im.config_digest])
    files["repositories"] = dumps(repositories)
    return files, tuple(placed), {"manifest_json": manifest_json, "repositories": repositories}


def archive(
    *images: Image,
    fmt: ArchiveFormat = ArchiveFormat.DOCKER_OCI,
    source: str = "a.tar",
    mtime: float = 0,
    problems: tuple[Finding, ...] = (),
) -> Archive:
    """The archive a reader would report for these images saved in this format."""
    files, placed, docs = _legacy(images) if fmt is ArchiveFormat.DOCKER_LEGACY else _docker_oci(images, fmt)
    entries = tuple(_entry(k, name, data, mtime) for k, (name, data) in enumerate(files.items()))
    return Archive(source=source, format=fmt, entries=entries, images=placed, problems=problems, **docs)


def retouch(archive: Archive, name: str, **fields: Any) -> Archive:
    """The archive with one entry's header fields changed."""
    entries = tuple(
        dataclasses.replace(e, header=dataclasses.replace(e.header, **fields)) if e.header.name == name else e
        for e in archive.entries
    )
    assert entries != archive.entries, f"no entry {name}"
    return dataclasses.replace(archive, entries=entries)


def reorder(archive: Archive, names: list[str]) -> Archive:
    """The archive with these entries moved to the end, in this order."""
    moved = [e for n in names for e in archive.entries if e.header.name == n]
    rest = [e for e in archive.entries if e.header.name not in names]
    return dataclasses.replace(archive, entries=tuple(
        dataclasses.replace(e, position=k) for k, e in enumerate(rest + moved)
    ))
