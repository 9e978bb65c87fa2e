"""Archive-level differences: outer entries, formats, layout metadata, images, problems and ignores."""

from __future__ import annotations

import dataclasses
import tarfile

from tests.memlayer import F, layer
from tests.modelkit import archive, image, reorder, retouch

from harness.diff import diff_archives
from harness.findings import Category, Finding, Ignores
from harness.image import ArchiveFormat, Compression

BASE = layer([F("bin/", type=tarfile.DIRTYPE, mode=0o755), F("bin/sh", b"busybox", mode=0o755)])
APP = layer([F("app/run", b"echo hi\n", mode=0o755)])
APP2 = layer([F("app/run", b"echo bye\n", mode=0o755)])


def triples(findings: tuple[Finding, ...] | list[Finding]) -> list[tuple[str, str, object, object]]:
    return [(f.category.value, f.where, f.a, f.b) for f in findings]


def pair(**b_image: object) -> tuple:
    a = archive(image([BASE, APP]), source="a.tar")
    b = archive(image([BASE, APP], **b_image), source="b.tar")  # type: ignore[arg-type]
    return a, b


def blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":")[1]


def test_identical_archives_are_equivalent() -> None:
    a, b = pair()
    result = diff_archives(a, b)
    assert result.equivalent and result.findings == () and result.summary == {}
    assert (result.a, result.b) == ("a.tar", "b.tar")


def test_save_drift_names_exactly_the_entries_whose_headers_changed() -> None:
    a, b = pair()
    b = retouch(retouch(b, "blobs/sha256/", mtime=1_700_000_000), "manifest.json", mtime=1_700_000_000)
    result = diff_archives(a, b)
    assert triples(result.findings) == [
        ("mtime", "archive:blobs/sha256/", 0, 1_700_000_000),
        ("mtime", "archive:manifest.json", 0, 1_700_000_000),
    ]
    assert result.summary == {"mtime": 2}
    ignored = diff_archives(a, b, Ignores(frozenset({Category.MTIME})))
    assert ignored.equivalent and ignored.ignored == 2


def test_outer_header_classes_each_name_the_field() -> None:
    a, b = pair()
    config = a.images[0].config_entry
    b = retouch(b, config, uid=1000, mode=0o600, pax=(("SCHILY.xattr.user.x", "1"),))
    assert sorted((f.category.value, f.where, f.note) for f in diff_archives(a, b).findings) == [
        ("mode", f"archive:{config}", "mode"),
        ("ownership", f"archive:{config}", "uid"),
        ("xattr", f"archive:{config}", "pax:SCHILY.xattr.user.x"),
    ]


def test_entry_order_is_one_order_finding() -> None:
    a, b = pair()
    b = reorder(b, ["index.json"])
    assert triples(diff_archives(a, b).findings) == [("order", "archive", "index.json", "manifest.json")]


def test_unexplained_entries_are_added_and_removed() -> None:
    a, b = pair()
    b = dataclasses.replace(b, entries=tuple(e for e in b.entries if e.header.name != "oci-layout"))
    extra = dataclasses.replace(a.entries[-1], header=dataclasses.replace(a.entries[-1].header, name="extra"))
    b = dataclasses.replace(b, entries=b.entries + (extra,))
    assert [(f.category.value, f.where) for f in diff_archives(a, b).findings] == [
        ("added", "archive:extra"), ("removed", "archive:oci-layout"),
    ]


def test_oci_layout_content_is_a_manifest_difference() -> None:
    a, b = pair()
    b = dataclasses.replace(b, entries=tuple(
        dataclasses.replace(e, digest="sha256:" + "0" * 64) if e.header.name == "oci-layout" else e for e in b.entries
    ))
    layout = a.entry("oci-layout")
    assert layout is not None
    assert triples(diff_archives(a, b).findings) == [
        ("manifest", "archive:oci-layout", layout.digest, "sha256:" + "0" * 64),
    ]


