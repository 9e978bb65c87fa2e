"""Real archive files (written with tarfile by `tests.archives`) read with `read_archive` and diffed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness.archive import read_archive
from harness.diff import DiffResult, diff_archives
from harness.findings import Category, Ignores
from tests import archives as A

IMAGE = A.sample_image("test:latest")
CHANGED = A.TestImage(IMAGE.layers[:1] + [A.layer({"etc/a1.txt": b"changed\n", "bin/a1": b"x" * 100})])
OTHER = A.sample_image("other:1", seed="c", layers=1)


def retar(src: Path, dst: Path, headers: dict[str, dict[str, Any]]) -> Path:
    """A copy of a tar with some entries' header fields changed, everything else as it was."""
    with tarfile.open(src) as tf, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        for ti in tf.getmembers():
            data = tf.extractfile(ti).read() if ti.isreg() else None  # type: ignore[union-attr]
            for field, value in headers.get(ti.name, {}).items():
                setattr(ti, field, value)
            out.addfile(ti, io.BytesIO(data) if data is not None else None)
    return dst


def diff(a: Path, b: Path, ignores: Ignores = Ignores()) -> DiffResult:
    return diff_archives(read_archive(a), read_archive(b), ignores)


def kinds(result: DiffResult) -> list[tuple[str, str]]:
    return [(f.category.value, f.where) for f in result.findings]


WRITERS = {
    "docker-oci": lambda p, ims: A.docker_oci(p, ims),
    "containerd": lambda p, ims: A.docker_oci(p, ims, how="gzip"),
    "legacy": A.legacy,
    "podman": A.podman,
    "ggcr": A.ggcr,
    "oci": A.oci,
    "oci-nested": lambda p, ims: A.oci(p, ims, nested=True),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_the_same_save_twice_is_equivalent(tmp_path: Path, fmt: str) -> None:
    write = WRITERS[fmt]
    result = diff(write(tmp_path / "a.tar", [IMAGE, OTHER]), write(tmp_path / "b.tar", [IMAGE, OTHER]))
    assert result.equivalent, result.findings


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_changed_file_is_reported_in_every_format_and_nothing_else(tmp_path: Path, fmt: str) -> None:
    write = WRITERS[fmt]
    result = diff(write(tmp_path / "a.tar", [IMAGE, OTHER]), write(tmp_path / "b.tar", [CHANGED, OTHER]))
    label = "image[0](linux/amd64)" if fmt == "oci-nested" else "image[0]"  # an index names the platform
    assert kinds(result) == [("content", f"{label}.layer[1]:etc/a1.txt")]


def test_save_drift_in_outer_headers_is_mtime_and_ignorable(tmp_path: Path) -> None:
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    saved_later = {"mtime": 1_730_000_000}
    b = retar(a, tmp_path / "b.tar", {"blobs/sha256": saved_later, "manifest.json": saved_later})
    result = diff(a, b)
    assert [(f.category.value, f.where, f.a, f.b) for f in result.findings] == [
        ("mtime", "archive:blobs/sha256", 0, 1_730_000_000),
        ("mtime", "archive:manifest.json", 0, 1_730_000_000),
    ]
    assert diff(a, b, Ignores(frozenset({Category.MTIME}))).equivalent


def test_graph_driver_against_containerd_store_save(tmp_path: Path) -> None:
    result = diff(A.docker_oci(tmp_path / "a.tar", [IMAGE]), A.docker_oci(tmp_path / "b.tar", [IMAGE], how="gzip"))
    assert kinds(result) == [
        ("compression", "image[0].layer[0]"), ("compression", "image[0].layer[1]"),
        ("removed", "archive:repositories"),
        ("manifest", "image[0].manifest:$.config.mediaType"), ("manifest", "image[0].manifest:$.mediaType"),
    ]


@pytest.mark.parametrize("other", ["legacy", "podman", "oci"])
def test_the_same_image_in_another_format_is_one_archive_format_finding(tmp_path: Path, other: str) -> None:
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    b = WRITERS[other](tmp_path / "b.tar", [IMAGE])
    assert kinds(diff(a, b, Ignores(frozenset({Category.COMPRESSION})))) == [("archive-format", "archive")]


def test_legacy_duplicate_layer_symlinks_follow_their_layer(tmp_path: Path) -> None:
    dup = A.TestImage([IMAGE.layers[0], IMAGE.layers[1], IMAGE.layers[0]])
    dup_changed = A.TestImage([CHANGED.layers[0], CHANGED.layers[1], CHANGED.layers[0]])
    result = diff(A.legacy(tmp_path / "a.tar", [dup]), A.legacy(tmp_path / "b.tar", [dup_changed]))
    assert kinds(result) == [("content", "image[0].layer[1]:etc/a1.txt")]


def test_an_image_only_in_one_archive_is_one_finding(tmp_path: Path) -> None:
    result = diff(A.docker_oci(tmp_path / "a.tar", [IMAGE, OTHER]), A.docker_oci(tmp_path / "b.tar", [IMAGE]))
    assert kinds(result) == [("removed", "image[1]")]


def test_digest_mismatches_found_by_the_reader_are_findings(tmp_path: Path) -> None:
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    config = f"blobs/sha256/{A.hexof(IMAGE.id)}"
    broken = A.rewrite(a, tmp_path / "b.tar", {config: IMAGE.config.replace(b"PATH=/bin", b"PATH=/usr")})
    result = diff(a, broken)
    assert Category.DIGEST_MISMATCH in {f.category for f in result.findings}
    assert all(f.where.startswith("b:") for f in result.findings if f.category is Category.DIGEST_MISMATCH)


def test_podman_against_go_containerregistry_shows_layout_not_content(tmp_path: Path) -> None:
    result = diff(A.podman(tmp_path / "a.tar", [IMAGE]), A.ggcr(tmp_path / "b.tar", [IMAGE]))
    categories = {f.category for f in result.findings}
    assert categories <= {Category.ARCHIVE_FORMAT, Category.ORDER, Category.COMPRESSION, Category.REMOVED}
    assert [f.where for f in result.findings if f.category is Category.ARCHIVE_FORMAT] == [
        f"archive:{A.hexof(IMAGE.id)}.json",
    ]
    assert all(f.where.startswith("archive:") for f in result.findings if f.category is Category.REMOVED)
