"""The writer's copying: every blob hashed once and verified against the digest it is written under, whichever
way it is copied (kernel copy of a blob the reader hashed, kernel copy hashed on the way when the reader deferred
it, streaming), and a source archive that changes between reading and writing is an error, never a wrong archive."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.archive import read_archive
from harness.cli import main
from harness.errors import ArchiveError, DigestMismatch, MalformedArchive
from harness.image import Compression
from harness.reference import blobs, rangecopy, write_reference
from tests import archives as A
from tests import hostile as H
from tests.test_reference_writer import IMAGES
from tests.test_reference_writer import SOURCES as FORMATS

AMD64 = A.platform_image("amd64")
ARM64 = A.platform_image("arm64")
SOURCES: dict[str, Callable[[Path], Path]] = {
    **FORMATS,
    "buildx": lambda p: A.buildx_oci(p, [AMD64, ARM64], how="none"),
    "buildx-gzip": lambda p: A.buildx_oci(p, [AMD64, ARM64]),
    "helm": lambda p: A.helm_layout(p, with_image=A.platform_image("amd64", tags=["web:2"])),
}


def cli(source: Path, out: Path, *args: str) -> bytes:
    assert main(["reference", str(source), "-o", str(out), *args]) == 0
    return out.read_bytes()


def test_deferred_hashing_takes_uncompressed_blobs_digests_from_their_names(tmp_path: Path) -> None:
    plain = read_archive(A.buildx_oci(tmp_path / "a.tar", [AMD64], how="none"), defer_hashing=True)
    zipped = read_archive(A.buildx_oci(tmp_path / "b.tar", [AMD64]), defer_hashing=True)
    for archive in (plain, zipped):
        for e in archive.entries:
            if e.header.name.startswith("blobs/sha256/"):
                assert e.digest == "sha256:" + e.header.name.rsplit("/", 1)[1]
    [image] = zipped.images
    assert {la.compression for la in image.layers} == {Compression.GZIP}
    assert not any(la.opener.hashed for la in plain.images[0].layers)  # type: ignore[attr-defined]
    assert all(la.opener.hashed for la in image.layers)  # type: ignore[attr-defined]  # compressed: hashed
    assert plain.problems == () and zipped.problems == ()


def test_a_deferred_blob_the_file_does_not_hold_is_an_error(tmp_path: Path) -> None:
    data = A.docker_oci(tmp_path / "a.tar", IMAGES).read_bytes()
    layer = f"blobs/sha256/{A.hexof(IMAGES[0].diff_ids[2])}".encode()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:data.index(layer) + 512 + 100])
    with pytest.raises(MalformedArchive, match=r"unexpected end of data \(100 of \d+ bytes\)"):
        read_archive(cut, defer_hashing=True)


@pytest.mark.parametrize("keep", [False, True], ids=["uncompressed", "keep-compression"])
def test_the_cli_copying_deferred_blobs_writes_what_the_library_writes(tmp_path: Path, keep: bool) -> None:
    """The CLI reads with deferred hashing and copies by kernel; the library call here reads every digest first:
    every format, every shape, the same bytes."""
    args = ("--keep-compression",) if keep else ()
    for name, make in SOURCES.items():
        source = make(tmp_path / f"{name}.tar")
        write_reference(read_archive(source), tmp_path / f"{name}.lib", keep_compression=keep)
        assert cli(source, tmp_path / f"{name}.cli", *args) == (tmp_path / f"{name}.lib").read_bytes(), name


def test_without_kernel_copy_the_bytes_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """podman's layer names claim no digest: the reader hashes them, and the writer has the kernel copy them."""
    source = A.podman(tmp_path / "a.tar", IMAGES)
    expected = cli(source, tmp_path / "kernel.tar")
    calls = []

    def refuse(*args: Any) -> int:
        calls.append(args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(rangecopy.os, "copy_file_range", refuse)
    assert cli(source, tmp_path / "user.tar") == expected and calls


def test_a_deferred_layer_that_is_not_its_digest_is_refused_and_nothing_is_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its name (the diff_id) is all the reader looked at; the copy's hash says otherwise."""
    layer = f"blobs/sha256/{A.hexof(IMAGES[0].diff_ids[1])}"
    tampered = bytearray(IMAGES[0].layers[1])
    tampered[tampered.index(b"b layer 1")] = ord("B")
    source = A.rewrite(A.docker_oci(tmp_path / "a.tar", IMAGES), tmp_path / "t.tar", {layer: bytes(tampered)})
    for args, what in (((), r"layer 1 \(uncompressed\)"), (("--keep-compression",), r"layer 1 blob")):
        out = tmp_path / "out.tar"
        assert main(["reference", str(source), "-o", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert f"expected {IMAGES[0].diff_ids[1]}, content hashes to sha256:" in err and what.replace("\\", "") in err
        assert not list(tmp_path.glob("out.tar*"))


def test_a_deferred_in_toto_statement_that_is_not_its_digest_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    statement = A.provenance(AMD64.manifest("gzip"))[0]
    source = A.rewrite(A.buildx_oci(tmp_path / "a.tar", [AMD64]), tmp_path / "t.tar",
                       {f"blobs/sha256/{A.hexof(A.sha(statement))}": statement.replace(b"v0.2", b"v0.3")})
    assert main(["reference", str(source), "-o", str(tmp_path / "out.tar")]) == 2
    assert f"blob[0]: expected {A.sha(statement)}, content hashes to" in capsys.readouterr().err
    assert not list(tmp_path.glob("out.tar*"))


def test_keeping_compression_a_layer_that_is_not_its_diff_id_is_refused(tmp_path: Path) -> None:
    """Copied as stored, the gzip layer is still inflated once to check it against the config."""
    layer = A.compress(A.layer({"etc/x": b"x\n"}), "gzip")
    config = A.jdump({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                         "diff_ids": [A.sha(b"another layer")]}})
    manifest = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_MANIFEST,
                        "config": {"mediaType": A.OCI_CONFIG, "digest": A.sha(config), "size": len(config)},
                        "layers": [{"mediaType": A.LAYER_TYPES["gzip"], "digest": A.sha(layer), "size": len(layer)}]})
    index = A.jdump({"schemaVersion": 2, "manifests": [{"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest),
                                                        "size": len(manifest)}]})
    source = A.write_tar(tmp_path / "a.tar", [A.F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                              *(A.F(H._blob(b), b) for b in (config, layer, manifest)),
                                              A.F("index.json", index)])
    with pytest.raises(DigestMismatch, match=r"image\[0\] \(linux/amd64\) layer 0 \(uncompressed\): expected "
                                             f"{A.sha(b'another layer')}"):
        write_reference(read_archive(source, defer_checks=True), tmp_path / "out.tar", keep_compression=True)
    assert not list(tmp_path.glob("out.tar*"))


