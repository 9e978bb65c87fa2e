"""The canonical writer: fixed form, byte-identical output whatever the source, digests checked."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from harness.archive import read_archive
from harness.errors import DigestMismatch, UsageError
from harness.image import ArchiveFormat, Compression
from harness.reference import write_reference
from harness.reference.tarwriter import ustar_header
from tests import archives as A

IMAGES = [A.sample_image("b:2", seed="b", layers=3), A.sample_image("a:1", seed="a")]
SOURCES: dict[str, Callable[[Path], Path]] = {
    "legacy": lambda p: A.legacy(p, IMAGES),
    "docker-graph": lambda p: A.docker_oci(p, IMAGES),
    "docker-containerd": lambda p: A.docker_oci(p, IMAGES, how="gzip"),
    "podman": lambda p: A.podman(p, IMAGES),
    "ggcr": lambda p: A.ggcr(p, IMAGES),
    "oci-zstd": lambda p: A.oci(p, IMAGES, how="zstd"),
    "gzip-file": lambda p: A.compress_file(A.docker_oci(p, IMAGES), "gzip"),
}


def _write(source: Path, out: Path, **kw: object) -> bytes:
    write_reference(read_archive(source), out, **kw)  # type: ignore[arg-type]
    return out.read_bytes()


@pytest.mark.parametrize("layout", ["docker", "oci", "legacy"])
def test_every_source_format_gives_the_same_bytes(tmp_path: Path, layout: str) -> None:
    outputs = {name: _write(make(tmp_path / f"{name}.tar"), tmp_path / f"{name}.{layout}", layout=layout)
               for name, make in SOURCES.items()}
    assert len({hashlib.sha256(v).hexdigest() for v in outputs.values()}) == 1


def test_writing_twice_gives_the_same_bytes_and_reference_of_a_reference_is_itself(tmp_path: Path) -> None:
    src = A.docker_oci(tmp_path / "a.tar", IMAGES, how="gzip")
    first = _write(src, tmp_path / "1.tar")
    assert _write(src, tmp_path / "2.tar") == first
    assert _write(tmp_path / "1.tar", tmp_path / "3.tar") == first


def test_headers_are_minimal_ustar_with_fixed_times_owner_and_modes(tmp_path: Path) -> None:
    data = _write(A.docker_oci(tmp_path / "a.tar", IMAGES, how="gzip"), tmp_path / "r.tar", epoch=1234)
    assert data.endswith(b"\0" * 1024) and len(data) % 512 == 0
    with tarfile.open(tmp_path / "r.tar") as tf:
        members = tf.getmembers()
        consumed = tf.offset
    assert consumed == len(data) - 1024  # nothing but the two end blocks after the last member
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.pax_headers) == (1234, 0, 0, "", "", {})
        assert m.mode == (0o755 if m.isdir() else 0o644)
    offset = 0
    for m in members:
        header = data[m.offset:m.offset + 512]
        assert header[257:265] == b"ustar\x0000" and header[156:157] in (b"0", b"5")
        offset = m.offset
    assert offset > 0


def test_entry_order_is_dirs_then_images_by_tag_then_metadata(tmp_path: Path) -> None:
    write_reference(read_archive(A.docker_oci(tmp_path / "a.tar", IMAGES)), tmp_path / "r.tar")
    with tarfile.open(tmp_path / "r.tar") as tf:
        names = tf.getnames()
    a, b = read_archive(tmp_path / "r.tar").images
    assert (a.repo_tags, b.repo_tags) == (("a:1",), ("b:2",))
    blob = lambda d: f"blobs/sha256/{A.hexof(d)}"  # noqa: E731
    assert a.manifest is not None and b.manifest is not None
    assert names == ["blobs", "blobs/sha256",
                     blob(a.id), *map(blob, a.diff_ids), blob(a.manifest.digest),
                     blob(b.id), *map(blob, b.diff_ids), blob(b.manifest.digest),
                     "index.json", "manifest.json", "oci-layout"]


def test_docker_layout_reads_back_as_the_same_images_with_uncompressed_layers(tmp_path: Path) -> None:
    write_reference(read_archive(A.ggcr(tmp_path / "a.tar", IMAGES)), tmp_path / "r.tar")
    archive = read_archive(tmp_path / "r.tar")
    assert archive.format is ArchiveFormat.DOCKER_OCI and archive.problems == ()
    assert [(im.id, im.repo_tags) for im in archive.images] == [(IMAGES[1].id, ("a:1",)), (IMAGES[0].id, ("b:2",))]
    for im in archive.images:
        assert all(la.compression is Compression.NONE and la.digest == la.diff_id for la in im.layers)
        assert {la.media_type for la in im.layers} == {"application/vnd.oci.image.layer.v1.tar"}
    index = json.loads(A.tar_member(tmp_path / "r.tar", "index.json"))
    assert index["manifests"][0]["annotations"] == {"io.containerd.image.name": "docker.io/library/a:1",
                                                    "org.opencontainers.image.ref.name": "1"}
    manifest_json = json.loads(A.tar_member(tmp_path / "r.tar", "manifest.json"))
    assert manifest_json[0] == {"Config": f"blobs/sha256/{A.hexof(IMAGES[1].id)}", "RepoTags": ["docker.io/library/a:1"],
                                "Layers": [f"blobs/sha256/{A.hexof(d)}" for d in IMAGES[1].diff_ids]}


def test_oci_layout_has_no_manifest_json(tmp_path: Path) -> None:
    write_reference(read_archive(A.podman(tmp_path / "a.tar", IMAGES)), tmp_path / "r.tar", layout="oci")
    archive = read_archive(tmp_path / "r.tar")
    assert archive.format is ArchiveFormat.OCI and archive.entry("manifest.json") is None
    assert [im.repo_tags for im in archive.images] == [("a:1",), ("b:2",)]


def test_images_with_one_config_merge_and_get_a_descriptor_per_tag(tmp_path: Path) -> None:
    im = A.sample_image("x:1")
    im.tags = ["docker.io/library/x:1", "x:latest", "quay.io/o/x:2"]
    write_reference(read_archive(A.docker_oci(tmp_path / "a.tar", [im, A.TestImage(im.layers, tags=["x:1"])])),
                    tmp_path / "r.tar")
    index = json.loads(A.tar_member(tmp_path / "r.tar", "index.json"))
    assert [d["annotations"]["io.containerd.image.name"] for d in index["manifests"]] == [
        "quay.io/o/x:2", "docker.io/library/x:1", "docker.io/library/x:latest"]
    assert len({d["digest"] for d in index["manifests"]}) == 1
    assert json.loads(A.tar_member(tmp_path / "r.tar", "manifest.json"))[0]["RepoTags"] == [
        "quay.io/o/x:2", "docker.io/library/x:1", "docker.io/library/x:latest"]


def test_untagged_image_gets_one_plain_descriptor(tmp_path: Path) -> None:
    write_reference(read_archive(A.oci(tmp_path / "a.tar", [A.sample_image("")])), tmp_path / "r.tar")
    index = json.loads(A.tar_member(tmp_path / "r.tar", "index.json"))
    assert len(index["manifests"]) == 1 and "annotations" not in index["manifests"][0]


def test_source_date_epoch_sets_every_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = A.docker_oci(tmp_path / "a.tar", IMAGES)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    _write(src, tmp_path / "r.tar")
    with tarfile.open(tmp_path / "r.tar") as tf:
        assert {m.mtime for m in tf.getmembers()} == {1700000000}
    _write(src, tmp_path / "e.tar", epoch=5)
    with tarfile.open(tmp_path / "e.tar") as tf:
        assert {m.mtime for m in tf.getmembers()} == {5}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        _write(src, tmp_path / "x.tar")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    _write(src, tmp_path / "z.tar")
    with tarfile.open(tmp_path / "z.tar") as tf:
        assert {m.mtime for m in tf.getmembers()} == {0}


def test_keep_compression_preserves_blobs_and_manifest_digests(tmp_path: Path) -> None:
    src = read_archive(A.docker_oci(tmp_path / "a.tar", IMAGES, how="gzip"))
    write_reference(src, tmp_path / "r.tar", keep_compression=True)
    out = read_archive(tmp_path / "r.tar")
    assert out.problems == ()
    by_id = {im.id: im for im in src.images}
    for im in out.images:
        assert im.manifest is not None and by_id[im.id].manifest is not None
        assert im.manifest.digest == by_id[im.id].manifest.digest  # type: ignore[union-attr]
        assert im.raw_manifest == by_id[im.id].raw_manifest
        assert [la.digest for la in im.layers] == [la.digest for la in by_id[im.id].layers]
        assert {la.compression for la in im.layers} == {Compression.GZIP}


def test_keep_compression_without_a_source_manifest_generates_one(tmp_path: Path) -> None:
    write_reference(read_archive(A.ggcr(tmp_path / "a.tar", IMAGES)), tmp_path / "r.tar", keep_compression=True)
    out = read_archive(tmp_path / "r.tar")
    assert {la.media_type for im in out.images for la in im.layers} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    assert out.problems == ()


def test_a_layer_that_does_not_match_its_diff_id_aborts_and_leaves_nothing(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", IMAGES)
    bad = A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGES[0].diff_ids[2])}.tar": A.layer({"x": b"y"})})
    archive = read_archive(bad)
    assert archive.problems
    out = tmp_path / "r.tar"
    out.write_bytes(b"previous")
    with pytest.raises(DigestMismatch, match="layer 2"):
        write_reference(archive, out)
    assert out.read_bytes() == b"previous"
    assert not (tmp_path / "r.tar.partial").exists()


def test_layout_and_option_errors(tmp_path: Path) -> None:
    archive = read_archive(A.docker_oci(tmp_path / "a.tar", IMAGES))
    with pytest.raises(UsageError, match="unknown layout"):
        write_reference(archive, tmp_path / "r.tar", layout="zip")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="keep-compression"):
        write_reference(archive, tmp_path / "r.tar", layout="legacy", keep_compression=True)
    empty = read_archive(A.oci(tmp_path / "e.tar", [A.TestImage([], tags=["e:1"])]))
    with pytest.raises(UsageError, match="without layers"):
        write_reference(empty, tmp_path / "r.tar", layout="legacy")
    assert not list(tmp_path.glob("r.tar*"))


def test_sizes_beyond_octal_use_base256() -> None:
    header = ustar_header("big", typeflag=b"0", mode=0o644, size=9 << 30, mtime=0)
    info = tarfile.TarInfo.frombuf(header, "utf-8", "strict")
    assert info.size == 9 << 30 and header[124] == 0x80
    long_name = "d/" * 60 + "file"
    assert tarfile.TarInfo.frombuf(ustar_header(long_name, typeflag=b"0", mode=0o644, size=0, mtime=0),
                                   "utf-8", "strict").name == long_name
