"""The canonical writer carries what users ship (canonical form version 2) or refuses it in one line: multi-platform
indexes with attestations, Helm charts alone or beside an image, nested indexes, OCI ``subject`` links.  Every
source archive is built by hand (`tests.archives`), not by our writer."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness.archive import read_archive
from harness.cli import main
from harness.diff import diff_archives
from harness.errors import CannotCarry
from harness.findings import changes_the_image
from harness.image import Archive, Compression
from harness.reference import write_reference
from tests import archives as A
from tests import hostile as H

AMD64 = A.platform_image("amd64")
ARM64 = A.platform_image("arm64")
ARM_V7 = A.platform_image("arm", variant="v7")
REFERENCE_DIGEST = "vnd.docker.reference.digest"


def write(source: Path, out: Path, **kw: Any) -> Archive:
    write_reference(read_archive(source), out, **kw)
    return read_archive(out)


def index_json(path: Path) -> dict[str, Any]:
    return json.loads(A.tar_member(path, "index.json"))


def blob(path: Path, digest: str) -> bytes:
    return A.tar_member(path, f"blobs/sha256/{A.hexof(digest)}")


def names(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return tf.getnames()


def model(archive: Archive) -> dict[str, Any]:
    """What a user relies on an archive holding, whatever its encoding: platform images by platform (ID, tags),
    attestations by the platform of the image they attest (config and statements byte for byte), artifacts."""
    by_manifest = {im.manifest.digest: im for im in archive.images if im.manifest}

    def content(r: Any) -> list[bytes]:
        out = []
        for b in (r.config, *r.blobs):
            assert b.opener is not None
            with b.opener() as f:
                out.append(f.read())
        return out

    return {
        "images": sorted((str(im.platform), im.id, im.repo_tags, im.diff_ids) for im in archive.images),
        "attestations": sorted((str(by_manifest[r.subject].platform), by_manifest[r.subject].id, r.tags, content(r))
                               for r in archive.attestations if r.subject),
        "artifacts": sorted((r.artifact_type, r.tags, content(r)) for r in archive.artifacts),
        "indexes": sorted(ix.tags for ix in archive.indexes),
    }


def assert_carried(source: Path, out: Path, back: Archive) -> None:
    """The output holds the same model, raises no problem, and diff --semantic of source and output is 0."""
    src = read_archive(source)
    assert back.problems == () and back.unfollowed == () and back.unreferenced == ()
    assert model(back) == model(src)
    result = diff_archives(src, back)
    assert result.same_image and not [f for f in result.findings if changes_the_image(f)], result.findings
    assert main(["diff", "--semantic", str(source), str(out)]) == 0


# Multi-platform images with attestations.


def test_a_multi_platform_image_with_attestations_is_carried_and_every_link_follows_the_new_digests(
        tmp_path: Path) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], tag="app:1.0")
    out = tmp_path / "r.tar"
    back = write(source, out)
    assert_carried(source, out, back)
    [index] = back.indexes
    assert index.tags == ("app:1.0",) and index.descriptor.media_type == A.OCI_INDEX
    assert index_json(out)["manifests"] == [{
        "mediaType": A.OCI_INDEX, "digest": index.descriptor.digest, "size": index.descriptor.size,
        "annotations": {"io.containerd.image.name": "docker.io/library/app:1.0",
                        "org.opencontainers.image.ref.name": "1.0"}}]
    # the index names the new (uncompressed) manifests, and each attestation names its image's new manifest
    children = json.loads(index.raw)["manifests"]
    images = {str(im.platform): im for im in back.images}
    assert [c["digest"] for c in children[:2]] == [images["linux/amd64"].manifest.digest,  # type: ignore[union-attr]
                                                   images["linux/arm64"].manifest.digest]  # type: ignore[union-attr]
    assert [c["annotations"][REFERENCE_DIGEST] for c in children[2:]] == [c["digest"] for c in children[:2]]
    assert all(c["annotations"]["vnd.docker.reference.type"] == "attestation-manifest" for c in children[2:])
    assert all(c["platform"] == {"architecture": "unknown", "os": "unknown"} for c in children[2:])
    for im in back.images:
        assert {la.compression for la in im.layers} == {Compression.NONE}
    # attestation manifests, configs and statements are the source's, byte for byte
    src = read_archive(source)
    assert sorted(r.raw_manifest for r in back.attestations) == sorted(r.raw_manifest for r in src.attestations)
    assert sorted(r.manifest.digest for r in back.attestations) == sorted(r.manifest.digest for r in src.attestations)


def test_keeping_compression_keeps_every_manifest_and_index_by_digest(tmp_path: Path) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], tag="app:1.0", how="zstd")
    out = tmp_path / "r.tar"
    back = write(source, out, keep_compression=True)
    assert_carried(source, out, back)
    src = read_archive(source)
    assert [(ix.descriptor.digest, ix.raw) for ix in back.indexes] == [(ix.descriptor.digest, ix.raw)
                                                                       for ix in src.indexes]
    assert sorted((im.manifest.digest, im.raw_manifest) for im in back.images if im.manifest) == sorted(
        (im.manifest.digest, im.raw_manifest) for im in src.images if im.manifest)
    assert sorted(r.manifest.digest for r in back.referrers) == sorted(r.manifest.digest for r in src.referrers)
    assert {la.compression for im in back.images for la in im.layers} == {Compression.ZSTD}
    assert diff_archives(src, back).findings[0].category.value == "archive-format"  # oci → docker: nothing else
    assert len(diff_archives(src, back).findings) == 1


@pytest.mark.parametrize("keep", [False, True], ids=["uncompressed", "keep-compression"])
def test_writing_the_output_again_gives_the_same_bytes(tmp_path: Path, keep: bool) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64, ARM_V7], tag="app:1.0")
    first = tmp_path / "1.tar"
    write(source, first, keep_compression=keep)
    write(source, tmp_path / "2.tar", keep_compression=keep)
    write(first, tmp_path / "3.tar", keep_compression=keep)
    assert first.read_bytes() == (tmp_path / "2.tar").read_bytes() == (tmp_path / "3.tar").read_bytes()
    write(first, tmp_path / "4.tar", keep_compression=keep, layout="oci")
    write(tmp_path / "4.tar", tmp_path / "5.tar", keep_compression=keep)
    assert (tmp_path / "5.tar").read_bytes() == first.read_bytes()


@pytest.mark.parametrize("attest", [True, False], ids=["platforms-in-another-order", "and-other-compressions"])
def test_the_same_image_in_another_order_or_compression_gives_the_same_bytes(tmp_path: Path, attest: bool) -> None:
    """Reordered platforms; and, without attestations (whose statements name each source's manifest digest, so
    differ with the compression), other layer compressions too."""
    variants = [([AMD64, ARM64, ARM_V7], "gzip"), ([ARM_V7, AMD64, ARM64], "gzip"), ([ARM64, ARM_V7, AMD64], "gzip")]
    if not attest:
        variants += [([ARM64, ARM_V7, AMD64], "zstd"), ([AMD64, ARM64, ARM_V7], "none")]
    outputs = set()
    for n, (images, how) in enumerate(variants):
        write(A.buildx_oci(tmp_path / f"{n}.tar", images, tag="app:1.0", how=how, attest=attest), tmp_path / f"{n}.out")
        outputs.add(hashlib.sha256((tmp_path / f"{n}.out").read_bytes()).hexdigest())
    assert len(outputs) == 1


def test_entries_are_each_platform_then_the_attestations_in_platform_order_then_the_index(tmp_path: Path) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [ARM64, AMD64], tag="app:1.0")
    out = tmp_path / "r.tar"
    back = write(source, out)
    amd, arm = sorted(back.images, key=lambda im: str(im.platform))
    by_subject = {r.subject: r for r in back.attestations}
    [index] = back.indexes

    def image(im: Any) -> list[str]:
        return [im.config_entry, *(la.entry_name for la in im.layers), f"blobs/sha256/{A.hexof(im.manifest.digest)}"]

    def attestation(im: Any) -> list[str]:
        r = by_subject[im.manifest.digest]
        return [r.config.entry_name, *(b.entry_name for b in r.blobs), f"blobs/sha256/{A.hexof(r.manifest.digest)}"]

    assert names(out) == ["blobs", "blobs/sha256", *image(amd), *image(arm), *attestation(amd), *attestation(arm),
                          f"blobs/sha256/{A.hexof(index.descriptor.digest)}", "index.json", "manifest.json",
                          "oci-layout"]
    # manifest.json lists each platform image, untagged: it cannot say one name for several platforms
    assert [(item["Config"], item["RepoTags"]) for item in json.loads(A.tar_member(out, "manifest.json"))] == [
        (amd.config_entry, []), (arm.config_entry, [])]


def test_a_docker_manifest_list_becomes_an_oci_index_of_oci_manifests(tmp_path: Path) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], tag="app:1.0", attest=False)
    listed = tmp_path / "list.tar"
    index = read_archive(source).indexes[0]
    doc = json.loads(index.raw)
    doc["mediaType"] = "application/vnd.docker.distribution.manifest.list.v2+json"
    raw = A.jdump(doc)
    top = {"schemaVersion": 2, "manifests": [{"mediaType": doc["mediaType"], "digest": A.sha(raw), "size": len(raw),
                                              "annotations": {"io.containerd.image.name": "docker.io/library/app:1.0"}}]}
    A.write_tar(listed, [m for m in H.members(source) if m.name not in ("index.json", _blob_name(index.descriptor.digest))]
                + [A.F(_blob_name(A.sha(raw)), raw), A.F("index.json", A.jdump(top))])
    out = tmp_path / "r.tar"
    back = write(listed, out)
    assert model(back) == model(read_archive(source))
    assert json.loads(back.indexes[0].raw)["mediaType"] == A.OCI_INDEX
    assert {c["mediaType"] for c in json.loads(back.indexes[0].raw)["manifests"]} == {A.OCI_MANIFEST}
    write(source, tmp_path / "s.tar")
    assert out.read_bytes() == (tmp_path / "s.tar").read_bytes()


def test_a_nested_index_is_carried_with_its_children_first(tmp_path: Path) -> None:
    """index.json → an index of two indexes, one per operating system family of platforms."""
    inner = read_archive(A.buildx_oci(tmp_path / "i.tar", [AMD64, ARM64], attest=False)).indexes[0]
    members = H.members(tmp_path / "i.tar")
    other = A.buildx_oci(tmp_path / "o.tar", [ARM_V7], attest=False)
    members += [m for m in H.members(other) if m.name.startswith("blobs/sha256/") and m.name not in
                {x.name for x in members}]
    second = read_archive(other).indexes[0]
    outer = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_INDEX, "manifests": [
        {"mediaType": A.OCI_INDEX, "digest": second.descriptor.digest, "size": second.descriptor.size},
        {"mediaType": A.OCI_INDEX, "digest": inner.descriptor.digest, "size": inner.descriptor.size}]})
    top: dict[str, Any] = {"schemaVersion": 2, "manifests": [{
        "mediaType": A.OCI_INDEX, "digest": A.sha(outer), "size": len(outer),
        "annotations": {"org.opencontainers.image.ref.name": "2.0"}}]}
    source = A.write_tar(tmp_path / "n.tar", [m for m in members if m.name != "index.json"] +
                         [A.F(_blob_name(A.sha(outer)), outer), A.F("index.json", A.jdump(top))])
    out = tmp_path / "r.tar"
    back = write(source, out)
    assert_carried(source, out, back)
    [top_index] = [ix for ix in back.indexes if ix.parent is None]
    assert top_index.tags == ("2.0",) and len(back.indexes) == 3 and len(back.images) == 3
    assert index_json(out)["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "2.0"}
    order = names(out)
    for ix in back.indexes:
        position = order.index(_blob_name(ix.descriptor.digest))
        assert all(order.index(_blob_name(d.digest)) < position for d in ix.manifests)
    assert order.index(_blob_name(top_index.descriptor.digest)) == len(order) - 4  # last blob
    # the same image saved with its indexes named the other way round is the same bytes
    swapped = json.loads(outer)
    swapped["manifests"].reverse()
    outer2 = A.jdump(swapped)
    top2 = {**top, "manifests": [{**top["manifests"][0], "digest": A.sha(outer2), "size": len(outer2)}]}
    source2 = A.write_tar(tmp_path / "n2.tar", [m for m in members if m.name != "index.json"] +
                          [A.F(_blob_name(A.sha(outer2)), outer2), A.F("index.json", A.jdump(top2))])
    write(source2, tmp_path / "r2.tar")
    assert (tmp_path / "r2.tar").read_bytes() == out.read_bytes()


def test_an_oci_subject_follows_the_manifest_it_names_and_annotations_are_kept(tmp_path: Path) -> None:
    """An SBOM artifact beside the index names the amd64 manifest as its OCI 1.1 subject; the amd64 manifest
    carries annotations of its own."""
    annotated = json.loads(AMD64.manifest("gzip"))
    annotated["annotations"] = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    manifest = A.jdump(annotated)
    sbom = b'{"spdxVersion":"SPDX-2.3"}'
    config = b"{}"
    artifact = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_MANIFEST, "artifactType": "application/spdx+json",
                        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": A.sha(config),
                                   "size": len(config)},
                        "layers": [{"mediaType": "application/spdx+json", "digest": A.sha(sbom), "size": len(sbom)}],
                        "subject": {"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest), "size": len(manifest)}})
    index = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_INDEX, "manifests": [
        {"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest), "size": len(manifest),
         "platform": {"architecture": "amd64", "os": "linux"}}]})
    top = {"schemaVersion": 2, "manifests": [
        {"mediaType": A.OCI_INDEX, "digest": A.sha(index), "size": len(index),
         "annotations": {"io.containerd.image.name": "docker.io/library/app:1.0"}},
        {"mediaType": A.OCI_MANIFEST, "digest": A.sha(artifact), "size": len(artifact)}]}
    source = A.write_tar(tmp_path / "s.tar", [
        A.F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), A.F("blobs", dir=True), A.F("blobs/sha256", dir=True),
        *(A.F(_blob_name(A.sha(b)), b) for b in (AMD64.config, *AMD64.blobs("gzip"), manifest, index, artifact, sbom,
                                                  config)),
        A.F("index.json", A.jdump(top))])
    for keep in (False, True):
        out = tmp_path / f"r-{keep}.tar"
        back = write(source, out, keep_compression=keep)
        assert_carried(source, out, back)
        [image], [sbom_artifact] = back.images, back.artifacts
        assert image.manifest is not None and sbom_artifact.subject == image.manifest.digest
        assert json.loads(image.raw_manifest or b"")["annotations"] == annotated["annotations"]
        assert blob(out, sbom_artifact.blobs[0].descriptor.digest) == sbom
        if keep:
            assert sbom_artifact.raw_manifest == artifact and image.raw_manifest == manifest
        else:
            assert image.manifest.digest != A.sha(manifest) and sbom_artifact.raw_manifest != artifact
            assert {k: v for k, v in json.loads(sbom_artifact.raw_manifest).items() if k != "subject"} == {
                k: v for k, v in json.loads(artifact).items() if k != "subject"}


# Artifacts.


def test_a_helm_chart_alone_is_carried(tmp_path: Path) -> None:
    source = A.helm_layout(tmp_path / "h.tar", "1.2.3")
    out = tmp_path / "r.tar"
    back = write(source, out)
    assert_carried(source, out, back)
    [chart] = back.artifacts
    config, tarball, manifest = A.helm_chart("1.2.3")
    assert chart.raw_manifest == manifest and chart.tags == ("1.2.3",)
    assert blob(out, A.sha(config)) == config and blob(out, A.sha(tarball)) == tarball
    assert index_json(out)["manifests"] == [{"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest),
                                             "size": len(manifest),
                                             "annotations": {"org.opencontainers.image.ref.name": "1.2.3"}}]
    assert json.loads(A.tar_member(out, "manifest.json")) == []  # manifest.json lists images only
    assert names(out) == ["blobs", "blobs/sha256", *map(_blob_name, map(A.sha, (config, tarball, manifest))),
                          "index.json", "manifest.json", "oci-layout"]
    write(out, tmp_path / "again.tar")
    assert (tmp_path / "again.tar").read_bytes() == out.read_bytes()


def test_a_chart_beside_an_image(tmp_path: Path) -> None:
    image = A.platform_image("amd64", tags=["web:2"])
    source = A.helm_layout(tmp_path / "h.tar", "1.2.3", with_image=image)
    out = tmp_path / "r.tar"
    back = write(source, out)
    assert_carried(source, out, back)
    assert [(im.id, im.repo_tags) for im in back.images] == [(image.id, ("web:2",))]
    assert [a.artifact_type for a in back.artifacts] == [A.HELM_CONFIG]
    assert [item["RepoTags"] for item in json.loads(A.tar_member(out, "manifest.json"))] == [
        ["docker.io/library/web:2"]]
    # images and indexes first, then artifacts: the image's blobs come before the chart's
    entries = names(out)
    assert entries.index(_blob_name(image.id)) < entries.index(_blob_name(A.sha(A.helm_chart("1.2.3")[0])))


# What cannot be carried: one line, exit 2, nothing written.


def _refused(tmp_path: Path, source: Path, pattern: str, capsys: pytest.CaptureFixture[str], *args: str) -> None:
    out = tmp_path / "out.tar"
    with pytest.raises(CannotCarry, match=pattern):
        write_reference(read_archive(source), out, **({"layout": args[1]} if args else {}))  # type: ignore[arg-type]
    assert main(["reference", str(source), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("imgharness: error: ") and "Traceback" not in err, err
    assert not list(tmp_path.glob("out.tar*"))


def test_a_media_type_nobody_knows_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = A.helm_layout(tmp_path / "h.tar", unknown=True)
    _refused(tmp_path, source, r"application/vnd\.example\.thing\.v1, which is neither an index nor a manifest: a "
                               r"reference cannot carry what it cannot follow", capsys)


def test_an_unknown_descriptor_inside_an_index_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64], extra_descriptors=[
        {"mediaType": "application/vnd.example.thing.v1", "digest": A.sha(b"x"), "size": 1}])
    _refused(tmp_path, source, r"\$\.manifests\[2\]: sha256:\w+ has media type application/vnd\.example", capsys)


def test_a_missing_layer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], drop=[A.sha(ARM64.blobs("gzip")[1])])
    _refused(tmp_path, source, r"image\[1\] \(linux/arm64\): layer 1 blob sha256:\w+ is missing from the archive",
             capsys)


def test_a_missing_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64], attest=False, drop=[AMD64.id])
    _refused(tmp_path, source, r"image\[0\] \(linux/amd64\): config blob sha256:\w+ is missing", capsys)


def test_a_missing_in_toto_statement_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    statement = A.provenance(AMD64.manifest("gzip"))[0]
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64], drop=[A.sha(statement)])
    _refused(tmp_path, source, r"attestation sha256:\w+: layer 0 blob sha256:\w+ is missing from the archive", capsys)


def test_a_platform_the_save_left_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = A.buildx_oci(tmp_path / "a.tar", [AMD64, ARM64], attest=False, drop=[A.sha(ARM64.manifest("gzip"))])
    _refused(tmp_path, source, r"manifest sha256:\w+ \(linux/arm64\) is not in the archive: a reference of a partial "
                               r"save would name what it does not hold", capsys)


def test_a_manifest_index_json_names_but_the_archive_lacks_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = A.platform_image("amd64", tags=["web:2"])
    source = A.helm_layout(tmp_path / "h.tar", with_image=image)
    gone = A.write_tar(tmp_path / "g.tar", [m for m in H.members(source)
                                            if m.name != _blob_name(A.sha(image.manifest("gzip")))])
    _refused(tmp_path, gone, r"index\.json:\$\.manifests\[1\]: blob sha256:\w+ is missing from the archive", capsys)


@pytest.mark.parametrize("shape", ["index", "chart"])
def test_the_legacy_layout_refuses_indexes_and_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         shape: str) -> None:
    source = (A.buildx_oci(tmp_path / "a.tar", [AMD64], attest=False) if shape == "index"
              else A.helm_layout(tmp_path / "h.tar", with_image=A.platform_image("amd64", tags=["web:2"])))
    _refused(tmp_path, source, r"the legacy layout \(Docker <= 24\) has no place for an image index, attestations or "
                               r"artifacts: write this archive with --layout docker or oci", capsys, "--layout", "legacy")


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{A.hexof(digest)}"


def test_one_platform_cut_out_of_an_index_is_written_not_dropped(tmp_path: Path) -> None:
    """A model a caller cut down (one platform image, its index gone, index.json as read) is that image's
    archive: the writer places what nothing of the archive names at the top, never writes an empty one."""
    import dataclasses

    source = read_archive(A.buildx_oci(tmp_path / "mp.tar", [A.platform_image("amd64"), A.platform_image("arm64")]))
    digests = set()
    for k, image in enumerate(source.images):
        alone = dataclasses.replace(source, images=(dataclasses.replace(image, index=None),), indexes=(),
                                    referrers=(), unfollowed=())
        write_reference(alone, tmp_path / f"{k}.tar")
        back = read_archive(tmp_path / f"{k}.tar")
        assert [(im.id, str(im.platform)) for im in back.images] == [(image.id, str(image.platform))]
        digests.add(A.sha((tmp_path / f"{k}.tar").read_bytes()))
    assert len(digests) == 2