def test_recompressed_layer_renames_its_blob_without_a_cascade() -> None:
    a = archive(image([BASE, APP]), source="a.tar")
    gz = layer([F("app/run", b"echo hi\n", mode=0o755)], Compression.GZIP)
    b = archive(image([BASE, gz]), source="b.tar")
    b = retouch(b, blob_name(gz.digest), mtime=5)
    assert a.images[0].manifest != b.images[0].manifest and a.index != b.index and a.manifest_json != b.manifest_json
    assert triples(diff_archives(a, b).findings) == [
        ("mtime", f"archive:{blob_name(APP.digest)}", 0, 5),
        ("compression", "image[0].layer[1]", {"compression": "none", "digest": APP.digest},
         {"compression": "gzip", "digest": gz.digest}),
    ]


def test_config_change_is_reported_once_with_its_json_path() -> None:
    a, b = pair(env=("PATH=/bin", "DEBUG=1"))
    assert triples(diff_archives(a, b).findings) == [("config", "image[0].config:$.config.Env[1]", None, "DEBUG=1")]


def test_same_image_in_legacy_and_oci_layout_is_one_archive_format_finding() -> None:
    a = archive(image([BASE, APP]), source="a.tar")
    b = archive(image([BASE, APP]), source="b.tar", fmt=ArchiveFormat.DOCKER_LEGACY, mtime=1234)
    assert triples(diff_archives(a, b).findings) == [("archive-format", "archive", "docker-oci", "docker-legacy")]


def test_format_difference_still_compares_the_images() -> None:
    a = archive(image([BASE, APP]), source="a.tar")
    b = archive(image([BASE, APP2], tags=("example/app:2",)), source="b.tar", fmt=ArchiveFormat.DOCKER_LEGACY)
    assert [(f.category.value, f.where) for f in diff_archives(a, b).findings] == [
        ("archive-format", "archive"), ("content", "image[0].layer[1]:app/run"), ("tags", "image[0].tags"),
    ]


def test_legacy_archives_with_a_changed_layer_report_only_the_file() -> None:
    a = archive(image([BASE, APP]), source="a.tar", fmt=ArchiveFormat.DOCKER_LEGACY)
    b = archive(image([BASE, APP2]), source="b.tar", fmt=ArchiveFormat.DOCKER_LEGACY)
    assert [(f.category.value, f.where) for f in diff_archives(a, b).findings] == [
        ("content", "image[0].layer[1]:app/run"),
    ]


def test_retag_is_tags_everywhere_it_is_carried_but_reported_once() -> None:
    a, b = pair(tags=("example/app:2",))
    assert triples(diff_archives(a, b).findings) == [
        ("tags", "image[0].tags", ["example/app:1"], ["example/app:2"]),
    ]


def test_index_annotation_that_only_carries_a_name_is_tags() -> None:
    a, b = pair()
    index = dict(b.index or {})
    index["manifests"] = [{**d, "annotations": {**d["annotations"], "org.opencontainers.image.ref.name": "other"}}
                          for d in index["manifests"]]
    b = dataclasses.replace(b, index=index)
    assert triples(diff_archives(a, b).findings) == [
        ("tags", "archive:index.json:$.manifests[0].annotations['org.opencontainers.image.ref.name']", "1", "other"),
    ]


def test_manifest_annotation_is_a_manifest_finding() -> None:
    a, b = pair(manifest_annotations={"org.opencontainers.image.created": "now"})
    assert triples(diff_archives(a, b).findings) == [
        ("manifest", "image[0].manifest:$.annotations", None, {"org.opencontainers.image.created": "now"}),
    ]


def test_multi_image_archives_match_by_tag_and_report_each_reordered_list() -> None:
    x = image([BASE, APP], tags=("example/x:1",))
    y = image([BASE, APP2], tags=("example/y:1",))
    z = image([BASE], tags=("example/z:1",))
    a = archive(x, y, source="a.tar")
    b = archive(y, x, z, source="b.tar")
    findings = diff_archives(a, b).findings
    assert [(f.category.value, f.where) for f in findings] == [
        ("order", "archive"),
        ("order", "archive:index.json:$.manifests"),
        ("order", "archive:manifest.json:$"),
        ("added", "image[2]"),
    ]
    assert findings[-1].b == {"id": z.config_digest, "tags": ["example/z:1"]}


