"""The test images, made offline and deterministically.

No image can be pulled here, so the suites' images are written by our own
writer from layers generated in code: a busybox-static base (a working shell),
and layers that exercise what engines get wrong — many small files, one large
layer, symlinks, hardlinks, whiteouts (file and opaque), xattrs, non-root owners
and an empty layer — plus labels, env and an entrypoint.  The same corpus
version always gives byte-identical archives, cached under the harness home.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from filelock import FileLock

from harness.engines.packages import DebianSource, DebPackage

CORPUS_VERSION = 1
EPOCH = 1_700_000_000  # fixed creation time: archives are reproducible byte for byte
BUSYBOX = DebianSource("busybox-static", (DebPackage("busybox-static", "bookworm"),))

LayerWriter = Callable[[tarfile.TarFile], None]


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
          size: int = 0, link: str = "", xattrs: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.size, info.mtime = kind, mode, uid, gid, size, EPOCH
    info.linkname = link
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info


def _file(tf: tarfile.TarFile, name: str, data: bytes, **kw: object) -> None:
    tf.addfile(_info(name, size=len(data), **kw), io.BytesIO(data))  # type: ignore[arg-type]


def _dir(tf: tarfile.TarFile, name: str, **kw: object) -> None:
    tf.addfile(_info(name, tarfile.DIRTYPE, mode=kw.pop("mode", 0o755), **kw))  # type: ignore[arg-type]


def prng_bytes(seed: str, size: int) -> bytes:
    """Incompressible but reproducible bytes (SHAKE-256 output, 1 MiB per counter value)."""
    chunk = 1 << 20
    parts = [hashlib.shake_256(f"{seed}:{i}".encode()).digest(min(chunk, size - i * chunk))
             for i in range((size + chunk - 1) // chunk)]
    return b"".join(parts)


def busybox_layer(busybox: Path) -> LayerWriter:
    def write(tf: tarfile.TarFile) -> None:
        for d in ("bin", "etc", "tmp", "root", "usr", "usr/bin"):
            _dir(tf, d, mode=0o1777 if d == "tmp" else 0o755)
        data = busybox.read_bytes()
        _file(tf, "bin/busybox", data, mode=0o755)
        for applet in ("sh", "ls", "cat", "echo", "sleep", "wc", "sha256sum"):
            tf.addfile(_info(f"bin/{applet}", tarfile.SYMTYPE, mode=0o777, link="busybox"))
        _file(tf, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        _file(tf, "etc/group", b"root:x:0:\napp:x:1000:\n")
        _file(tf, "etc/obsolete.conf", b"removed by a whiteout in a later layer\n")
        _dir(tf, "opt")
        _dir(tf, "opt/old")
        _file(tf, "opt/old/data", b"hidden by an opaque whiteout\n")
    return write


def app_layer(tf: tarfile.TarFile) -> None:
    _dir(tf, "app")
    _file(tf, "app/run.sh", b"#!/bin/sh\necho hello from the corpus\n", mode=0o755)
    _file(tf, "app/VERSION", b"1.0.0\n")


def small_files_layer(count: int) -> LayerWriter:
    def write(tf: tarfile.TarFile) -> None:
        _dir(tf, "data")
        for i in range(count // 100 + 1):
            _dir(tf, f"data/{i:03d}")
        for i in range(count):
            _file(tf, f"data/{i // 100:03d}/f{i:05d}.txt", f"file {i}\n".encode() * (1 + i % 7))
    return write


def features_layer(tf: tarfile.TarFile) -> None:
    _dir(tf, "etc")
    _file(tf, "etc/.wh.obsolete.conf", b"")           # file whiteout
    _dir(tf, "opt")
    _dir(tf, "opt/old")
    _file(tf, "opt/old/.wh..wh..opq", b"")             # opaque directory whiteout
    _file(tf, "opt/old/new", b"replaces the old directory's content\n")
    _dir(tf, "home", mode=0o755)
    _dir(tf, "home/app", uid=1000, gid=1000, mode=0o750)
    _file(tf, "home/app/owned", b"owned by uid 1000\n", uid=1000, gid=1000, mode=0o640)
    _file(tf, "home/app/setuid", b"#!/bin/sh\n", mode=0o4755)
    _file(tf, "home/app/tagged", b"carries xattrs\n", xattrs={"user.origin": "corpus", "user.kind": "test"})
    _file(tf, "home/app/target", b"link target\n")
    tf.addfile(_info("home/app/hardlink", tarfile.LNKTYPE, link="home/app/target"))
    tf.addfile(_info("home/app/symlink", tarfile.SYMTYPE, mode=0o777, link="target"))
    tf.addfile(_info("home/app/dangling", tarfile.SYMTYPE, mode=0o777, link="/nonexistent"))
    tf.addfile(_info("home/app/fifo", tarfile.FIFOTYPE))


def empty_layer(tf: tarfile.TarFile) -> None:
    """No entries at all: engines must keep it as a layer with the empty tar's diff_id."""


