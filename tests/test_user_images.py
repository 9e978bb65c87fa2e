"""The user's own images through the suites, as `harness run --image-archive` and `--image-ref` take them:
results keyed by the image's name, nothing of the user's changed (the archive's bytes, the engine's tags),
nothing of the run's left behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.engines.session import EngineSession
from harness.pytest_plugin import PUBLISHER, HarnessConfig
from harness.tools import Tools
from tests import archives as A

pytestmark = pytest.mark.engines

USER_TAG = "myteam/app:2.1"
CHECKS = "round_trip or repeated_saves or reference"  # quick checks that take an image


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _run_tags(engine: Engine) -> set[str]:
    """Tags under any run's namespace: this session's, the inner run's, a killed run's left on a kept farm."""
    return {t for image in engine.images() for t in image.get("RepoTags") or [] if "imgharness-run-" in t}


def _user_archive(tmp_path: Path) -> Path:
    """What a user's CI builds: a two-platform image with provenance, as buildx writes its OCI layout."""
    return A.buildx_oci(tmp_path / "app.tar", [A.platform_image("amd64", seed="u"), A.platform_image("arm64", seed="u")],
                        tag=USER_TAG)


def _run(engine: Engine, report: Path, *image_args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = subprocess.run([sys.executable, "-m", "harness", "-q", "run", "--farm-engine", engine.id,
                           "--report-dir", str(report), *image_args, "--", "--image", "app", "-k", CHECKS],
                          capture_output=True, text=True, timeout=900)
    assert (report / "report.json").exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads((report / "report.json").read_text())


@pytest.fixture
def farm_engine(harness_config: HarnessConfig, engine_session: EngineSession) -> Engine:
    """A farm engine of this run that keeps multi-platform images whole (the containerd store), else the
    first farm engine: `run --farm-engine` takes farm engines."""
    farm = [s for s in harness_config.slots if s.farm]
    if not farm:
        pytest.skip("no farm engine in this run")
    slot = next((s for s in farm if s.id == "docker-28.5.2-containerd"), farm[0])
    return engine_session.engine(slot)


def test_a_user_archive_is_measured_under_its_name_and_left_as_it_was(
        farm_engine: Engine, run_namespace: str, tmp_path: Path) -> None:
    engine = farm_engine
    archive = _user_archive(tmp_path)
    before = _digest(archive)
    tagged_before = _run_tags(engine)
    proc, report = _run(engine, tmp_path / "report", "--image-archive", f"app={archive}")
    results = report["results"]
    assert {r["image"] for r in results} == {"app"}, proc.stderr[-2000:]
    assert {r["check"] for r in results} == {"round-trip", "save-determinism", "reference-conformance"}
    assert not [r for r in results if r["outcome"] == "error"], [r["message"] for r in results]
    assert _digest(archive) == before, "the user's archive changed"
    tags = [t for image in engine.images() for t in image.get("RepoTags") or []]
    assert USER_TAG not in tags and "docker.io/" + USER_TAG not in tags, "the run loaded the user's image under its own name"
    # this session's other tests tag into the shared farm engine under run_namespace meanwhile
    left = {t for t in _run_tags(engine) - tagged_before if run_namespace not in t}
    assert not left, f"the run left images behind: {left}"


def test_a_user_registry_image_is_fetched_once_and_measured_under_its_name(
        farm_engine: Engine, registry: Registry, tools: Tools, run_namespace: str, tmp_path: Path) -> None:
    engine = farm_engine
    ref = f"{registry.host}/{run_namespace}/user-registry/app:2.1"
    pushed = tools[PUBLISHER].run("--insecure-policy", "copy", "--all", "--dest-tls-verify=false",
                                  f"oci-archive:{_user_archive(tmp_path)}", f"docker://{ref}")
    assert pushed.returncode == 0, pushed.stderr
    served = registry.served_digest(f"{run_namespace}/user-registry/app", "2.1")
    proc, report = _run(engine, tmp_path / "report", "--image-ref", f"app={ref}")
    assert {r["image"] for r in report["results"]} == {"app"}, proc.stderr[-2000:]
    assert not [r for r in report["results"] if r["outcome"] == "error"], [r["message"] for r in report["results"]]
    assert registry.served_digest(f"{run_namespace}/user-registry/app", "2.1") == served, "the user's image changed"
