"""Builders of image archives for the tests, written with tarfile directly (not with the code under test).

Each format builder takes `TestImage`s and mimics what its engine writes:
Docker <= 24 (`legacy`), Docker >= 25 on graph drivers and on the containerd
store (`docker_oci`), podman (`podman`), go-containerregistry (`ggcr`) and a
plain OCI layout, optionally multi-platform (`oci`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.split(":", 1)[1]


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def jdump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class F:
    """One member of a tar: a file (data), a directory (dir=True), a symlink or hardlink."""

    name: str
    data: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    dir: bool = False
    symlink: str | None = None
    hardlink: str | None = None
    pax: dict[str, str] = field(default_factory=dict)


def tar_bytes(members: Iterable[F], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            ti = tarfile.TarInfo(m.name)
            ti.uid, ti.gid, ti.mtime = m.uid, m.gid, m.mtime
            ti.pax_headers = dict(m.pax)
            if m.dir:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755 if m.mode is None else m.mode
                tf.addfile(ti)
            elif m.symlink is not None:
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, m.symlink, 0o777
                tf.addfile(ti)
            elif m.hardlink is not None:
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, m.hardlink, 0o644
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(m.data), 0o644 if m.mode is None else m.mode
                tf.addfile(ti, io.BytesIO(m.data))
    return buf.getvalue()


def write_tar(path: Path, members: Iterable[F], **kw: int) -> Path:
    path.write_bytes(tar_bytes(members, **kw))
    return path


def layer(files: dict[str, bytes], *, mtime: int = 0, uid: int = 0) -> bytes:
    """A layer tar with the given files (parent directories added first)."""
    dirs = sorted({"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)})
    return tar_bytes([F(d, dir=True, mtime=mtime, uid=uid) for d in dirs] +
                     [F(n, d, mtime=mtime, uid=uid) for n, d in sorted(files.items())])


@dataclass
class TestImage:
    """An image: uncompressed layer tars, tags, and a config derived from them."""

    layers: list[bytes]
    tags: list[str] = field(default_factory=lambda: ["test:latest"])
    created: str = "2024-01-01T00:00:00Z"
    architecture: str = "amd64"
    env: list[str] = field(default_factory=lambda: ["PATH=/bin"])

    __test__ = False  # not a pytest class

    @property
    def diff_ids(self) -> list[str]:
        return [sha(la) for la in self.layers]

    @property
    def config(self) -> bytes:
        return jdump({
            "architecture": self.architecture, "os": "linux", "created": self.created,
            "config": {"Env": self.env, "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
            "history": [{"created": self.created, "created_by": f"layer {i}"} for i in range(len(self.layers))],
        })

    @property
    def id(self) -> str:
        return sha(self.config)

    def blobs(self, how: str) -> list[bytes]:
        return [compress(la, how) for la in self.layers]

    def manifest(self, how: str = "none", *, docker_types: bool = False) -> bytes:
        layer_type = LAYER_TYPES[how]
        if docker_types:
            layer_type = {"none": "application/vnd.docker.image.rootfs.diff.tar",
                          "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip"}.get(how, layer_type)
        return jdump({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker_types else OCI_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG if docker_types else OCI_CONFIG,
                       "digest": self.id, "size": len(self.config)},
            "layers": [{"mediaType": layer_type, "digest": sha(b), "size": len(b)} for b in self.blobs(how)],
        })


def sample_image(tag: str = "test:latest", *, seed: str = "a", layers: int = 2) -> TestImage:
    return TestImage([layer({f"etc/{seed}{i}.txt": f"{seed} layer {i}\n".encode(), f"bin/{seed}{i}": b"x" * (100 * i)})
                      for i in range(layers)], tags=[tag] if tag else [])


def _blob(members: list[F], data: bytes, seen: set[str]) -> str:
    name = f"blobs/sha256/{hexof(sha(data))}"
    if name not in seen:
        seen.add(name)
        members.append(F(name, data))
    return name


def _image_blobs(members: list[F], im: TestImage, how: str, seen: set[str]) -> bytes:
    """An image's config, layer blobs and manifest as `members` of a layout; returns the manifest."""
    _blob(members, im.config, seen)
    for b in im.blobs(how):
        _blob(members, b, seen)
    man = im.manifest(how)
    _blob(members, man, seen)
    return man


