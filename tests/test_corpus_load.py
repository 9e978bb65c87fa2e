"""A user's first steps on the farm, through the CLI: put the corpus on two engines under its tags, save one
image from both and diff the saves; a tag of ours that names another image is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator

import pytest

from harness.archive import read_archive
from harness.corpus import build_corpus, corpus_tag
from harness.engines.adapter import Engine
from harness.engines.session import EngineSession
from harness.errors import ImageNotFound
from harness.findings import Finding, changes_the_image
from harness.pytest_plugin import HarnessConfig
from harness.settings import default_home
from harness.subjects import RunSubjects

pytestmark = pytest.mark.engines


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600)


def _has(engine: Engine, ref: str) -> bool:
    try:
        engine.inspect(ref)
    except ImageNotFound:
        return False
    return True


@pytest.fixture
def two_farm_engines(harness_config: HarnessConfig, engine_session: EngineSession) -> Iterator[list[Engine]]:
    """The first two farm engines of this run (one twice when only one was asked for); the corpus tag this
    test loads is removed again where it was not there before."""
    slots = [s for s in harness_config.slots if s.farm][:2]
    if not slots:
        pytest.skip("no farm engine in this run: `corpus load` takes farm engine ids")
    engines = [engine_session.engine(s) for s in slots]
    before = {e.id: _has(e, corpus_tag("basic")) for e in engines}
    yield engines if len(engines) == 2 else engines * 2
    for e in engines:
        if not before[e.id]:
            e.remove_quietly(corpus_tag("basic"))


def test_the_corpus_goes_on_two_engines_and_their_saves_diff_as_one_image(two_farm_engines: list[Engine]) -> None:
    a, b = two_farm_engines
    tag = corpus_tag("basic")
    loaded = _cli("corpus", "load", *dict.fromkeys([a.id, b.id]), "--image", "basic")
    assert loaded.returncode == 0, loaded.stderr
    for e in (a, b):
        assert any(line.startswith(f"{e.id}  {tag}  sha256:") for line in loaded.stdout.splitlines()), loaded.stdout
    diff_ids = list(read_archive(build_corpus(default_home(), ["basic"])["basic"]).images[0].diff_ids)
    assert a.inspect(tag)["RootFS"]["Layers"] == b.inspect(tag)["RootFS"]["Layers"] == diff_ids

    again = _cli("corpus", "load", a.id, "--image", "basic")
    assert again.returncode == 0 and "(already there)" in again.stdout, again.stdout + again.stderr

    diff = _cli("diff", f"{a.id}:{tag}", f"{b.id}:{tag}", "--format", "json")  # the README's example
    assert diff.returncode in (0, 1), diff.stderr
    answer = json.loads(diff.stdout)
    findings = [Finding.from_json(f) for f in answer["findings"]]
    assert not [f for f in findings if changes_the_image(f)], "one corpus image, saved by two engines, must be one image"
    assert answer["same_image"] is True
    semantic = _cli("diff", "--semantic", f"{a.id}:{tag}", f"{b.id}:{tag}")
    assert semantic.returncode == 0 and semantic.stdout.startswith("same image: yes"), semantic.stdout + semantic.stderr

    other = str(build_corpus(default_home(), ["features"])["features"])  # another image, as a file
    different = _cli("diff", "--semantic", f"{a.id}:{tag}", other, "--format", "json")
    assert different.returncode == 1 and json.loads(different.stdout)["same_image"] is False, different.stderr
    assert _cli("diff", "--semantic", f"{a.id}:{tag}", other).stdout.startswith("same image: no")


def test_a_corpus_tag_naming_another_image_is_left_alone(engine: Engine, subjects: RunSubjects) -> None:
    if not engine.spec.managed:
        pytest.skip("`corpus load` takes farm engine ids; this engine is not the farm's")
    tag = corpus_tag("features")
    ours = subjects.ensure(engine, "basic")  # the run's own image, under the run's namespace
    had_features = _has(engine, tag)
    if had_features:  # the corpus image itself (nothing else gets this tag): restored below
        engine.remove(tag)
    engine.tag(ours, tag.split(":")[0], tag.split(":")[1])
    try:
        proc = _cli("corpus", "load", engine.id, "--image", "features", "--image", "basic")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{tag} names an image that is not corpus image 'features'" in proc.stderr
        assert "nothing loaded" in proc.stderr and proc.stdout == ""
        assert engine.inspect(tag)["Id"] == engine.inspect(ours)["Id"], "the tag must still name what it named"
    finally:
        engine.remove_quietly(tag)
        if had_features:
            assert _cli("corpus", "load", engine.id, "--image", "features").returncode == 0
