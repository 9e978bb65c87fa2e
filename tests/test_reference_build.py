"""The builder: one layer per source, filesystem details kept, the same inputs give the same bytes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.errors import DigestMismatch, UsageError
from harness.image import EntryType, FileEntry
from harness.reference import build_from_layers, build_image, write_reference
from harness.reference.layertar import produce
from tests import archives as A

EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"  # 1024 zero bytes


def _rootfs(root: Path, *, mtime: int) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o4755)
    (root / "etc" / "conf").write_text("a=1\n")
    os.link(root / "etc" / "conf", root / "etc" / "conf.hard")
    (root / "etc" / "link").symlink_to("conf")
    (root / "etc" / ".wh.gone").write_bytes(b"")
    os.mkfifo(root / "etc" / "pipe")
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def _files(path: Path, layer: int = 0) -> dict[str, FileEntry]:
    return {f.path: f for f in read_archive(path).images[0].layers[layer].files()}


def test_directory_layer_keeps_modes_links_whiteouts_and_clamps_times(tmp_path: Path) -> None:
    root = _rootfs(tmp_path / "root", mtime=2_000_000_000)
    build_image([root], tmp_path / "a.tar", tag="t:1", epoch=1_000_000)
    files = _files(tmp_path / "a.tar")
    assert list(files) == ["bin", "bin/tool", "etc", "etc/.wh.gone", "etc/conf", "etc/conf.hard", "etc/link",
                           "etc/pipe"]
    assert files["bin/tool"].header.mode == 0o4755 and files["etc/conf"].digest == A.sha(b"a=1\n")
    assert (files["etc/conf.hard"].header.type, files["etc/conf.hard"].header.linkname) == (EntryType.HARDLINK,
                                                                                             "etc/conf")
    assert (files["etc/link"].header.type, files["etc/link"].header.linkname) == (EntryType.SYMLINK, "conf")
    assert files["etc/.wh.gone"].header.type is EntryType.FILE
    assert files["etc/pipe"].header.type is EntryType.FIFO
    assert {f.header.mtime for f in files.values()} == {1_000_000}
    assert {(f.header.uid, f.header.uname) for f in files.values()} == {(os.getuid(), "")}


def test_same_inputs_give_the_same_bytes_whatever_the_file_times(tmp_path: Path) -> None:
    build_image([_rootfs(tmp_path / "one", mtime=1_800_000_000)], tmp_path / "a.tar", tag="t:1",
                labels={"b": "2", "a": "1"}, env=["X=1"], cmd=["sh"])
    build_image([_rootfs(tmp_path / "two", mtime=1_900_000_000)], tmp_path / "b.tar", tag="t:1",
                labels={"a": "1", "b": "2"}, env=["X=1"], cmd=["sh"])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    write_reference(read_archive(tmp_path / "a.tar"), tmp_path / "r.tar")
    assert (tmp_path / "r.tar").read_bytes() == (tmp_path / "a.tar").read_bytes()


def test_an_empty_directory_is_the_empty_layer(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    build_image([tmp_path / "empty"], tmp_path / "a.tar")
    assert read_archive(tmp_path / "a.tar").images[0].diff_ids == (EMPTY_LAYER,)


def test_config_fields_history_and_platform(tmp_path: Path) -> None:
    (tmp_path / "l").mkdir()
    image_id = build_image([tmp_path / "l", tmp_path / "l"], tmp_path / "a.tar", tag="t:1", labels={"k": "v"},
                           env=["A=1", "B=2"], entrypoint=["/bin/sh", "-c"], cmd=["echo"], user="1000:1000",
                           workdir="/w", epoch=86400, architecture="arm", variant="v7")
    image = read_archive(tmp_path / "a.tar").images[0]
    assert image.id == image_id and image.repo_tags == ("t:1",)
    config = image.config
    assert config["created"] == "1970-01-02T00:00:00Z" and config["os"] == "linux"
    assert (config["architecture"], config["variant"]) == ("arm", "v7")
    assert config["config"] == {"Env": ["A=1", "B=2"], "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo"],
                                "Labels": {"k": "v"}, "User": "1000:1000", "WorkingDir": "/w"}
    assert [h["created"] for h in config["history"]] == ["1970-01-02T00:00:00Z"] * 2
    assert "empty_layer" not in json.dumps(config["history"])
    assert image.raw_config == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def test_code_layers_make_owners_xattrs_and_large_files_without_disk(tmp_path: Path) -> None:
    size = 8 << 20

    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    def layer(tf: tarfile.TarFile) -> None:
        owned = tarfile.TarInfo("home/app/owned")
        owned.uid = owned.gid = 1000
        owned.mtime = 4_000_000_000  # clamped to the epoch
        owned.pax_headers = {"SCHILY.xattr.user.origin": "test"}
        tf.addfile(owned, io.BytesIO(b""))
        big = tarfile.TarInfo("big.bin")
        big.size = size
        tf.addfile(big, Zeros())

    build_from_layers([layer], tmp_path / "a.tar", epoch=100)
    files = _files(tmp_path / "a.tar")
    assert (files["home/app/owned"].header.uid, files["home/app/owned"].header.mtime) == (1000, 100)
    assert files["home/app/owned"].header.xattrs == {"user.origin": "test"}
    assert files["big.bin"].digest == A.sha(bytes(size))


def test_filesystem_xattrs_are_kept(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    target = tmp_path / "root" / "f"
    target.write_bytes(b"x")
    try:
        os.setxattr(target, "user.kind", b"test")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    build_image([tmp_path / "root"], tmp_path / "a.tar")
    assert _files(tmp_path / "a.tar")["f"].header.xattrs == {"user.kind": "test"}


def test_a_layer_source_that_changes_between_passes_is_refused(tmp_path: Path) -> None:
    calls = []

    def unstable(tf: tarfile.TarFile) -> None:
        calls.append(1)
        data = str(len(calls)).encode()
        info = tarfile.TarInfo("n")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    with pytest.raises(DigestMismatch):
        build_from_layers([unstable], tmp_path / "a.tar")
    assert not list(tmp_path.iterdir())


def test_errors_in_layer_code_reach_the_reader() -> None:
    def broken(tf: tarfile.TarFile) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with produce(broken, 0) as stream:
            stream.read()


def test_builder_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least one layer"):
        build_image([], tmp_path / "a.tar")
    with pytest.raises(UsageError, match="not a directory"):
        build_image([tmp_path / "missing"], tmp_path / "a.tar")