def docker_oci(path: Path, images: Sequence[TestImage], *, how: str = "none") -> Path:
    """Docker >= 25: graph drivers (uncompressed, `repositories`) or the containerd store (gzip blobs)."""
    members = [F("blobs", dir=True), F("blobs/sha256", dir=True)]
    seen: set[str] = set()
    manifest_json: list[dict[str, object]] = []
    index: list[dict[str, object]] = []
    repos: dict[str, dict[str, str]] = {}
    for im in images:
        config = _blob(members, im.config, seen)
        paths = [_blob(members, b, seen) for b in im.blobs(how)]
        man = im.manifest(how, docker_types=how == "gzip")
        _blob(members, man, seen)
        mt = DOCKER_MANIFEST if how == "gzip" else OCI_MANIFEST
        descriptor = {"mediaType": mt, "digest": sha(man), "size": len(man)}
        index += [{**descriptor, "annotations": {"io.containerd.image.name": f"docker.io/library/{t}",
                                                 "org.opencontainers.image.ref.name": t.split(":")[1]}}
                  for t in im.tags] or [descriptor]
        for t in im.tags:
            repos.setdefault(t.split(":")[0], {})[t.split(":")[1]] = hexof(im.diff_ids[-1])
        manifest_json.append({"Config": config, "RepoTags": im.tags or None, "Layers": paths})
    members += [F("index.json", jdump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index})),
                F("manifest.json", jdump(manifest_json)),
                F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    if repos and how == "none":
        members.append(F("repositories", jdump(repos)))
    return write_tar(path, members)


def legacy(path: Path, images: Sequence[TestImage]) -> Path:
    """Docker <= 24: `<id>/layer.tar` (a symlink for a layer seen before), `<config>.json`, manifest.json."""
    members: list[F] = []
    manifest_json: list[dict[str, object]] = []
    repos: dict[str, dict[str, str]] = {}
    by_diff: dict[str, str] = {}
    for im in images:
        members.append(F(f"{hexof(im.id)}.json", im.config))
        ids = []
        for i, blob in enumerate(im.layers):
            v1 = hashlib.sha256(f"{im.id}/{i}".encode()).hexdigest()
            ids.append(v1)
            members += [F(v1, dir=True), F(f"{v1}/VERSION", b"1.0"), F(f"{v1}/json", jdump({"id": v1}))]
            d = sha(blob)
            if d in by_diff:
                members.append(F(f"{v1}/layer.tar", symlink=f"../{by_diff[d]}/layer.tar"))
            else:
                by_diff[d] = v1
                members.append(F(f"{v1}/layer.tar", blob))
        for t in im.tags:
            repos.setdefault(t.split(":")[0], {})[t.split(":")[1]] = ids[-1]
        manifest_json.append({"Config": f"{hexof(im.id)}.json", "RepoTags": im.tags or None,
                              "Layers": [f"{v}/layer.tar" for v in ids]})
    members += [F("manifest.json", jdump(manifest_json))]
    if repos:
        members.append(F("repositories", jdump(repos)))
    return write_tar(path, members)


def podman(path: Path, images: Sequence[TestImage]) -> Path:
    """podman/skopeo docker-archive: `<diffID>.tar`, `<config>.json`, `<id>/layer.tar` symlinks."""
    members: list[F] = []
    manifest_json = []
    for im in images:
        paths = []
        for i, blob in enumerate(im.layers):
            name = f"{hexof(sha(blob))}.tar"
            if name not in {m.name for m in members}:
                members.append(F(name, blob))
            legacy_id = hashlib.sha256(f"{im.id}/{i}".encode()).hexdigest()
            members += [F(legacy_id, dir=True), F(f"{legacy_id}/layer.tar", symlink=f"../{name}"),
                        F(f"{legacy_id}/VERSION", b"1.0")]
            paths.append(name)
        members.append(F(f"{hexof(im.id)}.json", im.config))
        manifest_json.append({"Config": f"{hexof(im.id)}.json", "RepoTags": im.tags, "Layers": paths})
    members += [F("manifest.json", jdump(manifest_json)), F("repositories", b"{}")]
    return write_tar(path, members)


def ggcr(path: Path, images: Sequence[TestImage], *, how: str = "gzip") -> Path:
    """go-containerregistry tarball: config `sha256:<hex>`, layers `<hex>.tar.gz`, manifest.json last."""
    members: list[F] = []
    manifest_json = []
    for im in images:
        members.append(F(im.id, im.config))
        paths = []
        for blob in im.blobs(how):
            name = f"{hexof(sha(blob))}.tar.gz"
            members.append(F(name, blob))
            paths.append(name)
        manifest_json.append({"Config": im.id, "RepoTags": im.tags, "Layers": paths})
    members.append(F("manifest.json", jdump(manifest_json)))
    return write_tar(path, members, fmt=tarfile.USTAR_FORMAT)


