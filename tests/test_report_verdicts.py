"""One sentence per engine, read from what its results measured: never written per engine, never hiding an error."""

from __future__ import annotations

from typing import Any

from harness.plugins.checks import CHECKS as SUITE_CHECKS
from harness.report.report_json import load_report
from harness.report.verdicts import EngineVerdict, engine_verdicts
from tests.reportkit import ENGINES, committed_report, drifting, make_report

E0, E1, E2 = ENGINES


def _verdicts(report: dict[str, Any]) -> dict[str, EngineVerdict]:
    return {v.engine: v for v in engine_verdicts(report, SUITE_CHECKS)}


def _phrases(v: EngineVerdict) -> dict[str, list[tuple[str, bool]]]:
    out: dict[str, list[tuple[str, bool]]] = {}
    for p in v.phrases:
        out.setdefault(p.check, []).append((p.text, p.holds))
    return out


def test_engines_that_measured_the_same_read_the_same() -> None:
    verdicts = _verdicts(make_report(changes=drifting(E1)))
    same = {v.engine: v.sentence().split(": ", 1)[1] for v in verdicts.values()}
    assert same[E0] == same[E2] != same[E1]
    assert verdicts[E0].breaks == [] and verdicts[E0].sentence().startswith(f"{E0}: saves are byte-identical")
    assert _phrases(verdicts[E1])["save-determinism"] == [  # `drifting` stages both tests of basic
        ("repeated saves differ for basic (mtime of blobs/sha256, index.json)", False),
        ("saves differ across a daemon restart for basic (mtime of blobs/sha256, index.json)", False)]
    assert ", but repeated saves differ for basic" in verdicts[E1].sentence()


def test_each_check_says_what_its_metrics_measured() -> None:
    listed_twice = [{"category": "tags", "where": "inspect.RepoDigests[push]", "a": 1, "b": 2, "note": "… listed 2 times"}]
    report = make_report(changes={
        ("repodigests-unique", E0, "basic"): {"outcome": "fail", "findings": listed_twice},
        ("pull-resume", E0, "large"): {"outcome": "fail", "metrics": {
            "retry_bytes": 50_340_152, "retry_used_range": False, "wasted_bytes": 20_136_060}},
        ("digest-preservation", E0, "basic"): {"outcome": "fail", "metrics": {"digest": "lost"}},
        ("digest-preservation", E0, "large"): {"outcome": "fail", "metrics": {"digest": "lost"}},
        ("concurrent-clients", E0, "basic"): {"outcome": "fail", "metrics": {"failed": {"list": 9}}},
        ("delta", E0, "basic"): {"outcome": "fail", "metrics": {"resave_keeps_digest": False}}})
    phrases = _phrases(_verdicts(report)[E0])
    # push and pull share the staged change here, so both list the digest twice
    assert phrases["repodigests-unique"] == [("RepoDigests are listed twice after a push and a pull", False)]
    assert phrases["pull-resume"] == [("a cut pull restarts (19.2 MiB downloaded again)", False)]
    assert phrases["digest-preservation"] == [
        ("skopeo copies lose the registry digest (docker-archive, docker-daemon, oci-archive)", False)]
    assert phrases["concurrent-clients"] == [("9 of 60 listings fail while another client removes images", False)]
    assert phrases["delta"] == [("re-saving one version changes its digest", False)]
    assert _phrases(_verdicts(make_report())[E0])["pull-resume"] == [("a cut pull resumes", True)]


def test_a_check_without_words_of_its_own_still_reads() -> None:
    report = make_report(engines=(E0,))
    report["results"].append({"check": "platform", "engine": E0, "image": "basic", "test": "suites/x.py::test_p",
                              "outcome": "fail", "duration_s": 1.0, "findings": [], "metrics": {}, "message": "no"})
    assert _phrases(_verdicts(report)[E0])["platform"] == [("platform fails in 1 of 1", False)]


def test_unmeasured_results_are_counted_never_read_as_pass_or_fail() -> None:
    report = make_report(changes={("digest-preservation", E2, "basic"): {
        "outcome": "error", "metrics": {"digest": "not measured"}, "message": "ToolFailed: skopeo copy failed"}})
    v = _verdicts(report)[E2]
    assert v.counts["error"] == 3 and v.unmeasured == ("digest-preservation",)
    assert _phrases(v)["digest-preservation"] == [("skopeo copies keep the registry digest (docker-archive, "
                                                   "docker-daemon, oci-archive)", True)]  # large: measured
    assert v.sentence().endswith("; 3 results could not be measured (digest-preservation).")
    everything_failed = make_report(engines=(E0,), changes={
        (c, E0, i): {"outcome": "error"} for c in SUITE_CHECKS for i in ("basic", "large", "delta-v1→v2")})
    [nothing] = engine_verdicts(everything_failed, SUITE_CHECKS)
    assert nothing.phrases == () and nothing.sentence().startswith(f"{E0}: nothing was measured; ")


def test_the_committed_run_reads_as_measured() -> None:
    report = load_report(committed_report())
    verdicts = _verdicts(report)
    assert list(verdicts) == [e["id"] for e in report["engines"]]
    assert sum(sum(v.counts.values()) for v in verdicts.values()) == len(report["results"])
    for v in verdicts.values():
        assert v.phrases and v.sentence().startswith(v.engine + ": ")
        # every check the engine measured has its say, and only those
        measured = {r["check"] for r in report["results"] if r["engine"] == v.engine and r["outcome"] in ("pass", "fail")}
        assert {p.check for p in v.phrases} == measured
