"""The user's images as options and inventory name them, and the tags a run gives them: no engine needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.subjects import RunSubjects, Subject, UserImage, user_images


def test_names_come_from_the_option_the_file_or_the_reference(tmp_path: Path) -> None:
    archive = tmp_path / "app-oci.tar"
    archive.write_bytes(b"")
    inventory = tmp_path / "engines.toml"
    inventory.write_text('[engines.a]\nendpoint = "unix:///x.sock"\n[images]\nbase = {ref = "r.example/t/base:12"}\n'
                         'local = {archive = "app-oci.tar"}\n')
    found = user_images([str(archive), f"mine={archive}"], ["registry.example:5000/team/app:1.2"], str(inventory))
    assert found == [UserImage("app-oci", archive=str(archive)), UserImage("mine", archive=str(archive)),
                     UserImage("app-1.2", ref="registry.example:5000/team/app:1.2"),
                     UserImage("base", ref="r.example/t/base:12"), UserImage("local", archive=str(archive))]


@pytest.mark.parametrize(("archives", "refs", "message"), [
    (["x=/nonexistent.tar"], [], "image x: /nonexistent.tar: no such file"),
    (["app=/etc/hostname"], ["app=r.example/a:1"], "image name 'app' given twice"),
    (["+++=/etc/hostname"], [], "gives no usable image name"),
])
def test_a_wrong_image_is_a_usage_error(archives: list[str], refs: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        user_images(archives, refs, None)


def test_run_refuses_a_wrong_image_before_any_engine_in_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--image-archive", "app=/nonexistent.tar"],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "imgharness: error: image app: /nonexistent.tar: no such file\n"


def test_a_users_tags_move_below_the_run_namespace_and_back(tmp_path: Path) -> None:
    subjects = RunSubjects({"app": Subject("app", tmp_path / "app.tar", user=True)}, "imgharness-run-0123456789",
                           tmp_path, tmp_path / "busybox")
    moved = subjects._moved("app", "registry.example:5000/Team/app:1.2")
    assert moved == "imgharness-run-0123456789/app/registry.example-5000/team/app:1.2"
    assert subjects._moved("app", "ubuntu:24.04") == "imgharness-run-0123456789/app/ubuntu:24.04"
