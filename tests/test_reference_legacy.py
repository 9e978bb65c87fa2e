"""The legacy layout names layers as Docker <= 24 does: vectors taken from a Docker 20.10.24 save."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from harness.archive import read_archive
from harness.image import ArchiveFormat, EntryType
from harness.reference import build_from_layers, write_reference
from harness.reference.gojson import container_config, string, time_value
from harness.reference.legacy import chain_ids
from tests import archives as A


def _dirs(tf: tarfile.TarFile) -> None:
    for d in ("bin", "etc"):
        ti = tarfile.TarInfo(d)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(ti)
    ti = tarfile.TarInfo("etc/hello")
    ti.size = 6
    tf.addfile(ti, io.BytesIO(b"hello\n"))


def _owned(tf: tarfile.TarFile) -> None:
    ti = tarfile.TarInfo("etc/x")
    ti.size, ti.uid = 5000, 1000
    tf.addfile(ti, io.BytesIO(b"x" * 5000))


def _empty(tf: tarfile.TarFile) -> None:
    """No members."""


# `docker load` of this build, then `docker save` (Docker 20.10.24, graph driver overlay2), gave:
IMAGE_ID = "sha256:134ae50c10367484e8e3d1f4f2f450bae9e5fad129c3fb7f0e3f04b3333d434d"
V1_IDS = ["003f19bcffb0630c7de9c1aecff646b6741cc623a5e3fcb2914a7f25b30e6e64",
          "0ad023354f5d8e941b4ce3546875e311d63fa1d2ed12a75156c26041c376c5a6",
          "ecafbd608c2e6f56ab2d2313bc37b53dd90f4e3058bac95868eae07e36f11437",
          "493da19833c796c0a764db49a346dbc0946671c0aa2034d8e3f739431e57105e"]
EMPTY_CONFIG = ('{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,'
                '"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,'
                '"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}')
TOP_JSON = ('{"id":"493da19833c796c0a764db49a346dbc0946671c0aa2034d8e3f739431e57105e","parent":'
            '"ecafbd608c2e6f56ab2d2313bc37b53dd90f4e3058bac95868eae07e36f11437","created":"2023-11-14T22:13:20Z",'
            '"container_config":' + EMPTY_CONFIG + ',"config":{"Hostname":"","Domainname":"","User":"1000",'
            '"AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,'
            '"StdinOnce":false,"Env":["PATH=/bin"],"Cmd":["-c","echo hi"],"Image":"","Volumes":null,'
            '"WorkingDir":"/etc","Entrypoint":["/bin/sh"],"OnBuild":null,"Labels":{"a":"\\u003cb\\u003e\\u0026"}},'
            '"architecture":"amd64","os":"linux"}')
MIDDLE_JSON = ('{"id":"0ad023354f5d8e941b4ce3546875e311d63fa1d2ed12a75156c26041c376c5a6","parent":'
               '"003f19bcffb0630c7de9c1aecff646b6741cc623a5e3fcb2914a7f25b30e6e64","created":"1970-01-01T00:00:00Z",'
               '"container_config":' + EMPTY_CONFIG + ',"os":"linux"}')


def test_layer_ids_and_json_match_a_docker_save(tmp_path: Path) -> None:
    image_id = build_from_layers([_dirs, _owned, _empty, _dirs], tmp_path / "a.tar", tag="v1check/a:1",
                                 labels={"a": "<b>&"}, env=["PATH=/bin"], entrypoint=["/bin/sh"],
                                 cmd=["-c", "echo hi"], user="1000", workdir="/etc", epoch=1700000000,
                                 architecture="amd64")
    assert image_id == IMAGE_ID
    write_reference(read_archive(tmp_path / "a.tar"), tmp_path / "legacy.tar", layout="legacy")
    archive = read_archive(tmp_path / "legacy.tar")
    assert archive.format is ArchiveFormat.DOCKER_LEGACY and archive.problems == ()
    items = json.loads(A.tar_member(tmp_path / "legacy.tar", "manifest.json"))
    assert items == [{"Config": IMAGE_ID.split(":")[1] + ".json", "RepoTags": ["docker.io/v1check/a:1"],
                      "Layers": [f"{v}/layer.tar" for v in V1_IDS]}]
    assert A.tar_member(tmp_path / "legacy.tar", f"{V1_IDS[3]}/json").decode() == TOP_JSON
    assert A.tar_member(tmp_path / "legacy.tar", f"{V1_IDS[1]}/json").decode() == MIDDLE_JSON
    assert A.tar_member(tmp_path / "legacy.tar", f"{V1_IDS[0]}/VERSION") == b"1.0"
    assert archive.repositories == {"v1check/a": {"1": V1_IDS[3]}}
    link = next(e for e in archive.entries if e.header.name == f"{V1_IDS[3]}/layer.tar")
    assert (link.header.type, link.header.linkname) == (EntryType.SYMLINK, f"../{V1_IDS[0]}/layer.tar")
    assert [la.entry_name for la in archive.images[0].layers] == [f"{v}/layer.tar" for v in V1_IDS[:3]] + [
        f"{V1_IDS[0]}/layer.tar"]


def test_images_sharing_a_base_share_its_layer_directories(tmp_path: Path) -> None:
    base = A.layer({"etc/base": b"1"})
    one, two = A.TestImage([base, A.layer({"a": b"a"})], tags=["one:1"]), A.TestImage([base, A.layer({"b": b"b"})],
                                                                                        tags=["two:1"])
    write_reference(read_archive(A.docker_oci(tmp_path / "a.tar", [one, two])), tmp_path / "l.tar", layout="legacy")
    archive = read_archive(tmp_path / "l.tar")
    first, second = archive.images
    assert first.layers[0].entry_name == second.layers[0].entry_name
    assert len([e for e in archive.entries if e.header.name.endswith("/VERSION")]) == 3


def test_chain_ids_follow_the_oci_definition() -> None:
    a, b = A.sha(b"a"), A.sha(b"b")
    assert chain_ids([a, b]) == [a, A.sha(f"{a} {b}".encode())]


def test_go_json_details() -> None:
    assert string("<&>\u2028\x01\"\\\n") == '"\\u003c\\u0026\\u003e\\u2028\\u0001\\"\\\\\\n"'
    assert time_value("2024-01-02T03:04:05.120000000+00:00") == '"2024-01-02T03:04:05.12Z"'
    assert time_value("2024-01-02T03:04:05+02:00") == '"2024-01-02T03:04:05+02:00"'
    assert time_value(None) == '"0001-01-01T00:00:00Z"'
    config = json.loads(container_config({"cmd": "sh", "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "StopTimeout": 0,
                                          "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0}, "Shell": []}))
    assert config["Cmd"] == ["sh"] and list(config["ExposedPorts"]) == ["443/tcp", "80/tcp"]
    assert config["StopTimeout"] == 0 and config["Healthcheck"] == {"Test": ["CMD", "true"]} and "Shell" not in config
