"""The shapes users ship, read into the model: multi-platform indexes with attestations, artifacts beside
images, descriptors nobody knows, and archives that lack blobs.  Archives are built by hand here
(`tests.archives`), not by our writer."""

from __future__ import annotations

from pathlib import Path

from harness.archive import read_archive
from harness.report.inspect_text import describe, render_text
from harness.findings import Category
from harness.image import Platform, ReferrerKind
from tests import archives as A

AMD64 = A.platform_image("amd64")
ARM64 = A.platform_image("arm64")


def test_a_buildx_layout_is_an_index_of_platform_images_each_with_its_attestation(tmp_path: Path) -> None:
    archive = read_archive(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], tag="app:1.0"))
    assert not archive.problems
    assert [(str(im.platform), im.id, im.repo_tags) for im in archive.images] == [
        ("linux/amd64", AMD64.id, ("app:1.0",)), ("linux/arm64", ARM64.id, ("app:1.0",))]
    [index] = archive.indexes
    assert index.tags == ("app:1.0",) and index.parent is None and len(index.manifests) == 4
    assert all(im.index == index.descriptor.digest for im in archive.images)
    assert [r.kind for r in archive.referrers] == [ReferrerKind.ATTESTATION] * 2
    attested = {r.subject for r in archive.attestations}
    assert attested == {im.manifest.digest for im in archive.images if im.manifest}
    for r in archive.attestations:
        [statement] = r.blobs
        assert statement.descriptor.media_type == A.IN_TOTO and statement.present
        assert statement.opener is not None
        with statement.opener() as f:
            assert b"in-toto.io/Statement" in f.read()


def test_artifacts_are_opaque_and_unknown_media_types_are_listed_not_followed(tmp_path: Path) -> None:
    image = A.platform_image("amd64", tags=["web:2"])
    archive = read_archive(A.helm_layout(tmp_path / "h.tar", "1.2.3", with_image=image, unknown=True))
    assert not archive.problems
    assert [im.id for im in archive.images] == [image.id]
    [chart] = archive.artifacts
    assert chart.artifact_type == A.HELM_CONFIG and chart.tags == ("1.2.3",)
    assert [b.descriptor.media_type for b in chart.blobs] == [A.HELM_CHART]
    [odd] = archive.unfollowed
    assert odd.descriptor.media_type == "application/vnd.example.thing.v1" and "not followed" in odd.reason
    # the odd blob is named by index.json, so it is not unreferenced; nothing else is left over
    assert archive.unreferenced == ()


def test_a_chart_alone_is_read_without_any_image(tmp_path: Path) -> None:
    archive = read_archive(A.helm_layout(tmp_path / "h.tar"))
    assert archive.images == () and len(archive.artifacts) == 1 and not archive.problems


def test_a_save_that_lacks_its_config_and_layers_is_read_and_names_each_missing_blob(tmp_path: Path) -> None:
    """docker save on the containerd store, after pulling an image whose layers it had unpacked under
    another name, writes the manifest and nothing else."""
    drop = [AMD64.id, *(A.sha(b) for b in AMD64.blobs("gzip"))]
    archive = read_archive(A.buildx_oci(tmp_path / "a.tar", [AMD64], attest=False, drop=drop))
    missing = [(f.where, f.a) for f in archive.problems if f.category is Category.MISSING]
    assert missing == [("image[0].config", AMD64.id), ("image[0].layer[0]", drop[1]), ("image[0].layer[1]", drop[2])]
    [image] = archive.images
    assert image.id == AMD64.id and image.config_missing and not image.complete
    assert image.lacking == ("config", "layer[0]", "layer[1]")
    assert [la.digest for la in image.layers] == drop[1:] and image.platform == Platform("linux", "amd64")


def test_a_platform_the_archive_does_not_carry_is_listed_as_not_followed(tmp_path: Path) -> None:
    arm_manifest = ARM64.manifest("gzip")
    archive = read_archive(A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], attest=False, drop=[A.sha(arm_manifest)]))
    assert not archive.problems
    assert [str(im.platform) for im in archive.images] == ["linux/amd64"]
    [gone] = archive.unfollowed
    assert gone.descriptor.digest == A.sha(arm_manifest) and "not in the archive" in gone.reason


def test_legacy_layer_json_beside_an_oci_layout_is_named_as_unreferenced(tmp_path: Path) -> None:
    """Docker 25/26 on graph drivers save the v1 layer JSON of every layer as blobs no manifest names."""
    image = A.sample_image("v:1")
    path = A.docker_oci(tmp_path / "a.tar", [image])
    v1 = A.jdump({"id": "ab" * 32, "created": "1970-01-01T00:00:00Z", "container_config": {}})
    extra = A.write_tar(tmp_path / "b.tar", [*_members(path), A.F(f"blobs/sha256/{A.hexof(A.sha(v1))}", v1)])
    archive = read_archive(extra)
    [left] = archive.unreferenced
    assert left.name == f"blobs/sha256/{A.hexof(A.sha(v1))}" and left.what.startswith("legacy layer JSON")


def test_inspect_shows_platforms_attestations_artifacts_and_what_was_not_followed(tmp_path: Path) -> None:
    path = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], extra_descriptors=[
        {"mediaType": "application/vnd.example.thing.v1", "digest": A.sha(b"x"), "size": 1}])
    text = render_text(describe(read_archive(path), count_files=True))
    assert "platform linux/amd64" in text and "platform linux/arm64" in text
    assert "attestation sha256:" in text and " of image[0]" in text and " of image[1]" in text
    assert "https://slsa.dev/provenance/v0.2" in text
    assert "not followed:" in text and "application/vnd.example.thing.v1 is neither an index nor a manifest" in text


def _members(path: Path) -> list[A.F]:
    import tarfile

    with tarfile.open(path) as tf:
        return [A.F(m.name, tf.extractfile(m).read() if m.isreg() else b"", dir=m.isdir())  # type: ignore[union-attr]
                for m in tf.getmembers()]
