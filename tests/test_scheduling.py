"""Each engine's tests run on one xdist worker, one after another (pytest 9.2 lost xdist's loadgroup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.scheduling import engine_of

ENGINES = ("docker-28.5.2-overlay2", "docker-28.5.2-overlay2-x", "podman-4.3.1-overlay")


def test_the_engine_is_found_among_the_parameters_longest_first() -> None:
    assert engine_of("suites/t.py::test_a[docker-28.5.2-overlay2-basic]", ENGINES) == "docker-28.5.2-overlay2"
    assert engine_of("suites/t.py::test_a[docker-28.5.2-overlay2-x-basic]", ENGINES) == "docker-28.5.2-overlay2-x"
    assert engine_of("suites/t.py::test_a[podman-4.3.1-overlay]", ENGINES) == "podman-4.3.1-overlay"
    assert engine_of("suites/t.py::test_a[large-podman-4.3.1-overlay]", ENGINES) == "podman-4.3.1-overlay"
    assert engine_of("suites/t.py::test_a[docker-28.5.2]", ENGINES) is None
    assert engine_of("suites/t.py::test_a", ENGINES) is None
    assert engine_of("suites/t.py::test_a[podman-4.3.1-overlay]@grp", ENGINES) == "podman-4.3.1-overlay"


TOY = '''
import os, time, pytest

@pytest.mark.parametrize("n", range(4))
def test_uses(engine_slot, n):
    time.sleep(0.1)
    with open(os.environ["OUT"], "a") as f:
        f.write(f"{engine_slot} {os.environ['PYTEST_XDIST_WORKER']}\\n")

def pytest_generate_tests(metafunc):
    if "engine_slot" in metafunc.fixturenames:
        metafunc.parametrize("engine_slot", ["one", "two", "three"])
'''


def test_each_engines_tests_run_on_one_worker(tmp_path: Path) -> None:
    """A real `-n 2 --dist loadgroup` run over three engines given by label (unreachable: the toy test
    only records which worker ran it)."""
    (tmp_path / "test_toy.py").write_text(TOY)
    out = tmp_path / "ran.txt"
    engines = [a for label in ("one", "two", "three") for a in ("--engine", f"{label}=unix://{tmp_path}/{label}.sock")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_toy.py", "-n", "2", "--dist", "loadgroup",
                           "-p", "no:cacheprovider", "-q", "--no-farm", *engines],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OUT": str(out)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line.split() for line in out.read_text().splitlines()]
    workers = {engine: {w for e, w in rows if e == engine} for engine in ("one", "two", "three")}
    assert all(len(w) == 1 for w in workers.values()), json.dumps({k: sorted(v) for k, v in workers.items()})
    assert len(set().union(*workers.values())) == 2, "the engines should be spread over both workers"