def oci(path: Path, images: Sequence[TestImage], *, how: str = "gzip", nested: bool = False,
        missing_platforms: int = 0) -> Path:
    """A plain OCI layout; `nested` puts all images under one image index (multi-platform),
    which also names `missing_platforms` manifests the archive does not carry."""
    members = [F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), F("blobs", dir=True), F("blobs/sha256", dir=True)]
    seen: set[str] = set()
    descs = []
    for im in images:
        man = _image_blobs(members, im, how, seen)
        descs.append({"mediaType": OCI_MANIFEST, "digest": sha(man), "size": len(man),
                      "platform": {"architecture": im.architecture, "os": "linux"}})
    if nested:
        for i in range(missing_platforms):
            ghost = jdump({"ghost": i})
            descs.append({"mediaType": OCI_MANIFEST, "digest": sha(ghost), "size": len(ghost),
                          "platform": {"architecture": f"ghost{i}", "os": "linux"}})
        idx = jdump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs})
        _blob(members, idx, seen)
        tag = images[0].tags[0] if images[0].tags else None
        ann = {"org.opencontainers.image.ref.name": tag} if tag else {}
        top = [{"mediaType": OCI_INDEX, "digest": sha(idx), "size": len(idx), "annotations": ann}]
    else:
        top = [{**d, "annotations": {"io.containerd.image.name": f"docker.io/library/{t}"}}
               for d, im in zip(descs, images) for t in (im.tags or [""]) if t] or descs
    members.append(F("index.json", jdump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top})))
    return write_tar(path, members)


def writers(images: Sequence[TestImage]) -> dict[str, Callable[[Path], Path]]:
    """One writer per archive format and layer compression the readers must handle, for `images`."""
    return {
        "docker-oci": lambda p: docker_oci(p, images),
        "docker-oci-gzip": lambda p: docker_oci(p, images, how="gzip"),
        "legacy": lambda p: legacy(p, images),
        "podman": lambda p: podman(p, images),
        "ggcr": lambda p: ggcr(p, images),
        "oci-zstd": lambda p: oci(p, images, how="zstd"),
    }


def compress_file(path: Path, how: str) -> Path:
    """The archive file itself compressed (`docker save | gzip`)."""
    out = path.with_name(path.name + (".gz" if how == "gzip" else ".zst"))
    out.write_bytes(compress(path.read_bytes(), how))
    return out