def large_layer(size: int) -> LayerWriter:
    def write(tf: tarfile.TarFile) -> None:
        _dir(tf, "blob")
        _file(tf, "blob/large.bin", prng_bytes("large", size))
        _file(tf, "blob/compressible.txt", b"the same line again and again\n" * (size // 64 // 30))
    return write


@dataclass(frozen=True)
class TestImage:
    """One image of the corpus: its layers and config, built into a reproducible archive."""

    name: str
    layers: tuple[LayerWriter, ...]
    labels: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str | None = None
    workdir: str | None = None


def images(busybox: Path) -> dict[str, TestImage]:
    """The corpus: `basic` (small, two layers), `features` (every tar feature), `large` (one big layer)."""
    base = busybox_layer(busybox)
    common = {"org.opencontainers.image.source": "imgharness corpus", "imgharness.corpus": str(CORPUS_VERSION)}
    return {
        "basic": TestImage("basic", (base, app_layer), labels=common, env=("APP_ENV=test",),
                           entrypoint=("/bin/sh", "/app/run.sh")),
        "features": TestImage("features", (base, features_layer, empty_layer, small_files_layer(1500)),
                              labels={**common, "kind": "features"}, env=("A=1", "B=two words"),
                              entrypoint=("/bin/sh", "-c"), cmd=("ls -la /home/app",), workdir="/home/app"),
        "large": TestImage("large", (base, large_layer(48 << 20)), labels={**common, "kind": "large"},
                           cmd=("/bin/sh",)),
    }


def _spool_layer(write: LayerWriter, dest: Path) -> tuple[str, int]:
    """Write one layer tar to `dest` (sorted by the writer, PAX only where xattrs need it); sha256 and size."""
    with open(dest, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
        write(tf)
    digest = hashlib.sha256()
    with open(dest, "rb") as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest(), dest.stat().st_size


def _write_archive(img: TestImage, out: Path, tag: str) -> None:
    """A Docker-25-style archive (OCI layout + manifest.json) with uncompressed layers and fixed headers."""
    staging = out.with_name(out.name + ".layers")
    staging.mkdir(exist_ok=True)
    layers = [_spool_layer(w, staging / f"{i}.tar") for i, w in enumerate(img.layers)]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
    config: dict[str, object] = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
        "os": "linux", "created": created,
        "config": {k: v for k, v in {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *img.env],
            "Entrypoint": list(img.entrypoint) if img.entrypoint else None,
            "Cmd": list(img.cmd) if img.cmd else None, "Labels": dict(sorted(img.labels.items())),
            "User": img.user, "WorkingDir": img.workdir}.items() if v},
        "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
        "history": [{"created": created, "created_by": f"imgharness corpus {img.name} layer {i}"}
                    for i in range(len(layers))],
    }
    raw_config = _canonical_json(config)
    config_digest = "sha256:" + hashlib.sha256(raw_config).hexdigest()
    manifest = _canonical_json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(raw_config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                   for d, s in layers]})
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    repo, _, version = tag.rpartition(":")
    index = _canonical_json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": len(manifest), "annotations": {
                           "io.containerd.image.name": f"docker.io/{repo}:{version}",
                           "org.opencontainers.image.ref.name": version}}]})
    blob = lambda d: f"blobs/sha256/{d.split(':', 1)[1]}"  # noqa: E731
    manifest_json = _canonical_json([{"Config": blob(config_digest), "RepoTags": [tag],
                                      "Layers": [blob(d) for d, _ in layers]}])
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            tf.addfile(_info(d, tarfile.DIRTYPE, mode=0o755))
        tf.addfile(_info(blob(config_digest), size=len(raw_config)), io.BytesIO(raw_config))
        written = set()
        for i, (d, size) in enumerate(layers):
            if d not in written:
                written.add(d)
                with open(staging / f"{i}.tar", "rb") as f:
                    tf.addfile(_info(blob(d), size=size), f)
        tf.addfile(_info(blob(manifest_digest), size=len(manifest)), io.BytesIO(manifest))
        for name, data in (("index.json", index), ("manifest.json", manifest_json),
                           ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')):
            tf.addfile(_info(name, size=len(data)), io.BytesIO(data))
    shutil.rmtree(staging)
    partial.replace(out)


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


IMAGE_NAMES = ("basic", "features", "large")


def corpus_tag(name: str) -> str:
    return f"imgharness/corpus-{name}:v{CORPUS_VERSION}"


def build_corpus(home: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (once, then cached) the corpus archives; returns name → archive path."""
    out_dir = home / "corpus" / f"v{CORPUS_VERSION}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir / ".lock"), timeout=600):
        busybox = BUSYBOX.provision(home / "packages") / "bin" / "busybox"
        result: dict[str, Path] = {}
        for name, img in images(busybox).items():
            if names and name not in names:
                continue
            path = out_dir / f"{name}.tar"
            if not path.exists():
                _write_archive(img, path, corpus_tag(name))
            result[name] = path
        return result
