"""Broken and hostile inputs end in one `MalformedArchive` with a one-line message, never a traceback."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.errors import ArchiveError, MalformedArchive
from harness.findings import Category
from harness.image import Archive
from tests import archives as A

IMAGE = A.sample_image("z:1", seed="z")


def _fails(path: Path, match: str) -> MalformedArchive:
    with pytest.raises(MalformedArchive, match=match) as info:
        read_archive(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a.tar").write_bytes(b"")
    _fails(tmp_path / "a.tar", "not a valid tar")


def test_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.tar").write_bytes(os.urandom(4096))
    _fails(tmp_path / "a.tar", "not a valid tar")


def test_missing_file_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot read"):
        read_archive(tmp_path / "nope.tar")


def test_tar_without_image_metadata(tmp_path: Path) -> None:
    _fails(A.write_tar(tmp_path / "a.tar", [A.F("hello", b"x")]), "not an image archive")


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_inside_data(tmp_path: Path, cut: float) -> None:
    data = A.docker_oci(tmp_path / "a.tar", [IMAGE]).read_bytes()
    size = len(data) - 1024  # before the end blocks
    (tmp_path / "b.tar").write_bytes(data[: int(size * cut) // 512 * 512 + 100])
    _fails(tmp_path / "b.tar", "unexpected end of data|truncated|broken tar")


def test_truncated_inside_a_header(tmp_path: Path) -> None:
    data = A.tar_bytes([A.F("a", b"x" * 512), A.F("b", b"y")], fmt=tarfile.USTAR_FORMAT)
    (tmp_path / "a.tar").write_bytes(data[: 512 + 512 + 200])
    _fails(tmp_path / "a.tar", "truncated inside a header")


def test_garbage_after_a_member(tmp_path: Path) -> None:
    data = A.tar_bytes([A.F("manifest.json", b"[]")], fmt=tarfile.USTAR_FORMAT)
    (tmp_path / "a.tar").write_bytes(data[:1024] + os.urandom(512) + data[1024:])
    _fails(tmp_path / "a.tar", "invalid tar header at offset 1024")


def _missing(archive: Archive) -> list[tuple[str, str]]:
    return [(f.where, f.a) for f in archive.problems if f.category is Category.MISSING]


def test_truncated_at_a_member_boundary_misses_blobs_and_reads_the_rest(tmp_path: Path) -> None:
    """An archive that names a blob it lacks (as engines write them) is read: the blob is a `missing`
    problem, the layer is known by its descriptor, and every other layer still reads."""
    path = A.oci(tmp_path / "a.tar", [IMAGE], how="gzip")
    gone = A.sha(IMAGE.blobs("gzip")[1])
    with tarfile.open(path) as tf:
        keep = [m for m in tf.getmembers() if m.name != f"blobs/sha256/{A.hexof(gone)}"]
        members = [A.F(m.name, tf.extractfile(m).read() if m.isreg() else b"", dir=m.isdir())  # type: ignore[union-attr]
                   for m in keep]
    archive = read_archive(A.write_tar(tmp_path / "b.tar", members))
    assert _missing(archive) == [("image[0].layer[1]", gone)]
    image = archive.images[0]
    assert image.id == IMAGE.id and not image.complete
    assert [la.present for la in image.layers] == [True, False] and image.lacking == ("layer[1]",)
    assert image.layers[1].diff_id == IMAGE.diff_ids[1] and image.layers[1].digest == gone
    assert [f.path for f in image.layers[0].files()] == [f.path for f in read_archive(path).images[0].layers[0].files()]
    with pytest.raises(MalformedArchive, match=r"image\[0\]\.layer\[1\]: blob sha256:\w+ is missing"):
        list(image.layers[1].files())


def test_missing_layer_file_in_a_docker_archive(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", [IMAGE])
    archive = read_archive(A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGE.diff_ids[1])}.tar": None}))
    assert _missing(archive) == [("image[0].layer[1]", IMAGE.diff_ids[1])]
    assert archive.images[0].layers[1].diff_id == IMAGE.diff_ids[1]


def test_missing_config_leaves_the_image_known_by_its_config_digest(tmp_path: Path) -> None:
    path = A.legacy(tmp_path / "a.tar", [IMAGE])
    archive = read_archive(A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGE.id)}.json": None}))
    image = archive.images[0]
    assert _missing(archive) == [("image[0].config", IMAGE.id)]
    assert image.config_missing and image.id == IMAGE.id and image.config == {}
    assert [la.present for la in image.layers] == [True, True]
    assert image.repo_tags == ("z:1",)


@pytest.mark.parametrize("name, content, match", [
    ("manifest.json", b"[{", "manifest.json: invalid JSON"),
    ("manifest.json", b'{"Config": 1}', "manifest.json: expected array, found object"),
    ("manifest.json", b'[{"Config": 1}]', r"manifest.json\[0\].Config: expected string, found number"),
    ("manifest.json", b"[NaN]", "manifest.json: invalid JSON: NaN is not JSON"),
    ("manifest.json", b"\xff\xfe[]", "manifest.json: not UTF-8"),
    ("manifest.json", b"[" * 300 + b"]" * 300, "nested deeper than 200"),
    ("manifest.json", b"[" * 100000 + b"]" * 100000, "nested deeper than 200"),
], ids=["truncated", "object", "config-type", "nan", "not-utf8", "deep", "very-deep"])
def test_bad_metadata_json(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    _fails(A.rewrite(path, tmp_path / "b.tar", {name: content}), match)


def test_bad_config_json(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [IMAGE])
    config = f"blobs/sha256/{A.hexof(IMAGE.id)}"
    _fails(A.rewrite(path, tmp_path / "b.tar", {config: b'{"rootfs": []}'}), "rootfs: expected object, found array")


def test_oversized_metadata_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.archive.read_context as read_context

    monkeypatch.setattr(read_context, "MAX_JSON_BYTES", 100)
    _fails(A.docker_oci(tmp_path / "a.tar", [IMAGE]), "exceeds the 0 MiB limit for metadata")


def test_layer_count_differs_from_diff_ids(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", [IMAGE])
    items = json.loads(A.tar_member(path, "manifest.json"))
    items[0]["Layers"].pop()
    _fails(A.rewrite(path, tmp_path / "b.tar", {"manifest.json": A.jdump(items)}),
           "1 layers but the config lists 2 diff_ids")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "blobs/../../x"])
def test_entry_names_outside_the_archive(tmp_path: Path, name: str) -> None:
    _fails(A.write_tar(tmp_path / "a.tar", [A.F(name, b"x"), A.F("manifest.json", b"[]")]),
           "climbs out of the archive|absolute entry name")


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_symlinked_layer_that_leaves_the_archive(tmp_path: Path, target: str) -> None:
    path = A.podman(tmp_path / "a.tar", [IMAGE])
    items = json.loads(A.tar_member(path, "manifest.json"))
    items[0]["Layers"][0] = "evil/layer.tar"
    members = [A.F("evil", dir=True), A.F("evil/layer.tar", symlink=target),
               A.F("manifest.json", A.jdump(items))]
    with tarfile.open(path) as tf:
        members += [A.F(m.name, tf.extractfile(m).read()) for m in tf.getmembers()  # type: ignore[union-attr]
                    if m.isreg() and m.name != "manifest.json"]
    _fails(A.write_tar(tmp_path / "b.tar", members), "leaves the archive|link to absolute path")


def test_symlink_loop(tmp_path: Path) -> None:
    items = [{"Config": "c.json", "RepoTags": [], "Layers": ["a"]}]
    one = A.TestImage(IMAGE.layers[:1])
    members = [A.F("a", symlink="b"), A.F("b", symlink="a"), A.F("c.json", one.config),
               A.F("manifest.json", A.jdump(items))]
    _fails(A.write_tar(tmp_path / "a.tar", members), "more than 16 links")


def test_duplicate_entries(tmp_path: Path) -> None:
    _fails(A.write_tar(tmp_path / "a.tar", [A.F("manifest.json", b"[]"), A.F("./manifest.json", b"[]")]),
           "duplicate entry 'manifest.json'")


def test_non_utf8_entry_names(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "a.tar", "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        tf.addfile(tarfile.TarInfo("caf\xe9"))
    _fails(tmp_path / "a.tar", "entry name is not UTF-8")


def test_unsupported_digest_algorithm(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [IMAGE])
    index = json.loads(A.tar_member(path, "index.json"))
    index["manifests"][0]["digest"] = "sha512:" + "0" * 128
    _fails(A.rewrite(path, tmp_path / "b.tar", {"index.json": A.jdump(index)}), "unsupported digest algorithm 'sha512'")


def test_digest_that_is_a_path(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [IMAGE])
    index = json.loads(A.tar_member(path, "index.json"))
    index["manifests"][0]["digest"] = "sha256:../../etc/passwd"
    _fails(A.rewrite(path, tmp_path / "b.tar", {"index.json": A.jdump(index)}), "malformed digest")


def test_truncated_layer_tar_is_malformed_when_listing_files(tmp_path: Path) -> None:
    bad = IMAGE.layers[0][:1024 + 100]
    im = A.TestImage([bad], tags=["t:1"])
    archive = read_archive(A.docker_oci(tmp_path / "a.tar", [im]))
    with pytest.raises(MalformedArchive, match=r"image\[0\]\.layer\[\d\] \(blobs/sha256/\w+\): tar truncated"):
        list(archive.images[0].layers[0].files())