def rewrite(path: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of a tar with some entries' content replaced (None drops the entry)."""
    src = tarfile.open(path)
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for ti in src.getmembers():
        if ti.name in change:
            data = change[ti.name]
            if data is None:
                continue
            ti.size = len(data)
            members.append((ti, data))
        else:
            f = src.extractfile(ti) if ti.isreg() else None
            members.append((ti, f.read() if f else None))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out


def tar_member(path: Path, name: str) -> bytes:
    """The content of one member of a tar."""
    with tarfile.open(path) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


IN_TOTO = "application/vnd.in-toto+json"
PROVENANCE = "https://slsa.dev/provenance/v0.2"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def platform_image(arch: str, *, seed: str = "p", tags: Sequence[str] = (), variant: str = "",
                   extra: dict[str, bytes] | None = None) -> TestImage:
    """An image for one platform: its files say which (`extra` adds or changes files in the top layer)."""
    top = {f"etc/{seed}-arch": f"{arch}{variant}\n".encode(), **(extra or {})}
    return TestImage([layer({"bin/tool": f"tool for {arch}{variant}\n".encode()}), layer(top)],
                     tags=list(tags), architecture=arch)


def provenance(subject: bytes, *, started: str = "2024-01-01T00:00:00Z") -> tuple[bytes, bytes, bytes]:
    """(in-toto statement, attestation config, attestation manifest) for the image manifest `subject`, as
    BuildKit >= 0.11 writes them."""
    statement = jdump({
        "_type": "https://in-toto.io/Statement/v0.1", "predicateType": PROVENANCE,
        "subject": [{"name": "pkg:docker/x", "digest": {"sha256": hexof(sha(subject))}}],
        "predicate": {"buildType": "https://mobyproject.org/buildkit@v1",
                      "metadata": {"buildStartedOn": started, "buildFinishedOn": started}},
    })
    config = jdump({"architecture": "unknown", "os": "unknown", "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [sha(statement)]}})
    manifest = jdump({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": IN_TOTO, "digest": sha(statement), "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": PROVENANCE}}],
    })
    return statement, config, manifest


def buildx_oci(path: Path, images: Sequence[TestImage], *, tag: str = "app:1.0", how: str = "gzip",
               attest: bool = True, started: str = "2024-01-01T00:00:00Z", drop: Iterable[str] = (),
               extra_descriptors: Sequence[dict[str, object]] = ()) -> Path:
    """A multi-platform OCI layout as ``buildx build --platform … --output type=oci`` writes it: index.json
    names one image index, which names a manifest per platform and, with `attest`, a provenance attestation
    manifest per platform (platform unknown/unknown, annotated with the manifest it attests).  `drop` leaves
    blobs out (by digest), as engines that save what they lack do; `extra_descriptors` go into the index."""
    members = [F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), F("blobs", dir=True), F("blobs/sha256", dir=True)]
    seen: set[str] = set(f"blobs/sha256/{hexof(d)}" for d in drop)
    images_descs: list[dict[str, object]] = []
    attest_descs: list[dict[str, object]] = []
    for im in images:
        man = _image_blobs(members, im, how, seen)
        images_descs.append({"mediaType": OCI_MANIFEST, "digest": sha(man), "size": len(man),
                             "platform": {"architecture": im.architecture, "os": "linux"}})
        if attest:
            for part in provenance(man, started=started):
                _blob(members, part, seen)
            attest_man = provenance(man, started=started)[2]
            attest_descs.append({"mediaType": OCI_MANIFEST, "digest": sha(attest_man), "size": len(attest_man),
                                 "platform": {"architecture": "unknown", "os": "unknown"},
                                 "annotations": {"vnd.docker.reference.digest": sha(man),
                                                 "vnd.docker.reference.type": "attestation-manifest"}})
    idx = jdump({"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": images_descs + attest_descs + list(extra_descriptors)})
    _blob(members, idx, seen)
    repo, _, version = tag.rpartition(":")
    top = {"mediaType": OCI_INDEX, "digest": sha(idx), "size": len(idx),
           "annotations": {"io.containerd.image.name": f"docker.io/library/{tag}",
                           "org.opencontainers.image.ref.name": version}}
    members.append(F("index.json", jdump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]})))
    return write_tar(path, members)


def helm_chart(version: str = "1.0.0") -> tuple[bytes, bytes, bytes]:
    """(chart config, chart tarball, manifest) of a Helm chart pushed as an OCI artifact."""
    config = jdump({"name": "demo", "version": version, "apiVersion": "v2"})
    chart = compress(tar_bytes([F("demo/Chart.yaml", f"name: demo\nversion: {version}\n".encode())]), "gzip")
    manifest = jdump({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": HELM_CONFIG, "digest": sha(config), "size": len(config)},
                      "layers": [{"mediaType": HELM_CHART, "digest": sha(chart), "size": len(chart)}]})
    return config, chart, manifest


def helm_layout(path: Path, version: str = "1.0.0", *, with_image: TestImage | None = None,
                unknown: bool = False) -> Path:
    """An OCI layout holding a Helm chart (as ``helm push`` to an oci layout, or ``oras copy``), optionally
    beside an image, and a descriptor of a media type nobody knows."""
    members = [F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), F("blobs", dir=True), F("blobs/sha256", dir=True)]
    seen: set[str] = set()
    for part in helm_chart(version):
        _blob(members, part, seen)
    man = helm_chart(version)[2]
    descs: list[dict[str, object]] = [{"mediaType": OCI_MANIFEST, "digest": sha(man), "size": len(man),
                                       "annotations": {"org.opencontainers.image.ref.name": version}}]
    if with_image is not None:
        _blob(members, with_image.config, seen)
        for b in with_image.blobs("gzip"):
            _blob(members, b, seen)
        im_man = with_image.manifest("gzip")
        _blob(members, im_man, seen)
        descs.append({"mediaType": OCI_MANIFEST, "digest": sha(im_man), "size": len(im_man),
                      "annotations": {"io.containerd.image.name": f"docker.io/library/{with_image.tags[0]}"}})
    if unknown:
        odd = b"something else entirely"
        _blob(members, odd, seen)
        descs.append({"mediaType": "application/vnd.example.thing.v1", "digest": sha(odd), "size": len(odd)})
    members.append(F("index.json", jdump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs})))
    return write_tar(path, members)
