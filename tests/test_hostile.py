"""Hostile and broken archives (`tests.hostile`) through the CLI, run as a user runs it.

Each command is a child process under a UTF-8 locale, with an empty working
directory and TMPDIR and HOME pointing at other empty directories.  It must
answer within `TIMEOUT` and `MAX_RSS` (peak RSS of that child, from
``wait4``), without a traceback, with exit 2 and exactly one line on stderr
when the archive cannot be read, and it must leave every directory as it
found it and the input byte for byte the same.  The truncation sweep runs in
process (hundreds of cuts); a sample of it runs as children too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli import main
from tests import hostile as H

TIMEOUT = 60.0
MAX_RSS = 300 << 20


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, H.Case]:
    return {c.name: c for c in H.build(tmp_path_factory.mktemp("hostile"))}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# Runs the command and writes its exit code and peak RSS (KiB).  ru_maxrss counts what a process had
# mapped when it was forked, so the command is started from this small process, not from pytest.
_RUNNER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "harness", *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_cli(tmp_path: Path, *args: str | Path, inputs: tuple[Path, ...], keep: frozenset[str] = frozenset()) -> Outcome:
    """`python -m harness ARGS` in an empty directory; checks that it wrote nothing but `keep` (in that directory)."""
    cwd, tmpdir, home, out = (tmp_path / d for d in ("cwd", "tmp", "home", "out"))
    for d in (cwd, tmpdir, home, out):
        d.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "IMGHARNESS_MAX_INFLATE_RATIO"}
    env.update(TMPDIR=str(tmpdir), HOME=str(home), LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
    before = {p: _sha256(p) for p in inputs}
    beside = {p.parent: _tree(p.parent) for p in inputs}
    with (out / "stdout").open("wb") as so, (out / "stderr").open("wb") as se:
        start = time.monotonic()
        runner = subprocess.Popen([sys.executable, "-c", _RUNNER, out / "result", *map(str, args)], cwd=cwd,
                                  env=env, stdout=so, stderr=se, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            runner.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
            pytest.fail(f"{args}: killed after {TIMEOUT} s")
        seconds = time.monotonic() - start
    code, rss = map(int, (out / "result").read_text().split())
    outcome = Outcome(code, (out / "stdout").read_bytes().decode("utf-8"),
                      (out / "stderr").read_bytes().decode("utf-8"), seconds, rss * 1024)
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.peak_rss < MAX_RSS, f"{args}: peak RSS {outcome.peak_rss >> 20} MiB"
    assert set(_tree(cwd)) <= keep and not _tree(tmpdir) and not _tree(home), "the command left files behind"
    assert {p: _sha256(p) for p in inputs} == before, "an input changed"
    assert {d: _tree(d) for d in beside} == beside, "something was written beside an input"
    return outcome


def assert_error(outcome: Outcome, pattern: str) -> None:
    """Exit 2 and exactly one line on stderr, matching `pattern`."""
    assert outcome.code == 2, outcome
    assert len(outcome.stderr.splitlines()) == 1 and outcome.stderr.endswith("\n"), outcome.stderr
    assert outcome.stderr.startswith("imgharness: error: ") and re.search(pattern, outcome.stderr), outcome.stderr


CASES = [
    "empty", "random-bytes", "random-gzip", "gzip-magic-then-garbage", "not-an-image",
    "dotdot-outer", "absolute-outer", "symlink-outside-outer", "symlink-absolute-outer", "hardlink-outside-outer",
    "unused-links-outer", "dotdot-in-layer", "links-outside-in-layer",
    "huge-size-outer", "huge-size-in-layer", "pax-header-2mib-outer", "longname-2mib-in-layer", "pax-chain-in-layer",
    "sparse-header-cut-outer", "index-fan-out", "gzip-bomb-layer", "zstd-bomb-layer", "gzip-bomb-outer",
    "duplicate-outer", "duplicate-in-layer", "missing-blob", "missing-layer-file",
    "digest-mismatch-layer", "digest-mismatch-config",
    "garbage-json", "deep-json-index", "deep-json-config", "huge-json", "many-values-json",
    "control-chars-in-names", "non-utf8-outer", "non-utf8-in-layer",
]


def test_the_corpus_is_what_the_tests_name(corpus: dict[str, H.Case]) -> None:
    assert sorted(corpus) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_inspect(corpus: dict[str, H.Case], tmp_path: Path, name: str) -> None:
    case = corpus[name]
    outcome = run_cli(tmp_path, "inspect", case.path, inputs=(case.path,))
    if case.error:
        assert_error(outcome, case.error)
    else:
        assert outcome.code == 0 and not outcome.stderr, outcome
        assert outcome.stdout.startswith(f"{case.path}: ")
        for problem in ("digest-mismatch", "missing"):
            if problem in case.findings:
                assert f"problems:\n  {problem}" in outcome.stdout


@pytest.mark.parametrize("name", CASES)
def test_diff_against_a_valid_archive(corpus: dict[str, H.Case], tmp_path: Path, name: str) -> None:
    case = corpus[name]
    outcome = run_cli(tmp_path, "diff", case.pair, case.path, "--format", "json", inputs=(case.pair, case.path))
    if case.error:
        assert_error(outcome, case.error)
    else:
        assert outcome.code == 1 and not outcome.stderr, outcome
        assert case.findings <= set(json.loads(outcome.stdout)["summary"]), outcome.stdout


REFERENCE_REFUSALS = {
    "digest-mismatch-layer": r"image\[0\] \(linux/amd64\) layer 0 \(uncompressed\): expected sha256:\w+, content "
                             r"hashes to",
    "digest-mismatch-config": r"image\[\d\] \(linux/(amd|arm)64\) config: expected sha256:\w+, content hashes to",
    "missing-blob": r"image\[0\] \(linux/amd64\): layer 1 blob sha256:\w+ is missing from the archive",
    "missing-layer-file": r"image\[0\] \(linux/amd64\): layer 1 blob sha256:\w+ is missing from the archive",
}
"""Archives that read, but whose reference cannot be written: what the writer says."""


@pytest.mark.parametrize("name", [
    "empty", "gzip-bomb-layer", "huge-json", "symlink-outside-outer",  # reading fails
    "digest-mismatch-layer", "digest-mismatch-config",  # reading succeeds, writing meets bytes that are not their digest
    "missing-blob", "missing-layer-file",  # reading succeeds, the writer cannot carry what is not there
    "unused-links-outer", "dotdot-in-layer", "links-outside-in-layer", "duplicate-in-layer", "non-utf8-in-layer",
])
@pytest.mark.parametrize("keep", [False, True], ids=["uncompressed", "keep-compression"])
def test_reference_leaves_no_partial_output(corpus: dict[str, H.Case], tmp_path: Path, name: str, keep: bool) -> None:
    case = corpus[name]
    args = ("--keep-compression",) if keep else ()
    outcome = run_cli(tmp_path, "reference", case.path, "-o", "out.tar", *args, inputs=(case.path,),
                      keep=frozenset({"out.tar"}))
    refusal = REFERENCE_REFUSALS.get(name, "")
    if keep and name == "digest-mismatch-layer":  # kept as stored: the blob is not its name, nor its diff_id
        refusal = r"image\[0\] \(linux/amd64\) layer 0 blob: expected sha256:\w+, content hashes to"
    if case.error or refusal:
        assert_error(outcome, case.error or refusal)
        assert not (tmp_path / "cwd" / "out.tar").exists()
    else:
        assert outcome.code == 0, outcome
        assert (tmp_path / "cwd" / "out.tar").stat().st_size > 0


@pytest.mark.parametrize("name", ["gzip-bomb-layer", "zstd-bomb-layer"])
def test_reference_keeping_compression_still_checks_layers(
        corpus: dict[str, H.Case], tmp_path: Path, name: str) -> None:
    """Copying blobs as stored never inflates them: their checks must still stop the writing."""
    case = corpus[name]
    outcome = run_cli(tmp_path, "reference", case.path, "-o", "out.tar", "--keep-compression", inputs=(case.path,),
                      keep=frozenset({"out.tar"}))
    assert_error(outcome, case.error)
    assert not (tmp_path / "cwd" / "out.tar").exists()


@pytest.fixture(scope="module")
def cuts(tmp_path_factory: pytest.TempPathFactory) -> list[H.Cut]:
    return list(H.truncations(tmp_path_factory.mktemp("cuts")))


def test_every_truncation_fails_in_one_line_or_reads(cuts: list[H.Cut], capsys: pytest.CaptureFixture[str]) -> None:
    """In process: `inspect` of every cut; a cut inside a member is an error, a cut after the end reads."""
    seen = {"fail": 0, "read": 0, "either": 0}
    for cut in cuts:
        code = main(["inspect", str(cut.path)])
        out, err = capsys.readouterr()
        where = f"{cut.format} cut at {cut.offset}: {err!r}"
        assert code in (0, 2), where
        if code == 2:
            assert len(err.splitlines()) == 1 and err.startswith(f"imgharness: error: {cut.path}: "), where
        else:
            assert not err and out.startswith(f"{cut.path}: "), where
        assert cut.expect == "either" or code == {"fail": 2, "read": 0}[cut.expect], where
        seen[cut.expect] += 1
    assert seen["fail"] > 300 and seen["read"] >= 12 and seen["either"] > 50, seen


@pytest.mark.parametrize("fmt", H.FORMATS)
def test_a_cut_of_every_format_through_the_cli(cuts: list[H.Cut], tmp_path: Path, fmt: str) -> None:
    """The middle one of a format's cuts that must fail, through `inspect` and `diff` as child processes."""
    failing = [c for c in cuts if c.format == fmt and c.expect == "fail"]
    cut = failing[len(failing) // 2]
    valid = cut.path.with_name(fmt)
    assert_error(run_cli(tmp_path / "inspect", "inspect", cut.path, inputs=(cut.path,)), str(cut.path))
    assert_error(run_cli(tmp_path / "diff", "diff", valid, cut.path, inputs=(valid, cut.path)), str(cut.path))


@pytest.mark.parametrize("output, message", [
    ("missing/out.tar", r"cannot write missing/out.tar.partial: No such file or directory"),
    ("a-directory", r"cannot write a-directory: Is a directory"),
    ("taken.tar", r"cannot write taken.tar.partial: File exists"),
])
def test_reference_to_an_unwritable_output(corpus: dict[str, H.Case], tmp_path: Path, output: str, message: str,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """One line, exit 2, nothing left behind, and a file that was in the way is not touched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "taken.tar.partial").write_bytes(b"someone else's")
    before = _tree(tmp_path)
    assert main(["reference", str(corpus["unused-links-outer"].path), "-o", output]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [err.rstrip("\n")] and re.search(message, err), err
    assert _tree(tmp_path) == before