def test_a_config_that_is_not_its_digest_is_refused(tmp_path: Path) -> None:
    image = IMAGES[1]
    source = A.rewrite(A.docker_oci(tmp_path / "a.tar", [image]), tmp_path / "t.tar",
                       {H._blob(image.id): image.config.replace(b"amd64", b"arm64")})
    for kw in ({}, {"layout": "legacy"}, {"keep_compression": True}):
        with pytest.raises(DigestMismatch, match=f"image\\[\\d\\] \\(linux/arm64\\) config: expected {image.id}"):
            write_reference(read_archive(source), tmp_path / "out.tar", **kw)  # type: ignore[arg-type]
    assert not list(tmp_path.glob("out.tar*"))


def test_a_manifest_that_is_not_its_digest_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The image is made of what its manifest says: bytes that are not the manifest index.json names could make
    another image, whose reference would pass for this one."""
    image = IMAGES[1]
    manifest = image.manifest()
    source = A.rewrite(A.docker_oci(tmp_path / "a.tar", [image]), tmp_path / "t.tar",
                       {H._blob(manifest): manifest + b" "})
    for args in ((), ("--keep-compression",)):
        assert main(["reference", str(source), "-o", str(tmp_path / "out.tar"), *args]) == 2
        assert f"image[0] (linux/amd64) manifest: expected {A.sha(manifest)}, content hashes to" in \
            capsys.readouterr().err
        assert not list(tmp_path.glob("out.tar*"))


def test_a_source_that_changed_after_it_was_read_is_an_error(tmp_path: Path) -> None:
    source = A.docker_oci(tmp_path / "a.tar", IMAGES)
    for deferred in (False, True):
        archive = read_archive(source, defer_hashing=deferred)
        st = source.stat()
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # same bytes, but nothing says so
        with pytest.raises(ArchiveError, match=r"a\.tar: the file changed after it was read"):
            write_reference(archive, tmp_path / "out.tar")
        assert not list(tmp_path.glob("out.tar*"))


def test_a_source_that_changes_while_it_is_copied_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64], how="none")
    archive = read_archive(source, defer_hashing=True)
    real = rangecopy.copy_hashed

    def copy_then_append(*args: Any) -> str:
        digest = real(*args)
        with source.open("ab") as f:
            f.write(b"\0" * 512)
        return digest

    monkeypatch.setattr(blobs, "copy_hashed", copy_then_append)
    with pytest.raises(ArchiveError, match=r"a\.tar: the file changed while its reference was written"):
        write_reference(archive, tmp_path / "out.tar")
    assert not list(tmp_path.glob("out.tar*"))


def test_a_source_cut_short_under_the_copy_is_an_error(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"x" * 1000)
    with open(src, "rb") as s, open(dst, "wb") as d:
        for cut_short in (lambda: rangecopy.copy_range(s.fileno(), 0, 1200, d.fileno(), 0),
                          lambda: rangecopy.copy_hashed(s.fileno(), 0, 1200, d.fileno(), 0)):
            with pytest.raises(ArchiveError, match="ends 200 bytes early inside a blob: it changed after it was read"):
                cut_short()
        d.truncate(0)
        rangecopy.copy_range(s.fileno(), 10, 990, d.fileno(), 5)
        assert rangecopy.copy_hashed(s.fileno(), 0, 3, d.fileno(), 995) == A.sha(b"xxx")
    assert dst.read_bytes() == b"\0" * 5 + b"x" * 993
