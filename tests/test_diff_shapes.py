"""The differ pairs by meaning: platform images by platform, attestations by the image they attest,
artifacts by name and type; archives that lack blobs are compared for what they hold.  Every archive is
built by hand (`tests.archives`)."""

from __future__ import annotations

from pathlib import Path

from harness.archive import read_archive
from harness.diff import DiffResult, diff_archives
from tests import archives as A

AMD64 = A.platform_image("amd64")
ARM64 = A.platform_image("arm64")
ARM64_CHANGED = A.platform_image("arm64", extra={"etc/motd": b"changed on arm64 only\n"})


def diff(a: Path, b: Path) -> DiffResult:
    return diff_archives(read_archive(a), read_archive(b))


def kinds(result: DiffResult) -> list[tuple[str, str]]:
    return [(f.category.value, f.where) for f in result.findings]


def test_the_same_multi_platform_layout_twice_is_equivalent(tmp_path: Path) -> None:
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64]), A.buildx_oci(tmp_path / "b.tar", [AMD64, ARM64]))
    assert result.equivalent and result.same_image, result.findings


def test_platforms_in_another_order_pair_by_platform(tmp_path: Path) -> None:
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64]), A.buildx_oci(tmp_path / "b.tar", [ARM64, AMD64]))
    assert result.same_image
    assert [k for k in kinds(result) if k[0] not in ("order",)] == [], result.findings


def test_a_file_changed_in_one_platform_is_a_finding_in_that_platform_and_nothing_else(tmp_path: Path) -> None:
    """The arm64 image's config, manifest, the index and the arm64 attestation's subject all change with
    the file: each follows from it and is not reported again."""
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64]),
                  A.buildx_oci(tmp_path / "b.tar", [AMD64, ARM64_CHANGED]))
    assert kinds(result) == [("added", "image[1](linux/arm64).layer[1]:etc/motd")]
    assert not result.same_image


def test_a_platform_on_one_side_only_is_one_finding_with_its_attestation(tmp_path: Path) -> None:
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64]), A.buildx_oci(tmp_path / "b.tar", [AMD64]))
    assert kinds(result) == [("removed", "image[1](linux/arm64)")]


def test_an_attestation_on_one_side_only_is_one_finding_per_image(tmp_path: Path) -> None:
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64]), A.buildx_oci(tmp_path / "b.tar", [AMD64], attest=False))
    assert kinds(result) == [("removed", "image[0](linux/amd64).attestation")]
    assert result.same_image  # the image itself is the same; what was said about its build is not there


def test_a_rebuild_at_another_time_changes_only_the_provenance(tmp_path: Path) -> None:
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64]),
                  A.buildx_oci(tmp_path / "b.tar", [AMD64, ARM64], started="2025-06-01T12:00:00Z"))
    assert kinds(result) == [("content", "image[0](linux/amd64).attestation.blob[0]"),
                             ("content", "image[1](linux/arm64).attestation.blob[0]")]
    assert "$.predicate.metadata.buildFinishedOn" in result.findings[0].note
    assert "https://slsa.dev/provenance/v0.2" in result.findings[0].note
    assert result.same_image


def test_a_changed_chart_is_found_in_its_blobs(tmp_path: Path) -> None:
    result = diff(A.helm_layout(tmp_path / "a.tar", "1.0.0"), A.helm_layout(tmp_path / "b.tar", "1.0.1"))
    assert sorted(kinds(result)) == [("content", "artifact[0].blob[0]"), ("content", "artifact[0].config"),
                                     ("tags", "artifact[0].tags")]
    config = next(f for f in result.findings if f.where == "artifact[0].config")
    assert "$.version" in config.note
    assert not result.same_image


def test_an_artifact_beside_an_image_on_one_side_only(tmp_path: Path) -> None:
    image = A.platform_image("amd64", tags=["web:2"])
    a = A.oci(tmp_path / "a.tar", [image])
    b = A.helm_layout(tmp_path / "b.tar", "1.0.0", with_image=image)
    assert ("added", "artifact[0]") in kinds(diff(a, b))


def test_blobs_a_save_lacks_are_missing_on_its_side_and_nothing_cascades(tmp_path: Path) -> None:
    drop = [AMD64.id, *(A.sha(b) for b in AMD64.blobs("gzip"))]
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64], attest=False),
                  A.buildx_oci(tmp_path / "b.tar", [AMD64], attest=False, drop=drop))
    assert kinds(result) == [("missing", "b:image[0].config"), ("missing", "b:image[0].layer[0]"),
                             ("missing", "b:image[0].layer[1]")]
    assert [f.a for f in result.findings] == drop
    assert not result.same_image


def test_what_a_partial_save_still_holds_is_compared(tmp_path: Path) -> None:
    """B lacks a layer but its config says another image: the config difference is found."""
    other = A.platform_image("amd64", extra={"etc/x": b"other\n"})
    drop = [A.sha(other.blobs("gzip")[0])]
    result = diff(A.buildx_oci(tmp_path / "a.tar", [AMD64], attest=False),
                  A.buildx_oci(tmp_path / "b.tar", [other], attest=False, drop=drop))
    found = kinds(result)
    assert ("missing", "b:image[0].layer[0]") in found
    assert ("added", "image[0](linux/amd64).layer[1]:etc/x") in found


def _device_layer(minor: int) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind in (("dev", tarfile.DIRTYPE), ("dev/null", tarfile.CHRTYPE)):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o666
            ti.devmajor, ti.devminor = (1, minor) if kind == tarfile.CHRTYPE else (0, 0)
            tf.addfile(ti)
    return buf.getvalue()


def test_a_device_that_changes_its_numbers_is_a_mode_finding_not_packaging(tmp_path: Path) -> None:
    """/dev/null (char 1,3) turned into char 1,1 (what /dev/mem is) is a change of what the file is."""
    a = A.docker_oci(tmp_path / "a.tar", [A.TestImage([_device_layer(3)], tags=["root:1"])])
    b = A.docker_oci(tmp_path / "b.tar", [A.TestImage([_device_layer(1)], tags=["root:1"])])
    result = diff(a, b)
    [finding] = [f for f in result.findings if f.where.endswith(":dev/null")]
    assert (finding.category.value, finding.a, finding.b, finding.note) == ("mode", "1,3", "1,1", "device")
    assert "archive-format" not in result.summary
    assert not result.same_image
    archive = read_archive(a)
    [dev] = [f for f in archive.images[0].layers[0].files() if f.path == "dev/null"]
    assert (dev.header.devmajor, dev.header.devminor) == (1, 3)
