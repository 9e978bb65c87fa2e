"""Layers and the files inside them, diffed through whole archives so that suppression is tested too."""

from __future__ import annotations

import tarfile

from tests.memlayer import F, layer
from tests.modelkit import archive, image

from harness.diff import diff_archives
from harness.findings import Category, Finding
from harness.image import Archive, Compression

BASE_FILES = [F("bin/", type=tarfile.DIRTYPE, mode=0o755), F("bin/sh", b"busybox", mode=0o755)]
APP_FILES = [F("app/", type=tarfile.DIRTYPE, mode=0o755), F("app/run", b"#!/bin/sh\necho hi\n", mode=0o755, mtime=100),
             F("app/conf", b"x=1\n", mtime=100)]


def diff(a_layers: list, b_layers: list) -> list[Finding]:
    a = archive(image(a_layers), source="a.tar")
    b = archive(image(b_layers), source="b.tar")
    return list(diff_archives(a, b).findings)


def triples(findings: list[Finding]) -> list[tuple[str, str, object, object]]:
    return [(f.category.value, f.where, f.a, f.b) for f in findings]


def test_same_layers_are_equivalent_and_not_read() -> None:
    a_layers = [layer(BASE_FILES), layer(APP_FILES)]
    b_layers = [layer(BASE_FILES), layer(APP_FILES)]
    assert diff(a_layers, b_layers) == []
    assert [lay.reads for lay in a_layers + b_layers] == [[], [], [], []]


def test_recompressed_layer_is_one_compression_finding() -> None:
    base = layer(BASE_FILES)
    gz, gz9 = layer(APP_FILES, Compression.GZIP, level=1), layer(APP_FILES, Compression.GZIP, level=9)
    findings = diff([base, gz], [base, gz9])
    assert len(findings) == 1, findings
    (f,) = findings
    assert (f.category, f.where) == (Category.COMPRESSION, "image[0].layer[1]")
    assert f.a == {"compression": "gzip", "digest": gz.digest}
    assert f.b == {"compression": "gzip", "digest": gz9.digest}
    assert gz.reads == gz9.reads == []


def test_uncompressed_against_zstd_is_one_compression_finding() -> None:
    plain, zst = layer(APP_FILES), layer(APP_FILES, Compression.ZSTD, level=3)
    findings = diff([layer(BASE_FILES), plain], [layer(BASE_FILES), zst])
    assert triples(findings) == [("compression", "image[0].layer[1]",
                                  {"compression": "none", "digest": plain.digest},
                                  {"compression": "zstd", "digest": zst.digest})]


def test_mtime_only_change_is_mtime_not_content() -> None:
    changed = [F(f.path, f.data, f.type, f.mode, 200 if f.path == "app/conf" else f.mtime) for f in APP_FILES]
    findings = diff([layer(BASE_FILES), layer(APP_FILES)], [layer(BASE_FILES), layer(changed)])
    assert triples(findings) == [("mtime", "image[0].layer[1]:app/conf", 100, 200)]


def test_each_file_field_class_is_its_own_finding() -> None:
    a = [F("f", b"1", mtime=1), F("o", b"o"), F("m", b"m"), F("x", b"x"), F("c", b"c"),
         F("l", type=tarfile.SYMTYPE, linkname="f"), F("gone", b"g")]
    b = [F("f", b"2", mtime=2), F("o", b"o", uid=1000, uname="me"), F("m", b"m", mode=0o600),
         F("x", b"x", pax={"SCHILY.xattr.security.capability": "cap"}), F("c", b"C"),
         F("l", type=tarfile.SYMTYPE, linkname="c"), F("new", b"n")]
    findings = diff([layer(a)], [layer(b)])
    where = "image[0].layer[0]:"
    assert sorted((f.category.value, f.where.removeprefix(where)) for f in findings) == sorted([
        ("mtime", "f"), ("content", "f"), ("ownership", "o"), ("mode", "m"), ("xattr", "x"), ("content", "c"),
        ("content", "l"), ("removed", "gone"), ("added", "new"),
    ])
    by = {(f.category.value, f.where.removeprefix(where)): f for f in findings}
    assert (by["ownership", "o"].a, by["ownership", "o"].b) == ({"uid": 0, "uname": ""}, {"uid": 1000, "uname": "me"})
    assert (by["content", "l"].a, by["content", "l"].b, by["content", "l"].note) == ("f", "c", "linkname")
    assert by["removed", "gone"].b is None and "1 bytes" in by["removed", "gone"].a


