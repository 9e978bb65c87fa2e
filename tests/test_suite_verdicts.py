"""The suites' verdicts agree with what the plain docker CLI shows when the same thing is done by hand.

One real `imgharness run` (the main job, restricted to the `basic` image) is made
once per session; each engine then repeats the check with the docker CLI and
`sha256sum`-style hashing, and the report's outcome must match.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from harness.subjects import RunSubjects
from harness.engines.adapter import Engine
from harness.engines.registry import Registry

CHECKS = "repeated_saves or push_to_several"


@pytest.fixture(scope="session")
def suite_report(run_tmp: Path) -> dict[str, Any]:
    """report.json of one suite run, shared by xdist workers (made once, behind a file lock)."""
    shared = run_tmp
    out = shared / "suite-report"
    with FileLock(str(shared / "suite-report.lock")):
        if not (out / "report.json").exists():
            proc = subprocess.run(
                [sys.executable, "-m", "harness", "-q", "run", "--report-dir", str(out), "--repeat", "2",
                 "--", "--image", "basic", "-k", CHECKS],
                capture_output=True, text=True, timeout=1500)
            assert proc.returncode in (0, 1), f"the run itself broke:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return dict(json.loads((out / "report.json").read_text()))


def _result(report: dict[str, Any], check: str, engine: str) -> dict[str, Any]:
    found = [r for r in report["results"] if r["check"] == check and r["engine"] == engine and r["image"] == "basic"]
    assert len(found) == 1, f"expected one {check} result for {engine}, got {len(found)}"
    return found[0]


def _cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["docker", "-H", engine.spec.endpoint, *args], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def test_report_covers_every_engine(engine: Engine, suite_report: dict[str, Any]) -> None:
    assert suite_report["schema"] == 1
    assert engine.id in {e["id"] for e in suite_report["engines"]}
    for check in ("save-determinism", "repodigests-unique"):
        result = _result(suite_report, check, engine.id)
        assert result["outcome"] in ("pass", "fail"), f"{check} on {engine.id}: {result['message']}"
        if result["outcome"] == "fail":
            assert result["findings"], "a failed check must carry its evidence"


def test_save_determinism_verdict_matches_docker_cli(engine: Engine, suite_report: dict[str, Any],
                                                    subjects: RunSubjects) -> None:
    ref = subjects.ensure(engine, "basic")
    digests = []
    for i in range(2):
        if i:
            time.sleep(1.02 - time.time() % 1.0)
        digests.append(hashlib.sha256(_cli(engine, "save", ref).stdout).hexdigest())
    by_hand = "pass" if digests[0] == digests[1] else "fail"
    assert _result(suite_report, "save-determinism", engine.id)["outcome"] == by_hand


def test_repodigests_verdict_matches_docker_cli(engine: Engine, suite_report: dict[str, Any],
                                                registry: Registry, subjects: RunSubjects) -> None:
    source = subjects.ensure(engine, "basic")
    base = f"{registry.host}/imgharness-by-hand-{uuid.uuid4().hex[:8]}/{engine.id}"
    refs = [f"{base}/{ns}/img:{tag}" for ns in ("ns1", "ns2") for tag in ("latest", "1.0.0")]
    try:
        for ref in refs:
            _cli(engine, "tag", source, ref)
            _cli(engine, "push", "-q", ref)
        inspected = json.loads(_cli(engine, "image", "inspect", source).stdout)[0]
        digests = inspected.get("RepoDigests") or []
        served = set()
        for ref in refs:
            repo, tag = ref[len(registry.host) + 1:].rsplit(":", 1)
            req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{tag}", method="HEAD", headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.docker.distribution.manifest.v2+json, "
                          "application/vnd.oci.image.index.v1+json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                served.add(f"{ref.rsplit(':', 1)[0]}@{resp.headers['Docker-Content-Digest']}")
        mine = [d for d in digests if d.startswith(base)]
        ok = not [d for d, n in Counter(digests).items() if n > 1] and set(mine) == served
        assert _result(suite_report, "repodigests-unique", engine.id)["outcome"] == ("pass" if ok else "fail")
    finally:
        for ref in refs:
            subprocess.run(["docker", "-H", engine.spec.endpoint, "rmi", ref], capture_output=True, timeout=60)
