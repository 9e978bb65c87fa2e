"""The test images, made offline and deterministically.

No image can be pulled here, so the suites' images are written by our own
builder (`harness.reference.build`) from layers generated in code: a busybox-static base (a working shell),
and layers that exercise what engines get wrong — many small files, one large
layer, symlinks, hardlinks, whiteouts (file and opaque), xattrs, non-root owners
and an empty layer — plus labels, env and an entrypoint.  The same corpus
version always gives byte-identical archives, cached under the harness home.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

from filelock import FileLock

from harness.archive import read_archive
from harness.archive.compression import inflate
from harness.engines.packages import DebianSource, DebPackage
from harness.errors import EngineError, ImageNotFound
from harness.image import Archive, ArchiveFormat, Compression, FileEntry, Image
from harness.reference.build import build_from_layers, built_image
from harness.reference.layertar import LayerWriter
from harness.reference.writer import write_reference
from harness.settings import package_cache
from harness.tar.listing import iter_layer_files

if TYPE_CHECKING:
    from harness.engines.adapter import Engine

CORPUS_VERSION = 3
DEFAULT_NAMESPACE = "imgharness"  # of the cached corpus' tags; a run moves them into its own namespace
EPOCH = 1_700_000_000  # fixed creation time: archives are reproducible byte for byte
BUSYBOX = DebianSource("busybox-static", (DebPackage("busybox-static", "bookworm"),))


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


def delta_layer(version: int) -> LayerWriter:
    """A 16 MiB application layer; version 2 changes three small files and adds one."""
    def write(tf: tarfile.TarFile) -> None:
        _dir(tf, "srv")
        _file(tf, "srv/bundle.bin", prng_bytes("delta-bundle", 16 << 20))
        for i in range(50):
            changed = version > 1 and i in (3, 17, 42)
            _file(tf, f"srv/conf-{i:02d}.txt", f"setting {i} = {'new' if changed else 'old'}\n".encode())
        if version > 1:
            _file(tf, "srv/RELEASE-NOTES", b"version 2: three settings changed\n")
    return write


def delta_images(busybox: Path) -> dict[str, TestImage]:
    """Two versions of one image that differ in four small files of one 16 MiB layer."""
    base = busybox_layer(busybox)
    return {f"delta-v{v}": TestImage(f"delta-v{v}", (base, delta_layer(v)), labels={"version": str(v)})
            for v in (1, 2)}


BUNDLE_IMAGES = 5
"""Images in the bundle: air-gapped sites move many images in one `docker save a b c …`."""


def bundle_tags(k: int, namespace: str = DEFAULT_NAMESPACE) -> tuple[str, ...]:
    """Several tags per bundle image; the last image is also named in a repository of its own."""
    repo = f"{namespace}/corpus-bundle-{k}"
    alias = (f"{namespace}/corpus-bundle-alias:v{CORPUS_VERSION}",) if k == BUNDLE_IMAGES else ()
    return (f"{repo}:v{CORPUS_VERSION}", f"{repo}:latest", *alias)


def bundle_layer(k: int) -> LayerWriter:
    def write(tf: tarfile.TarFile) -> None:
        _dir(tf, "srv")
        _file(tf, f"srv/service-{k}.conf", f"service {k}\n".encode())
        _file(tf, f"srv/service-{k}.bin", prng_bytes(f"bundle-{k}", (k * 37) << 10))
    return write


@dataclass(frozen=True)
class StoredLayer:
    """A built layer compressed once into a file of its own: what an image with zstd layers stores."""

    position: int
    diff_id: str
    digest: str
    size: int
    path: Path
    compression: Compression = Compression.ZSTD
    entry_name: str = ""

    @property
    def media_type(self) -> str:
        return f"application/vnd.oci.image.layer.v1.tar+{self.compression}"

    @property
    def present(self) -> bool:
        return True

    def compressed(self) -> IO[bytes]:
        return open(self.path, "rb")

    def uncompressed(self) -> IO[bytes]:
        return inflate(self.compressed(), self.compression, size=self.size)

    def files(self) -> Iterator[FileEntry]:
        return iter_layer_files(self.uncompressed, f"stored layer {self.position}")


def _zstd_layers(image: Image, workdir: Path) -> Image:
    """The image with every layer stored zstd-compressed (level 3, one frame, written once)."""
    import zstandard

    stored = []
    for layer in image.layers:
        path = workdir / f"layer-{layer.position}.zst"
        with layer.uncompressed() as src, open(path, "wb") as out:
            zstandard.ZstdCompressor(level=3, write_checksum=True).copy_stream(src, out)
        with open(path, "rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        stored.append(StoredLayer(layer.position, layer.diff_id, digest, path.stat().st_size, path))
    return dataclasses.replace(image, layers=tuple(stored))


def _compose(name: str, busybox: Path, workdir: Path) -> tuple[Archive, bool]:
    """The archives of several images, or of layers stored compressed: (model, keep_compression)."""
    base = busybox_layer(busybox)
    common = {"org.opencontainers.image.source": "imgharness corpus", "imgharness.corpus": str(CORPUS_VERSION)}
    if name == "bundle":
        bundle = tuple(built_image([base, bundle_layer(k)], tags=bundle_tags(k), labels={**common, "bundle": str(k)},
                                   cmd=("/bin/sh",), epoch=EPOCH) for k in range(1, BUNDLE_IMAGES + 1))
        return Archive("corpus", ArchiveFormat.DOCKER_OCI, (), bundle), False
    if name == "zstd":
        image = built_image([base, app_layer], tags=(corpus_tag(name),), labels={**common, "kind": "zstd"},
                            entrypoint=("/bin/sh", "/app/run.sh"), epoch=EPOCH)
        return Archive("corpus", ArchiveFormat.DOCKER_OCI, (), (_zstd_layers(image, workdir),)), True
    if name == "multiplatform":
        platforms = {arch: built_image([base, platform_layer(arch)], labels={**common, "kind": "multiplatform"},
                                       cmd=("/bin/sh",), epoch=EPOCH, architecture=arch) for arch in PLATFORMS}
        layout = workdir / "buildx.tar"
        _buildx_layout(platforms, corpus_tag(name), layout)
        return read_archive(layout), True
    raise KeyError(name)


PLATFORMS = ("amd64", "arm64")
PROVENANCE = "https://slsa.dev/provenance/v0.2"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def platform_layer(arch: str) -> LayerWriter:
    """What differs between the platforms of the multi-platform image: a file that says which it is."""
    def write(tf: tarfile.TarFile) -> None:
        _dir(tf, "etc")
        _file(tf, "etc/platform", f"linux/{arch}\n".encode())
        _file(tf, f"etc/built-for-{arch}", prng_bytes(f"platform-{arch}", 64 << 10))
    return write


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _provenance(manifest: bytes, arch: str) -> tuple[bytes, bytes, bytes]:
    """(in-toto statement, config, manifest) of a provenance attestation as BuildKit >= 0.11 writes them."""
    statement = _json({
        "_type": "https://in-toto.io/Statement/v0.1", "predicateType": PROVENANCE,
        "subject": [{"name": f"pkg:docker/imgharness/corpus-multiplatform@v{CORPUS_VERSION}?platform=linux%2F{arch}",
                     "digest": {"sha256": _digest(manifest).split(":", 1)[1]}}],
        "predicate": {"buildType": "https://mobyproject.org/buildkit@v1",
                      "metadata": {"buildStartedOn": "2023-11-14T22:13:20Z", "buildFinishedOn": "2023-11-14T22:13:20Z",
                                   "reproducible": True}},
    })
    config = _json({"architecture": "unknown", "os": "unknown", "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [_digest(statement)]}})
    attestation = _json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": _digest(statement), "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": PROVENANCE}}],
    })
    return statement, config, attestation


def _buildx_layout(images: dict[str, Image], tag: str, out: Path) -> None:
    """The OCI layout ``buildx build --platform … --output type=oci`` writes: index.json names an image index,
    which names a manifest per platform and a provenance attestation per platform, annotated with the
    manifest it attests.  Layers are stored gzip-compressed, as a registry would serve them."""
    from harness.reference.tarwriter import CanonicalTar

    blobs: dict[str, bytes] = {}
    descriptors: list[dict[str, object]] = []
    attestations: list[dict[str, object]] = []
    for arch, image in images.items():
        blobs[image.config_digest] = image.raw_config
        layer_descs = []
        for layer in image.layers:
            with layer.uncompressed() as src:
                data = gzip.compress(src.read(), compresslevel=6, mtime=0)
            blobs[_digest(data)] = data
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(data),
                                "size": len(data)})
        manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layer_descs,
                          "config": {"mediaType": OCI_CONFIG, "digest": image.config_digest,
                                     "size": len(image.raw_config)}})
        blobs[_digest(manifest)] = manifest
        descriptors.append({"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                            "platform": {"architecture": arch, "os": "linux"}})
        for part in _provenance(manifest, arch):
            blobs[_digest(part)] = part
        attestation = _provenance(manifest, arch)[2]
        attestations.append({"mediaType": OCI_MANIFEST, "digest": _digest(attestation), "size": len(attestation),
                             "platform": {"architecture": "unknown", "os": "unknown"},
                             "annotations": {"vnd.docker.reference.digest": _digest(manifest),
                                             "vnd.docker.reference.type": "attestation-manifest"}})
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors + attestations})
    blobs[_digest(index)] = index
    version = tag.rpartition(":")[2]
    top = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_INDEX, "digest": _digest(index), "size": len(index),
        "annotations": {"io.containerd.image.name": f"docker.io/{tag}", "org.opencontainers.image.ref.name": version}}]})
    with open(out, "wb") as f:
        tar = CanonicalTar(f, EPOCH)
        tar.directory("blobs")
        tar.directory("blobs/sha256")
        for digest, data in blobs.items():
            tar.file(f"blobs/sha256/{digest.split(':', 1)[1]}", data)
        tar.file("index.json", top)
        tar.file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        tar.close()


COMPOSED = ("zstd", "bundle", "multiplatform")
SINGLE_IMAGES = ("basic", "features", "large")
IMAGE_NAMES = (*SINGLE_IMAGES, *COMPOSED)


def corpus_tag(name: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The tag of corpus image `name` (a bundle's first image's first tag)."""
    if name == "bundle":
        return bundle_tags(1, namespace)[0]
    return f"{namespace}/corpus-{name}:v{CORPUS_VERSION}"


