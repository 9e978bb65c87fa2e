"""Every archive format reads into the same images: ids, tags, diff_ids, layers, files."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Callable

import pytest

from harness.archive import read_archive
from harness.image import ArchiveFormat, Compression, EntryType
from tests import archives as A

IMAGES = [A.sample_image("a:1", seed="a"), A.sample_image("b:2", seed="b", layers=3)]

FORMATS: dict[str, tuple[Callable[[Path], Path], ArchiveFormat, Compression]] = {
    "legacy": (lambda p: A.legacy(p, IMAGES), ArchiveFormat.DOCKER_LEGACY, Compression.NONE),
    "docker-graph": (lambda p: A.docker_oci(p, IMAGES), ArchiveFormat.DOCKER_OCI, Compression.NONE),
    "docker-containerd": (lambda p: A.docker_oci(p, IMAGES, how="gzip"), ArchiveFormat.DOCKER_OCI, Compression.GZIP),
    "podman": (lambda p: A.podman(p, IMAGES), ArchiveFormat.DOCKER_ARCHIVE, Compression.NONE),
    "ggcr": (lambda p: A.ggcr(p, IMAGES), ArchiveFormat.DOCKER_ARCHIVE, Compression.GZIP),
    "oci-zstd": (lambda p: A.oci(p, IMAGES, how="zstd"), ArchiveFormat.OCI, Compression.ZSTD),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_reads_into_the_same_images(tmp_path: Path, name: str) -> None:
    make, fmt, compression = FORMATS[name]
    archive = read_archive(make(tmp_path / "a.tar"))
    assert archive.format is fmt
    assert archive.problems == ()
    assert [(im.id, im.repo_tags) for im in archive.images] == [(im.id, tuple(im.tags)) for im in IMAGES]
    for got, want in zip(archive.images, IMAGES):
        assert got.raw_config == want.config
        assert got.diff_ids == tuple(want.diff_ids)
        assert [la.diff_id for la in got.layers] == want.diff_ids
        assert {la.compression for la in got.layers} == {compression}
        assert [la.position for la in got.layers] == list(range(len(want.layers)))
        for la, blob in zip(got.layers, want.layers):
            with la.uncompressed() as s:
                assert s.read() == blob
            with la.compressed() as s:
                assert hashlib.sha256(s.read()).hexdigest() == la.digest.split(":")[1]


@pytest.mark.parametrize("name", FORMATS)
def test_layer_files_carry_headers_and_content_digests(tmp_path: Path, name: str) -> None:
    archive = read_archive(FORMATS[name][0](tmp_path / "a.tar"))
    files = list(archive.images[1].layers[2].files())
    assert [(f.position, f.path, f.header.type) for f in files] == [
        (0, "bin", EntryType.DIR), (1, "etc", EntryType.DIR), (2, "bin/b2", EntryType.FILE),
        (3, "etc/b2.txt", EntryType.FILE)]
    assert files[3].digest == A.sha(b"b layer 2\n")
    assert files[2].header.size == 200 and files[0].digest is None


def test_docker_oci_keeps_manifest_descriptor_and_raw_manifest(tmp_path: Path) -> None:
    archive = read_archive(A.docker_oci(tmp_path / "a.tar", IMAGES))
    im = archive.images[0]
    assert im.raw_manifest == IMAGES[0].manifest("none")
    assert im.manifest is not None and im.manifest.digest == A.sha(IMAGES[0].manifest("none"))
    assert im.manifest.annotations["io.containerd.image.name"] == "docker.io/library/a:1"
    assert im.config_entry == f"blobs/sha256/{A.hexof(IMAGES[0].id)}"
    assert archive.index is not None and len(archive.index["manifests"]) == 2
    assert archive.manifest_json is not None and archive.manifest_json[1]["RepoTags"] == ["b:2"]
    assert archive.repositories == {"a": {"1": A.hexof(IMAGES[0].diff_ids[-1])}, "b": {"2": A.hexof(IMAGES[1].diff_ids[-1])}}


def test_legacy_layer_held_twice_is_a_symlink_to_the_first(tmp_path: Path) -> None:
    base = A.layer({"etc/base": b"base\n"})
    im = A.TestImage([base, A.layer({"etc/x": b"x"}), base], tags=["dup:1"])
    archive = read_archive(A.legacy(tmp_path / "a.tar", [im]))
    layers = archive.images[0].layers
    assert layers[0].entry_name == layers[2].entry_name != layers[1].entry_name
    assert archive.problems == ()
    link = [e for e in archive.entries if e.header.type is EntryType.SYMLINK]
    assert len(link) == 1 and link[0].header.linkname.startswith("../")


def test_podman_symlinked_layers_resolve_to_the_diff_id_named_tars(tmp_path: Path) -> None:
    archive = read_archive(A.podman(tmp_path / "a.tar", IMAGES))
    assert archive.images[0].layers[0].entry_name == f"{A.hexof(IMAGES[0].diff_ids[0])}.tar"
    assert sum(e.header.type is EntryType.SYMLINK for e in archive.entries) == 5


def test_nested_index_keeps_every_present_platform_and_skips_absent_ones(tmp_path: Path) -> None:
    amd = A.sample_image("multi:1", seed="x")
    arm = A.TestImage(amd.layers[:1], tags=["multi:1"], architecture="arm64")
    archive = read_archive(A.oci(tmp_path / "a.tar", [amd, arm], nested=True, missing_platforms=2))
    assert archive.format is ArchiveFormat.OCI
    assert [(im.id, im.repo_tags) for im in archive.images] == [(amd.id, ("multi:1",)), (arm.id, ("multi:1",))]
    assert [im.manifest.platform for im in archive.images if im.manifest] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    assert archive.problems == ()


def test_attestation_manifests_are_not_images(tmp_path: Path) -> None:
    im = A.sample_image("att:1")
    statement = b'{"_type":"https://in-toto.io/Statement/v0.1"}'
    attestation = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.in-toto+json", "digest": A.sha(statement),
                                      "size": len(statement)}, "layers": []})
    path = A.oci(tmp_path / "a.tar", [im])
    index = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_INDEX, "manifests": [
        {"mediaType": A.OCI_MANIFEST, "digest": A.sha(im.manifest("gzip")), "size": len(im.manifest("gzip"))},
        {"mediaType": A.OCI_MANIFEST, "digest": A.sha(attestation), "size": len(attestation),
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]})
    with tarfile.open(path) as tf:
        members = [A.F(m.name, tf.extractfile(m).read() if m.isreg() else b"", dir=m.isdir())  # type: ignore[union-attr]
                   for m in tf.getmembers() if m.name != "index.json"]
    members += [A.F(f"blobs/sha256/{A.hexof(A.sha(attestation))}", attestation),
                A.F(f"blobs/sha256/{A.hexof(A.sha(statement))}", statement), A.F("index.json", index)]
    archive = read_archive(A.write_tar(tmp_path / "b.tar", members))
    assert [x.id for x in archive.images] == [im.id]


def test_untagged_images_have_no_tags(tmp_path: Path) -> None:
    im = A.sample_image("")
    for make in (A.docker_oci, A.legacy, A.oci):
        assert read_archive(make(tmp_path / f"{make.__name__}.tar", [im])).images[0].repo_tags == ()


def test_entries_keep_every_header_and_digest_in_archive_order(tmp_path: Path) -> None:
    path = A.write_tar(tmp_path / "a.tar", [A.F("./manifest.json", b"[]", mtime=1234, uid=7), A.F("x", dir=True)])
    archive = read_archive(path, source="engine:ref", whole_digest=True)
    assert archive.source == "engine:ref" and archive.images == ()
    first, second = archive.entries
    assert (first.position, first.header.name, first.header.mtime, first.header.uid) == (0, "./manifest.json", 1234, 7)
    assert first.digest == A.sha(b"[]") and second.digest is None and second.header.type is EntryType.DIR
    assert archive.digest == A.sha(path.read_bytes()) and archive.size == path.stat().st_size
    assert archive.entry("./manifest.json") is first


def test_whole_digest_of_a_compressed_archive_is_the_file_digest(tmp_path: Path) -> None:
    path = A.compress_file(A.docker_oci(tmp_path / "a.tar", IMAGES), "gzip")
    archive = read_archive(path, whole_digest=True)
    assert archive.digest == A.sha(path.read_bytes())
    assert read_archive(path).digest == ""
