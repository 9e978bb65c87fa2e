"""The user's data is safe: against a user's own engine, a run touches only what it created.

The engine is a daemon of a farm of our own, given to the run as a *user* engine
(`--engine unix://… --no-farm`), pre-loaded with unrelated images and tags — one
of them spelled like our corpus.  After a run, and after a run interrupted with
Ctrl-C, every image and tag that was there before is there unchanged, and
nothing the run created is left.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines.adapter import Engine
from harness.engines.farm import Farm
from harness.reference.build import build_from_layers
from harness.settings import default_home, package_cache

pytestmark = pytest.mark.engines  # a daemon of its own, given to `run` as the user's

ENGINE = "docker-28.5.2-containerd"
SUITES = ["suites/test_round_trip.py", "suites/test_repodigests_unique.py", "suites/test_delta.py",
          "suites/test_concurrent_clients.py"]


def _layer(name: str) -> object:
    def write(tf: tarfile.TarFile) -> None:
        data = f"user data {name}\n".encode()
        info = tarfile.TarInfo(f"{name}.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return write


@pytest.fixture
def user_engine() -> Iterator[tuple[Engine, Path]]:
    home = Path(tempfile.mkdtemp(prefix="imgh-", dir="/tmp"))
    farm = Farm(home=home, cache=package_cache(default_home()))
    try:
        [st] = farm.up([ENGINE])
        assert st.healthy, st.error
        engine = Engine(st.spec())
        for tags, name in ((["user/app:1", "user/app:latest"], "app"), (["imgharness/corpus-basic:v3"], "lookalike"),
                           (["other/thing:x"], "thing"), ([], "untagged")):
            archive = home / f"{name}.tar"
            build_from_layers([_layer(name)], archive, tag=tags[0] if tags else None, epoch=1)  # type: ignore[list-item]
            engine.load(archive)
            for extra in tags[1:]:
                repo, tag = extra.rsplit(":", 1)
                engine.tag(tags[0], repo, tag)
        yield engine, home
        engine.close()
    finally:
        farm.down()
        shutil.rmtree(home, ignore_errors=True)


def _snapshot(engine: Engine) -> dict[str, tuple[list[str], list[str]]]:
    return {i["Id"]: (sorted(i.get("RepoTags") or []), sorted(i.get("RepoDigests") or []))
            for i in engine.images()}


def _run_argv(engine: Engine, report: Path, workers: str, suites: list[str] = SUITES) -> list[str]:
    return [sys.executable, "-m", "harness", "-q", "run", "--engine", engine.spec.endpoint, "-n", workers,
            "--report-dir", str(report), "--", "--no-farm", *suites, "--image", "basic"]


def _assert_untouched(engine: Engine, before: dict[str, tuple[list[str], list[str]]]) -> None:
    after = _snapshot(engine)
    for image_id, (tags, digests) in before.items():
        assert image_id in after, f"an image the user had is gone: {image_id} {tags}"
        assert after[image_id][0] == tags, f"tags of {image_id} changed: {tags} → {after[image_id][0]}"
        assert after[image_id][1] == digests, f"RepoDigests of {image_id} changed"
    ours = [t for tags, _ in after.values() for t in tags if "imgharness-run-" in t]
    assert ours == [], f"the run left its tags behind: {ours}"
    assert set(after) == set(before), f"the run left images behind: {set(after) - set(before)}"
    assert engine.containers() == [], "the run left containers behind"


def test_a_run_touches_only_what_it_created(user_engine: tuple[Engine, Path]) -> None:
    engine, home = user_engine
    before = _snapshot(engine)
    assert len(before) == 4
    env = dict(os.environ, IMGHARNESS_HOME=str(home), IMGHARNESS_PACKAGES=str(package_cache(default_home())))
    proc = subprocess.run(_run_argv(engine, home / "report", "2"), capture_output=True, text=True,
                          timeout=900, env=env, cwd=Path(__file__).parents[1])
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    _assert_untouched(engine, before)


@pytest.mark.parametrize(("suites", "created"), [
    (SUITES, "imgharness-run-"),  # at the first tag of the run
    (["suites/test_concurrent_clients.py"], "/churn-"),  # while the other client loads and removes images
], ids=["first-tag", "during-churn"])
def test_ctrl_c_cleans_up_too(user_engine: tuple[Engine, Path], suites: list[str], created: str) -> None:
    engine, home = user_engine
    before = _snapshot(engine)
    env = dict(os.environ, IMGHARNESS_HOME=str(home), IMGHARNESS_PACKAGES=str(package_cache(default_home())))
    proc = subprocess.Popen(_run_argv(engine, home / "report", "0", suites), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=Path(__file__).parents[1], start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(created in t for image in engine.images() for t in image.get("RepoTags") or []):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it created anything"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    _assert_untouched(engine, before)