def test_reader_problems_of_both_sides_are_findings() -> None:
    problem = Finding(Category.DIGEST_MISMATCH, "archive:blobs/sha256/ab", "sha256:ab", "sha256:cd")
    a = archive(image([BASE]), source="a.tar", problems=(problem,))
    b = archive(image([BASE]), source="b.tar", problems=(problem,))
    assert [(f.category.value, f.where) for f in diff_archives(a, b).findings] == [
        ("digest-mismatch", "a:archive:blobs/sha256/ab"), ("digest-mismatch", "b:archive:blobs/sha256/ab"),
    ]


def test_identical_whole_archive_digests_skip_the_comparison() -> None:
    a = dataclasses.replace(archive(image([BASE])), digest="sha256:same")
    b = dataclasses.replace(archive(image([APP])), digest="sha256:same")
    assert diff_archives(a, b).equivalent


def test_path_globs_ignore_matching_places() -> None:
    a = archive(image([BASE, APP]), source="a.tar")
    changed = layer([F("app/run", b"echo hi\n", mode=0o755, mtime=9), F("app/log/x", b"1")])
    b = retouch(archive(image([BASE, changed]), source="b.tar"), "manifest.json", mtime=3)
    everything = diff_archives(a, b)
    assert everything.summary == {"mtime": 2, "added": 1}
    by_file = diff_archives(a, b, Ignores(paths=("app/log/*",)))
    assert by_file.summary == {"mtime": 2} and by_file.ignored == 1
    by_place = diff_archives(a, b, Ignores(paths=("image[[]0].layer[[]1]:*", "archive:*")))
    assert by_place.equivalent


def test_findings_are_sorted_by_category_then_natural_place() -> None:
    files = [F(f"f{k}", b"x", mtime=0) for k in range(12)]
    moved = [F(f"f{k}", b"x", mtime=1) for k in range(12)]
    a, b = archive(image([layer(files)])), archive(image([layer(moved)]))
    places = [f.where for f in diff_archives(a, b).findings]
    assert places == [f"image[0].layer[0]:f{k}" for k in range(12)]


def test_a_name_only_in_repositories_is_tags() -> None:
    a, b = pair()
    b = dataclasses.replace(b, repositories={**(b.repositories or {}), "example/app": {"1": "x", "extra": "x"}})
    assert [(f.category.value, f.where) for f in diff_archives(a, b).findings] == [
        ("manifest", "archive:repositories:$['example/app']['1']"),
        ("tags", "archive:repositories:$['example/app'].extra"),
    ]


def test_an_unexplained_manifest_json_field_is_manifest() -> None:
    a, b = pair()
    parent = {"Parent": "sha256:" + "1" * 64}
    b = dataclasses.replace(b, manifest_json=tuple({**m, **parent} for m in b.manifest_json or ()))
    assert triples(diff_archives(a, b).findings) == [
        ("manifest", "archive:manifest.json:$[0].Parent", None, "sha256:" + "1" * 64),
    ]


def test_same_json_in_other_bytes_is_named_once() -> None:
    a, b = pair()
    im = b.images[0]
    pretty = dataclasses.replace(im, raw_config=im.raw_config + b"\n", config_digest="sha256:" + "2" * 64)
    b = dataclasses.replace(b, images=(pretty,))
    b = dataclasses.replace(b, entries=tuple(
        dataclasses.replace(e, digest="sha256:" + "3" * 64) if e.header.name == "index.json" else e for e in b.entries
    ))
    findings = diff_archives(a, b).findings
    assert [(f.category.value, f.where, f.note.split(" (")[0]) for f in findings] == [
        ("config", "image[0].config", "same JSON, other bytes"),
        ("manifest", "archive:index.json", "same JSON, other bytes"),
    ]


def test_the_same_blob_under_another_name_is_one_archive_format_finding() -> None:
    a, b = pair()
    old = b.images[0].config_entry
    new = "config.json"
    renamed = tuple(
        dataclasses.replace(e, header=dataclasses.replace(e.header, name=new)) if e.header.name == old else e
        for e in b.entries
    )
    manifest_json = tuple({**m, "Config": new} for m in b.manifest_json or ())
    b = dataclasses.replace(b, entries=renamed, manifest_json=manifest_json,
                            images=(dataclasses.replace(b.images[0], config_entry=new),))
    assert triples(diff_archives(a, b).findings) == [("archive-format", f"archive:{old}", old, new)]
