"""Deterministic image archives from directories or layer-writing code: how the suites make test images.

Each layer source becomes one uncompressed layer (see `layertar`); the config
is generated (created = the epoch, one history entry per layer) and the
archive is written by the canonical writer, so a built image is already in
canonical form: the same inputs give the same bytes, and `reference` of a
built archive reproduces it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Mapping, Sequence, Union

from harness.errors import UsageError
from harness.image import Archive, ArchiveFormat, Compression, FileEntry, Image, Opener, Platform
from harness.reference.layertar import LayerWriter, directory_writer, measure, produce
from harness.reference.writer import Layout, canonical_json, resolve_epoch, write_reference
from harness.tar.hashing import sha256_digest
from harness.tar.listing import iter_layer_files

LayerSource = Union[str, "os.PathLike[str]", LayerWriter]
"""A directory (its tree is the layer) or a `LayerWriter` adding members to a tarfile."""

GOARCH = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


def host_platform() -> tuple[str, str | None]:
    """The host's GOARCH and variant, as engines name them."""
    machine = platform.machine()
    return GOARCH.get(machine.lower(), (machine.lower(), None))


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BuiltLayer:
    """A `harness.image.Layer` generated on demand from a layer source."""

    position: int
    diff_id: str
    size: int
    writer: LayerWriter = field(repr=False, compare=False)
    epoch: int = 0
    media_type: str = "application/vnd.oci.image.layer.v1.tar"
    compression: Compression = Compression.NONE
    entry_name: str = ""

    @property
    def digest(self) -> str:
        return self.diff_id

    def compressed(self) -> IO[bytes]:
        return produce(self.writer, self.epoch)

    def uncompressed(self) -> IO[bytes]:
        return produce(self.writer, self.epoch)

    def files(self) -> Iterator[FileEntry]:
        opener: Opener = self.uncompressed
        return iter_layer_files(opener, f"built layer {self.position}")

    @property
    def present(self) -> bool:
        return True


def _writer(source: LayerSource) -> LayerWriter:
    if callable(source):
        return source
    if not os.path.isdir(source):
        raise UsageError(f"{os.fspath(source)}: not a directory")
    return directory_writer(source)


def make_config(diff_ids: Sequence[str], *, epoch: int, labels: Mapping[str, str] | None, env: Sequence[str] | None,
                entrypoint: Sequence[str] | None, cmd: Sequence[str] | None, user: str | None,
                workdir: str | None, architecture: str | None, variant: str | None) -> bytes:
    """The image config, as canonical JSON: fields that were not given are left out."""
    created = rfc3339(epoch)
    run_config: dict[str, Any] = {}
    for key, value in (("Env", list(env or [])), ("Entrypoint", list(entrypoint) if entrypoint is not None else None),
                       ("Cmd", list(cmd) if cmd is not None else None), ("Labels", dict(labels or {})),
                       ("User", user), ("WorkingDir", workdir)):
        if value not in (None, [], {}, ""):
            run_config[key] = value
    arch, host_variant = host_platform()
    config: dict[str, Any] = {
        "architecture": architecture or arch,
        "os": "linux",
        "created": created,
        "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": created, "created_by": f"imgharness build: layer {i + 1} of {len(diff_ids)}"}
                    for i in range(len(diff_ids))],
    }
    chosen_variant = variant or (None if architecture else host_variant)
    if chosen_variant:
        config["variant"] = chosen_variant
    return canonical_json(config)


def build_from_layers(layers: Sequence[LayerSource], out: str | os.PathLike[str], *, tag: str | None = None,
                      labels: Mapping[str, str] | None = None, env: Sequence[str] | None = None,
                      entrypoint: Sequence[str] | None = None, cmd: Sequence[str] | None = None,
                      user: str | None = None, workdir: str | None = None, epoch: int | None = None,
                      layout: Layout = "docker", architecture: str | None = None,
                      variant: str | None = None) -> str:
    """Write an image of one layer per source to `out`; returns its image ID (``sha256:…``)."""
    when = resolve_epoch(epoch)
    image = built_image(layers, tags=(tag,) if tag else (), labels=labels, env=env, entrypoint=entrypoint, cmd=cmd,
                        user=user, workdir=workdir, epoch=when, architecture=architecture, variant=variant)
    write_reference(Archive(source="build", format=ArchiveFormat.DOCKER_OCI, entries=(), images=(image,)),
                    out, layout=layout, epoch=when)
    return image.config_digest


def built_image(layers: Sequence[LayerSource], *, tags: Sequence[str] = (), labels: Mapping[str, str] | None = None,
                env: Sequence[str] | None = None, entrypoint: Sequence[str] | None = None,
                cmd: Sequence[str] | None = None, user: str | None = None, workdir: str | None = None,
                epoch: int = 0, architecture: str | None = None, variant: str | None = None) -> Image:
    """The model of an image of one layer per source, its layers generated when read: archives of several
    images (bundles, multi-platform indexes) are composed of these and written once."""
    if not layers:
        raise UsageError("an image needs at least one layer")
    built = []
    for i, source in enumerate(layers):
        writer = _writer(source)
        diff_id, size = measure(writer, epoch)
        built.append(BuiltLayer(i, diff_id, size, writer, epoch))
    raw = make_config([la.diff_id for la in built], epoch=epoch, labels=labels, env=env, entrypoint=entrypoint,
                      cmd=cmd, user=user, workdir=workdir, architecture=architecture, variant=variant)
    config = json.loads(raw)
    return Image(config_digest=sha256_digest(raw), raw_config=raw, config=config, repo_tags=tuple(tags),
                 layers=tuple(built), platform=Platform.of(config))


def build_image(rootfs_layers: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                tag: str | None = None, labels: Mapping[str, str] | None = None, env: Sequence[str] | None = None,
                entrypoint: Sequence[str] | None = None, cmd: Sequence[str] | None = None,
                user: str | None = None, workdir: str | None = None, epoch: int | None = None,
                layout: Layout = "docker", architecture: str | None = None, variant: str | None = None) -> str:
    """Write an image with one layer per directory (bottom first) to `out`; returns its image ID."""
    return build_from_layers(list(rootfs_layers), out, tag=tag, labels=labels, env=env, entrypoint=entrypoint,
                             cmd=cmd, user=user, workdir=workdir, epoch=epoch, layout=layout,
                             architecture=architecture, variant=variant)

