"""Every digest is checked while reading; a mismatch is a `digest-mismatch` finding and reading goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.findings import Category
from tests import archives as A

IMAGE = A.sample_image("m:1", seed="m")


def _problems(path: Path) -> list[tuple[str, object, object]]:
    archive = read_archive(path)
    assert all(p.category is Category.DIGEST_MISMATCH for p in archive.problems)
    return [(p.where, p.a, p.b) for p in archive.problems]


def test_blob_whose_content_differs_from_its_name(tmp_path: Path) -> None:
    path = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    name = f"blobs/sha256/{A.hexof(IMAGE.diff_ids[1])}"
    other = A.layer({"etc/evil": b"changed\n"})
    problems = _problems(A.rewrite(path, tmp_path / "b.tar", {name: other}))
    assert problems == [(f"archive:{name}", IMAGE.diff_ids[1], A.sha(other)),
                        ("image[0].layer[1]", IMAGE.diff_ids[1], A.sha(other))]


@pytest.mark.parametrize("defer", [False, True], ids=["eager", "deferred"])
def test_gzip_layer_whose_content_differs_from_the_diff_id(tmp_path: Path, defer: bool) -> None:
    """The blob matches its name, but the config's diff_id names other content (found by both kinds of read)."""
    changed = A.TestImage(IMAGE.layers, tags=["m:1"])
    config = json.loads(changed.config)
    config["rootfs"]["diff_ids"][0] = A.sha(b"something else")
    raw = json.dumps(config).encode()
    manifest = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_MANIFEST,
                        "config": {"mediaType": A.OCI_CONFIG, "digest": A.sha(raw), "size": len(raw)},
                        "layers": json.loads(IMAGE.manifest("gzip"))["layers"]})
    members = [A.F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), A.F(f"blobs/sha256/{A.hexof(A.sha(raw))}", raw)]
    members += [A.F(f"blobs/sha256/{A.hexof(A.sha(b))}", b) for b in IMAGE.blobs("gzip")]
    members += [A.F(f"blobs/sha256/{A.hexof(A.sha(manifest))}", manifest),
                A.F("index.json", A.jdump({"schemaVersion": 2, "manifests": [
                    {"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest), "size": len(manifest)}]}))]
    archive = read_archive(A.write_tar(tmp_path / "a.tar", members), defer_checks=defer)
    assert [(p.where, p.a, p.b, p.note) for p in archive.problems] == [
        ("image[0].layer[0]", A.sha(b"something else"), IMAGE.diff_ids[0], "diff_id vs uncompressed layer")]
    assert archive.images[0].layers[0].diff_id == A.sha(b"something else")


def test_config_whose_content_differs_from_its_file_name(tmp_path: Path) -> None:
    path = A.legacy(tmp_path / "a.tar", [IMAGE])
    config = IMAGE.config.replace(b"PATH=/bin", b"PATH=/sbin")
    problems = _problems(A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGE.id)}.json": config}))
    assert problems == [(f"archive:{A.hexof(IMAGE.id)}.json", IMAGE.id, A.sha(config))]
    assert read_archive(tmp_path / "b.tar").images[0].id == A.sha(config)


def test_descriptor_size_that_lies(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [IMAGE], how="gzip")
    index = json.loads(A.tar_member(path, "index.json"))
    index["manifests"][0]["size"] += 1
    problems = _problems(A.rewrite(path, tmp_path / "b.tar", {"index.json": A.jdump(index)}))
    size = len(IMAGE.manifest("gzip"))
    assert problems == [("archive:index.json:$.manifests[0].size", size + 1, size)]


def test_podman_layer_named_by_another_diff_id(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", [IMAGE])
    name = f"{A.hexof(IMAGE.diff_ids[0])}.tar"
    other = A.layer({"x": b"y"})
    problems = _problems(A.rewrite(path, tmp_path / "b.tar", {name: other}))
    assert sorted(problems) == sorted([
        ("image[0].layer[0]", IMAGE.diff_ids[0], A.sha(other)),
        (f"archive:{name}", IMAGE.diff_ids[0], A.sha(other)),
    ])


def test_manifest_json_disagreeing_with_the_oci_manifest(tmp_path: Path) -> None:
    path = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    items = json.loads(A.tar_member(path, "manifest.json"))
    items[0]["Layers"].reverse()
    problems = _problems(A.rewrite(path, tmp_path / "b.tar", {"manifest.json": A.jdump(items)}))
    assert problems == [
        ("archive:manifest.json[0].Layers[0]", IMAGE.diff_ids[0], IMAGE.diff_ids[1]),
        ("archive:manifest.json[0].Layers[1]", IMAGE.diff_ids[1], IMAGE.diff_ids[0]),
    ]