def test_same_files_in_another_order_is_order() -> None:
    findings = diff([layer(APP_FILES)], [layer(APP_FILES[::-1])])
    assert triples(findings) == [("order", "image[0].layer[0]", "app", "app/conf")]


def test_same_files_in_another_tar_encoding_is_archive_format() -> None:
    pax, gnu = layer(APP_FILES, fmt=tarfile.PAX_FORMAT), layer(APP_FILES, fmt=tarfile.GNU_FORMAT)
    assert pax.diff_id != gnu.diff_id
    (f,) = diff([pax], [gnu])
    assert (f.category, f.where, f.a, f.b) == (Category.ARCHIVE_FORMAT, "image[0].layer[0]", pax.diff_id, gnu.diff_id)
    assert "tar encoding" in f.note


def test_dot_slash_names_are_the_same_files() -> None:
    dotted = [F("./" + f.path, f.data, f.type, f.mode, f.mtime) for f in APP_FILES]
    (f,) = diff([layer(APP_FILES)], [layer(dotted)])
    assert f.category is Category.ARCHIVE_FORMAT


def test_recompressed_and_changed_layer_reports_both() -> None:
    changed = APP_FILES[:2] + [F("app/conf", b"x=2\n", mtime=100)]
    findings = diff([layer(APP_FILES)], [layer(changed, Compression.GZIP)])
    assert sorted((f.category.value, f.where) for f in findings) == [
        ("compression", "image[0].layer[0]"), ("content", "image[0].layer[0]:app/conf"),
    ]


def test_extra_layer_is_added_or_removed_and_the_rest_stays_aligned() -> None:
    base, extra, app = layer(BASE_FILES), layer([F("extra", b"e")]), layer(APP_FILES)
    steps = {base.diff_id: "ADD rootfs", extra.diff_id: "COPY extra", app.diff_id: "COPY app"}

    def build(layers: list, source: str) -> Archive:
        history = [{"created_by": steps[lay.diff_id]} for lay in layers]
        return archive(image(layers, history=history), source=source)

    findings = diff_archives(build([base, extra, app], "a"), build([base, app], "b")).findings
    assert triples(list(findings)) == [
        ("removed", "image[0].layer[1]", extra.diff_id, None),
        ("config", "image[0].config:$.history[1]", {"created_by": "COPY extra"}, None),
    ]
    findings = diff_archives(build([base, app], "a"), build([base, app, extra], "b")).findings
    assert triples(list(findings)) == [
        ("added", "image[0].layer[2]", None, extra.diff_id),
        ("config", "image[0].config:$.history[2]", None, {"created_by": "COPY extra"}),
    ]
    assert base.reads == app.reads == []


def test_history_and_created_are_config_differences() -> None:
    lay = layer(APP_FILES)
    a = archive(image([lay], created="2024-01-01T00:00:00Z"))
    b = archive(image([lay], created="2024-06-01T00:00:00Z"))
    findings = diff_archives(a, b).findings
    assert triples(list(findings)) == [
        ("config", "image[0].config:$.created", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"),
        ("config", "image[0].config:$.history[0].created", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z"),
    ]


def test_changed_layer_does_not_cascade_into_config_manifest_or_entries() -> None:
    changed = APP_FILES[:2] + [F("app/conf", b"x=2\n", mtime=100)]
    findings = diff([layer(BASE_FILES), layer(APP_FILES)], [layer(BASE_FILES), layer(changed)])
    assert triples(findings) == [
        ("content", "image[0].layer[1]:app/conf", findings[0].a, findings[0].b),
    ]
    assert str(findings[0].a).startswith("sha256:") and findings[0].note == "digest"
