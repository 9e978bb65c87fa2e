"""`build`, `reference` and `inspect` on the command line: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.cli import main
from tests import archives as A


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_build_takes_layers_in_order_and_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _tree(tmp_path / "base", {"etc/os": "test\n"})
    _tree(tmp_path / "more" / "02-app", {"app/run": "run\n"})
    _tree(tmp_path / "more" / "01-lib", {"lib/x": "x\n"})
    args = [str(base), "--layer-per", str(tmp_path / "more"), "--tag", "demo/app:1", "--label", "a=b=c",
            "--env", "B=2", "--env", "A=1", "--entrypoint", '["/bin/sh", "-c"]', "--cmd=echo", "--cmd", "hi",
            "--user", "1000", "--workdir", "/app", "--epoch", "42", "--arch", "arm64"]
    assert main(["build", *args, "-o", str(tmp_path / "a.tar")]) == 0
    image_id = capsys.readouterr().out.strip()
    assert main(["build", *args, "-o", str(tmp_path / "b.tar")]) == 0
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    image = read_archive(tmp_path / "a.tar").images[0]
    assert image.id == image_id and image.repo_tags == ("demo/app:1",)
    assert [[f.path for f in la.files()] for la in image.layers] == [
        ["etc", "etc/os"], ["lib", "lib/x"], ["app", "app/run"]]
    assert image.config["config"] == {"Env": ["B=2", "A=1"], "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo", "hi"],
                                      "Labels": {"a": "b=c"}, "User": "1000", "WorkingDir": "/app"}
    assert image.config["architecture"] == "arm64" and image.config["created"] == "1970-01-01T00:00:42Z"


@pytest.mark.parametrize("args, message", [
    (["--label", "novalue"], "--label 'novalue': expected KEY=VALUE"),
    (["--entrypoint", "[1, 2]"], "expected a JSON array of strings"),
    (["--cmd", "[oops"], "not a JSON array"),
    (["--layer-per", "/nonexistent"], "--layer-per /nonexistent: not a directory"),
])
def test_build_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                        message: str) -> None:
    (tmp_path / "d").mkdir()
    assert main(["build", str(tmp_path / "d"), "-o", str(tmp_path / "a.tar"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_build_needs_a_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "-o", str(tmp_path / "a.tar")]) == 2
    assert "no layers" in capsys.readouterr().err


def test_reference_writes_canonical_bytes_and_prints_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = [A.sample_image("a:1")]
    for name, make in (("ctr", lambda p: A.docker_oci(p, images, how="gzip")), ("podman", lambda p: A.podman(p, images))):
        assert main(["reference", str(make(tmp_path / f"{name}.tar")), "-o", str(tmp_path / f"{name}.ref")]) == 0
    assert (tmp_path / "ctr.ref").read_bytes() == (tmp_path / "podman.ref").read_bytes()
    assert capsys.readouterr().out == f"{images[0].id} a:1\n" * 2
    assert main(["reference", str(tmp_path / "ctr.tar"), "-o", str(tmp_path / "legacy.ref"), "--layout", "legacy"]) == 0
    assert read_archive(tmp_path / "legacy.ref").format.value == "docker-legacy"


def test_reference_warns_about_problems_and_fails_on_bad_layers(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    image = A.sample_image("a:1")
    src = A.docker_oci(tmp_path / "a.tar", [image])
    index = json.loads(A.tar_member(src, "index.json"))
    index["manifests"][0]["size"] = 1
    A.rewrite(src, tmp_path / "b.tar", {"index.json": A.jdump(index)})
    assert main(["reference", str(tmp_path / "b.tar"), "-o", str(tmp_path / "b.ref")]) == 0
    assert "warning: digest-mismatch archive:index.json:$.manifests[0].size: expected 1" in capsys.readouterr().err
    broken = A.rewrite(src, tmp_path / "c.tar", {f"blobs/sha256/{A.hexof(image.diff_ids[0])}": A.layer({"x": b"1"})})
    assert main(["-q", "reference", str(broken), "-o", str(tmp_path / "c.ref")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgharness: error: image[0] (linux/amd64) layer 0 (uncompressed): expected sha256:")
    assert err.count("\n") == 1
    assert not (tmp_path / "c.ref").exists()


def test_inspect_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = A.sample_image("a:1")
    path = A.docker_oci(tmp_path / "a.tar", [image], how="gzip")
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"image[0] {image.id}  a:1" in text and "layer 1 " in text and "gzip, 4 files" in text
    assert 'Env ["PATH=/bin"]' in text
    assert main(["inspect", str(path), "--format", "json", "--no-files"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["format"] == "docker-oci" and view["problems"] == []
    layer = view["images"][0]["layers"][0]
    assert layer["diff_id"] == image.diff_ids[0] and layer["compression"] == "gzip" and layer["files"] is None
    assert view["images"][0]["platform"] == "linux/amd64" and view["images"][0]["config"]["rootfs"]["type"] == "layers"


def test_sources_that_are_not_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["inspect", str(tmp_path / "missing.tar")]) == 2
    assert "no such file (give an archive path or ENGINE_ID:IMAGE_REF)" in capsys.readouterr().err
    saved = A.oci(tmp_path / "saved.tar", [A.sample_image("a:1")])
    calls = []

    def materialize(source: str, workdir: Path) -> Path:
        calls.append(source)
        return Path(shutil.copy(saved, workdir / "x.tar"))

    monkeypatch.setitem(sys.modules, "harness.engines.image_refs", types.SimpleNamespace(materialize=materialize))
    assert main(["reference", "docker-28:a:1", "-o", str(tmp_path / "r.tar")]) == 0
    assert calls == ["docker-28:a:1"] and read_archive(tmp_path / "r.tar").images[0].repo_tags == ("a:1",)
