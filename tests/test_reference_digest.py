"""The digest of a canonical archive worked out without writing it is the sha256 of the archive `write_reference`
writes, for every source format, layout and option, by either way of working it out; refusals are the same."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import pytest

from harness.archive import inflated_digests, read_archive
from harness.archive.layers import ArchiveLayer
from harness.errors import DigestMismatch, HarnessError, UsageError
from harness.reference import write_reference
from harness.reference.tarwriter import DigestTar, Unsized
from harness.reference import writer
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
                                            defer_hashing: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_digests", {})  # formed here, not remembered from another parameter's
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


def test_both_ways_are_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncompressed layers the reader hashed: hashed as formed.  Layers to inflate: hashed as formed once this
    process has inflated them (the reader's diff_id check did), else written and hashed."""
    from harness.reference.writer import _write
    for source in (A.docker_oci(tmp_path / "a.tar", IMAGES), A.docker_oci(tmp_path / "g.tar", IMAGES, how="gzip")):
        archive = read_archive(source)
        tar = DigestTar(0)
        _write(tar, archive, "docker", False)
        write_reference(archive, tmp_path / "canonical.tar")
        assert tar.digest() == _sha256(tmp_path / "canonical.tar")
    monkeypatch.setattr(inflated_digests, "_known", {})  # forgotten (the memo is bounded) since the read
    with pytest.raises(Unsized):
        _write(DigestTar(0), archive, "docker", False)


@pytest.mark.parametrize("off_by", [-1, 1, 1 << 20])
def test_a_remembered_size_that_is_wrong_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     off_by: int) -> None:
    """What the memo says of a blob only sizes a header: the layer's bytes still decide, and a layer of another
    length than remembered is a mismatch, with nothing left behind."""
    archive = read_archive(A.docker_oci(tmp_path / "g.tar", IMAGES, how="gzip"))
    layer = archive.images[0].layers[0]
    assert isinstance(layer, ArchiveLayer)
    right = inflated_digests.known(layer.inflated_key)
    assert right is not None
    wrong = inflated_digests.Inflated(right.digest, right.size + off_by)
    before = sorted(tmp_path.iterdir())
    for attempt in (lambda: reference_digest(archive, tmp_path),
                    lambda: write_reference(archive, tmp_path / "canonical.tar")):
        monkeypatch.setitem(inflated_digests._known, layer.inflated_key, wrong)
        with pytest.raises(DigestMismatch, match=f"layer 0.*{right.size} bytes"):
            attempt()
        assert inflated_digests.known(layer.inflated_key) == right  # what the bytes said, learnt on the way
    assert sorted(tmp_path.iterdir()) == before


def test_a_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path) -> None:
    path = A.podman(tmp_path / "a.tar", IMAGES)
    bad = A.rewrite(path, tmp_path / "b.tar", {f"{A.hexof(IMAGES[0].diff_ids[2])}.tar": A.layer({"x": b"y"})})
    with pytest.raises(DigestMismatch, match="layer 2"):
        reference_digest(read_archive(bad), tmp_path)
    with pytest.raises(UsageError, match="unknown layout"):
        reference_digest(read_archive(path), tmp_path, layout="zip")  # type: ignore[arg-type]


def _no_blob_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a blob was read")
    monkeypatch.setattr(writer, "_reference_digest", refuse)


@pytest.mark.parametrize("packed", ["docker-graph", "docker-containerd", "podman", "oci-zstd", "buildx-gzip"])
def test_a_canonical_form_seen_before_is_not_formed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          packed: str) -> None:
    """The same images packed by another engine (other layout, compression, metadata) are the same canonical
    form: its digest is known from the first, and no blob of the second is read."""
    monkeypatch.setattr(writer, "_digests", {})
    first_source = "buildx-gzip" if packed.startswith("buildx") else "legacy"  # another file, the same bytes
    first = read_archive(SOURCES[first_source](tmp_path / "first.tar"))
    digest = reference_digest(first, tmp_path, epoch=7)
    second = read_archive(SOURCES[packed](tmp_path / "second.tar"))
    write_reference(second, tmp_path / "second-canonical.tar", epoch=7)
    assert _sha256(tmp_path / "second-canonical.tar") == digest  # the premise: one canonical form
    _no_blob_is_read(monkeypatch)
    assert reference_digest(second, tmp_path, epoch=7) == digest


@pytest.mark.parametrize("change", ["a layer", "a tag", "the epoch", "the layout"])
def test_another_canonical_form_is_formed_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    monkeypatch.setattr(writer, "_digests", {})
    images = list(IMAGES)
    reference_digest(read_archive(A.podman(tmp_path / "a.tar", images)), tmp_path, epoch=7)
    epoch, layout = 7, "docker"
    if change == "a layer":
        images[1] = A.sample_image("a:1", seed="other")
    elif change == "a tag":
        images[1] = A.sample_image("a:2", seed="a")
    elif change == "the epoch":
        epoch = 8
    else:
        layout = "oci"
    other = read_archive(A.docker_oci(tmp_path / "b.tar", images, how="gzip"))
    write_reference(other, tmp_path / "b-canonical.tar", epoch=epoch, layout=layout)  # type: ignore[arg-type]
    formed = []
    monkeypatch.setattr(writer, "_reference_digest", lambda *a: formed.append(a) or _sha256(tmp_path / "b-canonical.tar"))
    assert reference_digest(other, tmp_path, epoch=epoch, layout=layout) == _sha256(tmp_path / "b-canonical.tar")  # type: ignore[arg-type]
    assert len(formed) == 1


def test_a_blob_not_yet_verified_forms_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without every blob's digest known (a deferred read, a memo that forgot a layer), the skeleton cannot be
    formed, and the canonical archive is: nothing remembered is trusted in place of bytes not yet read."""
    monkeypatch.setattr(writer, "_digests", {})
    path = A.docker_oci(tmp_path / "a.tar", IMAGES, how="gzip")
    digest = reference_digest(read_archive(path), tmp_path)
    monkeypatch.setattr(inflated_digests, "_known", {})
    deferred = read_archive(A.docker_oci(tmp_path / "b.tar", IMAGES), defer_hashing=True)
    formed = []
    real = writer._reference_digest
    monkeypatch.setattr(writer, "_reference_digest", lambda *a: formed.append(a) or real(*a))
    assert reference_digest(deferred, tmp_path) == digest
    assert len(formed) == 1
