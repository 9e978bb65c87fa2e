"""Large image archive pairs for the benchmark, generated without engines and without extracting anything.

Each pair is a Docker >= 25 save (OCI layout + ``manifest.json``) of one image
with three layers, shaped like real images: a base of many small files
(a quarter of the content), a layer of four large files (half of it; two
incompressible, two text) and an application layer of many small files (the
last quarter).  B differs from A in exactly one file in the middle of the
application layer, which also grows by a few bytes, so everything after it
moves, as in a real edit; or (``insert``) B has one file more there, so the
two layers' paths part and the differ must realign them.  Contents are slices of a random and a text pool:
generation is fast and gzip ratios are realistic (text about 3:1).
"""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from isal import isal_zlib

from harness.reference.tarwriter import CanonicalTar

MiB = 1 << 20
GiB = 1 << 30
POOL = 64 * MiB
EPOCH = 1_700_000_000
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
_WORDS = [f"w{n:x}" for n in range(4096)] + ["the", "of", "and", "lib", "usr", "share", "=", "{", "}"]


@dataclass(frozen=True)
class Pair:
    """Two archives that differ in one file, and what they hold."""

    a: Path
    b: Path
    content: int        # bytes of uncompressed layer content per archive
    compression: str    # "none" or "gzip"
    files: int          # regular files per archive
    changed: str        # the one file that differs


@dataclass(frozen=True)
class _File:
    name: str
    parts: tuple[tuple[bool, int, int], ...]  # (from the text pool?, offset, length)

    @property
    def size(self) -> int:
        return sum(n for _, _, n in self.parts)


class Pools:
    """Deterministic content: one random and one text pool that files are sliced from."""

    def __init__(self, seed: int = 6) -> None:
        rng = random.Random(seed)
        self.random = rng.randbytes(POOL)
        text = bytearray()
        while len(text) < POOL:
            text += " ".join(rng.choices(_WORDS, k=12)).encode() + b"\n"
        self.text = bytes(text[:POOL])

    def parts(self, f: _File) -> Iterator[memoryview]:
        for text, offset, n in f.parts:
            yield memoryview(self.text if text else self.random)[offset:offset + n]


def _small_files(prefix: str, total: int, rng: random.Random) -> Iterator[_File]:
    """Text files of 256 B to 24 KiB (mean about 6 KiB), 200 per directory, until `total` bytes."""
    written = n = 0
    while written < total:
        size = min(int(rng.expovariate(1 / 6144)) + 256, 24 * 1024, total - written)
        yield _File(f"{prefix}/d{n // 200:04d}/f{n % 200:03d}.txt", ((True, rng.randrange(POOL - size), size),))
        written += size
        n += 1


def _large_files(prefix: str, total: int, rng: random.Random) -> Iterator[_File]:
    """Four large files, alternately incompressible and text, made of pool slices of up to 32 MiB."""
    for k in range(4):
        left, parts = total // 4, []
        while left:
            n = min(left, POOL // 2)
            parts.append((k % 2 == 1, rng.randrange(POOL - n), n))
            left -= n
        yield _File(f"{prefix}/blob{k}.bin", tuple(parts))


class _Sink:
    """Writes a layer blob, gzip-compressing on the way when asked; hashes what it stores and the tar."""

    def __init__(self, f: BinaryIO, gzip: bool) -> None:
        self._f = f
        self._z = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31) if gzip else None
        self._blob = hashlib.sha256()
        self._tar = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self._tar.update(data)
        self._store(self._z.compress(data) if self._z else data)

    def _store(self, data: bytes | memoryview) -> None:
        self._blob.update(data)
        self._f.write(data)

    def close(self) -> tuple[str, str]:
        """(blob digest, diff_id)."""
        if self._z:
            self._store(self._z.flush())
        return "sha256:" + self._blob.hexdigest(), "sha256:" + self._tar.hexdigest()