def build_corpus(home: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (once, then cached) the corpus archives; returns name → archive path."""
    out_dir = home / "corpus" / f"v{CORPUS_VERSION}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir / ".lock"), timeout=600):
        busybox = BUSYBOX.provision(package_cache(home)) / "bin" / "busybox"
        result: dict[str, Path] = {}
        for name, img in {**images(busybox), **delta_images(busybox)}.items():
            if names and name not in names:
                continue
            path = out_dir / f"{name}.tar"
            if not path.exists():
                build_from_layers(list(img.layers), path, tag=corpus_tag(name), labels=img.labels, env=list(img.env),
                                  entrypoint=list(img.entrypoint) if img.entrypoint else None,
                                  cmd=list(img.cmd) if img.cmd else None, user=img.user, workdir=img.workdir,
                                  epoch=EPOCH)
            result[name] = path
        for name in COMPOSED:
            if names and name not in names:
                continue
            path = out_dir / f"{name}.tar"
            if not path.exists():
                with tempfile.TemporaryDirectory(prefix=f"imgharness-corpus-{name}-") as tmp:
                    archive, keep = _compose(name, busybox, Path(tmp))
                    write_reference(archive, path, epoch=EPOCH, keep_compression=keep)
            result[name] = path
        return result


@dataclass(frozen=True)
class Loaded:
    """A corpus image on an engine under its default tag: the engine's image ID for it, and whether it was
    there already."""

    name: str
    tag: str
    image_id: str
    already: bool


def load_default_tags(engine: "Engine", home: Path, names: list[str]) -> list[Loaded]:
    """Put corpus images `names` on `engine` under their default tags (every tag of their archives, the
    harness's own names), for a person to save, diff or run them.  A tag already there is kept when it names
    the corpus image (same layers) and is an error when it names another one: nothing but our own images is
    ever retagged.  Every tag is checked before anything is loaded."""
    archives = build_corpus(home, names)
    wanted: dict[str, dict[str, set[tuple[str, ...]]]] = {}  # name → tag → layers of the images it may name
    for name in names:
        archive = read_archive(archives[name])
        for image in archive.images:
            for tag in image.repo_tags:
                wanted.setdefault(name, {}).setdefault(tag, set()).add(image.diff_ids)
    present: dict[str, str] = {}
    for name, tags in wanted.items():
        for tag, layers in tags.items():
            try:
                attrs = engine.inspect(tag)
            except ImageNotFound:
                continue
            if tuple((attrs.get("RootFS") or {}).get("Layers") or ()) not in layers:
                raise EngineError(f"{tag} names an image that is not corpus image {name!r}; left as it is, "
                                  "nothing loaded", engine=engine.id, hint="remove or rename that tag to load the corpus there")
            present[tag] = str(attrs["Id"])
    loaded = []
    for name in names:
        if any(tag not in present for tag in wanted[name]):
            engine.load(archives[name])
        for tag in wanted[name]:
            loaded.append(Loaded(name, tag, present.get(tag) or str(engine.inspect(tag)["Id"]), tag in present))
    return loaded


def unique_image(busybox: Path, out: Path, tag: str, seed: str, size: int) -> None:
    """An image no engine can already hold: busybox plus `size` bytes of `seed`, written to `out`."""
    def payload(tf: tarfile.TarFile) -> None:
        _dir(tf, "payload")
        _file(tf, "payload/random.bin", prng_bytes(seed, size))

    build_from_layers([busybox_layer(busybox), payload], out, tag=tag, epoch=EPOCH)
