"""The differ's building blocks: header classes, JSON paths, image and layer matching."""

from __future__ import annotations

import dataclasses

import pytest
from tests.memlayer import F, layer
from tests.modelkit import image

from harness.diff.headers import header_changes, normalize_name
from harness.diff.jsondiff import json_changes, json_path
from harness.diff.matching import align_layers, match_images
from harness.findings import Category
from harness.image import EntryType, TarHeader

BASE = TarHeader("etc/passwd", EntryType.FILE, 0o644, 0, 0, "root", "root", 1000, 10)


@pytest.mark.parametrize(("fields", "category", "a", "b", "note"), [
    ({"mtime": 2000}, Category.MTIME, 1000, 2000, "mtime"),
    ({"mtime": 1000.5}, Category.MTIME, 1000, 1000.5, "mtime"),
    ({"pax": (("atime", "5"),)}, Category.MTIME, None, "5", "pax:atime"),
    ({"uid": 1000}, Category.OWNERSHIP, 0, 1000, "uid"),
    ({"uname": "", "gname": ""}, Category.OWNERSHIP,
     {"uname": "root", "gname": "root"}, {"uname": "", "gname": ""}, "uname, gname"),
    ({"mode": 0o600}, Category.MODE, "0644", "0600", "mode"),
    ({"type": EntryType.SYMLINK}, Category.MODE, "file", "symlink", "type"),
    ({"pax": (("SCHILY.xattr.user.a", "1"),)}, Category.XATTR, None, "1", "pax:SCHILY.xattr.user.a"),
])
def test_each_header_field_has_one_category(fields: dict, category: Category, a: object, b: object, note: str) -> None:
    changes = header_changes(BASE, dataclasses.replace(BASE, **fields))
    assert [(c.category, c.a, c.b, c.note) for c in changes] == [(category, a, b, note)]


def test_content_is_the_digest_and_not_its_size() -> None:
    other = dataclasses.replace(BASE, size=11, mtime=5)
    changes = header_changes(BASE, other, digests=("sha256:1", "sha256:2"))
    assert [(c.category, c.a, c.b) for c in changes] == [
        (Category.MTIME, 1000, 5), (Category.CONTENT, "sha256:1", "sha256:2"),
    ]
    link = dataclasses.replace(BASE, type=EntryType.SYMLINK, size=0, linkname="a")
    changes = header_changes(link, dataclasses.replace(link, linkname="b"), digests=(None, None))
    assert [(c.category, c.a, c.b, c.note) for c in changes] == [(Category.CONTENT, "a", "b", "linkname")]


def test_content_is_not_compared_without_digests() -> None:
    assert header_changes(BASE, dataclasses.replace(BASE, size=99)) == []


@pytest.mark.parametrize(("name", "path"), [("./etc/", "etc"), ("/etc/passwd", "etc/passwd"), ("./", "."), ("a", "a")])
def test_normalize_name(name: str, path: str) -> None:
    assert normalize_name(name) == path


def test_json_paths() -> None:
    assert json_path(("config", "Env", 1)) == "$.config.Env[1]"
    title = "org.opencontainers.image.title"
    assert json_path(("config", "Labels", title)) == f"$.config.Labels['{title}']"
    assert json_path(()) == "$"
    assert json_path(("it's",)) == "$['it\\'s']"


def test_json_changes_align_inserted_list_items() -> None:
    a = {"config": {"Env": ["A=1", "B=2", "C=3"]}, "created": "x"}
    b = {"config": {"Env": ["A=1", "X=9", "B=2", "C=3"]}, "created": "y"}
    assert [(c.path, c.a, c.b) for c in json_changes(a, b)] == [
        ("$.config.Env[1]", None, "X=9"), ("$.created", "x", "y"),
    ]
    assert json_changes(a, a) == []


def test_images_match_by_first_tag_then_shared_tag_then_id_then_position() -> None:
    one = layer([F("a", b"1")])
    two = layer([F("b", b"2")])
    untagged = image([one], tags=(), env=("E=1",))
    a = [image([one], tags=("x:1",)), image([two], tags=("y:1", "y:2")), untagged, image([two], tags=("z:1",))]
    b = [image([two], tags=("y:2",)), image([one], tags=("w:1",)), image([one], tags=("x:1",)), untagged]
    pairs, only_a, only_b = match_images(a, b)
    assert [(p.a_index, p.b_index) for p in pairs] == [(0, 2), (1, 0), (2, 3), (3, 1)]
    assert only_a == only_b == []
    pairs, only_a, only_b = match_images(a[:1], b[2:] + b[:1])
    assert [(p.a_index, p.b_index) for p in pairs] == [(0, 0)]
    assert [u.label for u in only_b] == ["image[1]", "image[2]"]


def test_layers_align_by_diff_id() -> None:
    assert align_layers(["b", "x", "app"], ["b", "app"]) == ([(0, 0), (2, 1)], [1], [])
    assert align_layers(["b", "x", "app"], ["b", "y", "app", "z"]) == ([(0, 0), (1, 1), (2, 2)], [], [3])
    assert align_layers(["a"], []) == ([], [0], [])


def test_public_api() -> None:
    import harness.diff

    assert sorted(harness.diff.__all__) == ["DiffResult", "diff_archives", "sort_findings"]
    assert all(hasattr(harness.diff, name) for name in harness.diff.__all__)