def _header(name: str, size: int, *, directory: bool = False) -> bytes:
    """A header as Go's archive/tar writes one in a layer: ustar, root, fixed mtime."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.uname, ti.gname = size, EPOCH, "root", "root"
    ti.type, ti.mode = (tarfile.DIRTYPE, 0o755) if directory else (tarfile.REGTYPE, 0o644)
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@dataclass(frozen=True)
class _Layer:
    blob: Path
    digest: str
    diff_id: str
    size: int
    files: int
    changed: str = ""


def _write_layer(files: Iterator[_File], pools: Pools, out: Path, *, gzip: bool, edit_at: int = -1,
                 insert: bool = False) -> _Layer:
    """Write one layer blob; the first file at or past byte `edit_at` of content is edited (when >= 0),
    or with `insert` a new file is written before it, so the two layers' paths part there."""
    seen_dirs: set[str] = set()
    count = content = 0
    changed = ""
    with open(out, "wb") as f:
        sink = _Sink(f, gzip)
        for file in files:
            dirs = file.name.split("/")[:-1]
            for depth in range(1, len(dirs) + 1):
                parent = "/".join(dirs[:depth])
                if parent not in seen_dirs:
                    seen_dirs.add(parent)
                    sink.write(_header(parent + "/", 0, directory=True))
            data = list(pools.parts(file))
            if 0 <= edit_at <= content and not changed and insert:
                changed = file.name + ".inserted"
                added = b"inserted before " + file.name.encode()
                sink.write(_header(changed, len(added)))
                sink.write(added + b"\0" * (-len(added) % 512))
                count += 1
            elif 0 <= edit_at <= content and not changed:
                changed = file.name
                data = [memoryview(b"edited: " + bytes(data[0])[::-1] + b" (+21 bytes)")]
            size = sum(len(d) for d in data)
            sink.write(_header(file.name, size))
            for d in data:
                sink.write(d)
            sink.write(b"\0" * (-size % 512))
            count += 1
            content += size
        sink.write(b"\0" * 1024)
        digest, diff_id = sink.close()
    return _Layer(out, digest, diff_id, out.stat().st_size, count, changed)


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _write_archive(out: Path, layers: list[_Layer], *, gzip: bool) -> None:
    """The outer archive, laid out as Docker >= 25 saves it."""
    config = _json({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"bench layer {i}"} for i in range(len(layers))],
    })
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = _json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": LAYER_GZIP if gzip else LAYER_TAR, "digest": la.digest, "size": la.size}
                   for la in layers],
    })
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    with open(out, "wb") as f:
        tar = CanonicalTar(f, EPOCH)
        tar.directory("blobs")
        tar.directory("blobs/sha256")
        tar.file(_blob_name(config_digest), config)
        for la in layers:
            with open(la.blob, "rb") as src:
                tar.stream(_blob_name(la.digest), src, la.size)
        tar.file(_blob_name(manifest_digest), manifest)
        tar.file("index.json", _json({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                           "size": len(manifest), "annotations": {
                               "io.containerd.image.name": "docker.io/library/bench:latest",
                               "org.opencontainers.image.ref.name": "latest"}}],
        }))
        tar.file("manifest.json", _json([{"Config": _blob_name(config_digest), "RepoTags": ["bench:latest"],
                                          "Layers": [_blob_name(la.digest) for la in layers]}]))
        tar.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        tar.close()


def generate_pair(workdir: Path, content: int, *, gzip: bool, pools: Pools, insert: bool = False) -> Pair:
    """Write A and B (``<workdir>/a.tar``, ``b.tar``) with `content` bytes of layer content each; B has one
    file edited, or with `insert` one file more, in the middle of the application layer."""
    workdir.mkdir(parents=True, exist_ok=True)
    quarter = content // 4

    def app() -> Iterator[_File]:
        return _small_files("app/node_modules", quarter, random.Random(4))

    base = _write_layer(_small_files("usr/lib", quarter, random.Random(2)), pools, workdir / "l0", gzip=gzip)
    big = _write_layer(_large_files("opt/data", 2 * quarter, random.Random(3)), pools, workdir / "l1", gzip=gzip)
    app_a = _write_layer(app(), pools, workdir / "l2a", gzip=gzip)
    app_b = _write_layer(app(), pools, workdir / "l2b", gzip=gzip, edit_at=quarter // 2, insert=insert)
    _write_archive(workdir / "a.tar", [base, big, app_a], gzip=gzip)
    _write_archive(workdir / "b.tar", [base, big, app_b], gzip=gzip)
    for la in (base, big, app_a, app_b):
        la.blob.unlink()
    return Pair(workdir / "a.tar", workdir / "b.tar", content, "gzip" if gzip else "none",
                base.files + big.files + app_a.files, app_b.changed)
