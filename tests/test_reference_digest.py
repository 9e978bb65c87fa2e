"""The digest of a canonical archive worked out without writing it is the sha256 of the archive `write_reference`
writes, for every source format, layout and option, by either way of working it out; refusals are the same."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import pytest

from harness.archive import read_archive
from harness.errors import DigestMismatch, HarnessError, UsageError
from harness.reference import write_reference
from harness.reference.tarwriter import DigestTar, Unsized
from harness.reference.writer import reference_digest
from tests import archives as A

IMAGES = [A.sample_image("b:2", seed="b", layers=3), A.sample_image("a:1", seed="a")]
PLATFORMS = [A.platform_image("amd64", seed="x", tags=["m:1"]), A.platform_image("arm64", seed="y", tags=["m:1"])]
SOURCES: dict[str, Callable[[Path], Path]] = {
    "legacy": lambda p: A.legacy(p, IMAGES),
    "docker-graph": lambda p: A.docker_oci(p, IMAGES),
    "docker-containerd": lambda p: A.docker_oci(p, IMAGES, how="gzip"),
    "podman": lambda p: A.podman(p, IMAGES),
    "oci-zstd": lambda p: A.oci(p, IMAGES, how="zstd"),
    "gzip-file": lambda p: A.compress_file(A.docker_oci(p, IMAGES), "gzip"),
    "buildx-uncompressed": lambda p: A.buildx_oci(p, PLATFORMS, how="none"),
    "buildx-gzip": lambda p: A.buildx_oci(p, PLATFORMS),
    "helm": lambda p: A.helm_layout(p, with_image=IMAGES[1]),
}


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("keep_compression", [False, True], ids=["uncompressed", "keep-compression"])
@pytest.mark.parametrize("layout", ["docker", "oci", "legacy"])
@pytest.mark.parametrize("defer_hashing", [False, True], ids=["hashed", "deferred"])
@pytest.mark.parametrize("source", SOURCES)
def test_the_digest_is_the_written_archives(tmp_path: Path, source: str, layout: str, keep_compression: bool,
                                            defer_hashing: bool) -> None:
    archive = read_archive(SOURCES[source](tmp_path / "src.tar"), defer_hashing=defer_hashing)
    out = tmp_path / "canonical.tar"
    try:
        write_reference(archive, out, layout=layout, keep_compression=keep_compression, epoch=123)  # type: ignore[arg-type]
    except HarnessError as refused:
        with pytest.raises(type(refused), match=refused.message[:40].replace("(", ".").replace(")", ".")):
            reference_digest(archive, tmp_path, layout=layout, keep_compression=keep_compression,  # type: ignore[arg-type]
                             epoch=123)
        return
    before = sorted(tmp_path.iterdir())
    assert reference_digest(archive, tmp_path, layout=layout, keep_compression=keep_compression,  # type: ignore[arg-type]
                            epoch=123) == _sha256(out)
    assert sorted(tmp_path.iterdir()) == before  # nothing left behind


def test_both_ways_are_taken(tmp_path: Path) -> None:
    """Uncompressed layers the reader hashed: hashed as formed.  Layers to inflate: written and hashed."""
    hashed = read_archive(A.docker_oci(tmp_path / "a.tar", IMAGES))
    tar = DigestTar(0)
    from harness.reference.writer import _write
    _write(tar, hashed, "docker", False)
    write_reference(hashed, tmp_path / "a-canonical.tar")
    assert tar.digest() == _sha256(tmp_path / "a-canonical.tar")
    with pytest.raises(Unsized):
        _write(DigestTar(0), read_archive(A.docker_oci(tmp_path / "g.tar", IMAGES, how="gzip")), "docker", False)


def test_a_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", IMAGES)
    bad = A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGES[0].diff_ids[2])}.tar": A.layer({"x": b"y"})})
    with pytest.raises(DigestMismatch, match="layer 2"):
        reference_digest(read_archive(bad), tmp_path)
    with pytest.raises(UsageError, match="unknown layout"):
        reference_digest(read_archive(path), tmp_path, layout="zip")  # type: ignore[arg-type]
