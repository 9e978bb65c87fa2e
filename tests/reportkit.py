"""Fixture reports for the report views: schema-1 documents shaped like a real run's, built in code.

`make_report` gives every engine × check × image result the suites produce, with
the metrics and findings the views use; keyword overrides change one result's
outcome or metrics so tests can stage drift, regressions and host differences.
"""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from harness.report.report_json import SCHEMA_FILE

IMAGES = ("basic", "large")
ENGINES = ("docker-26.1.5-overlay2", "docker-28.5.2-containerd", "podman-4.3.1-overlay")
CANONICAL = {"basic": "sha256:" + "b8" * 32, "large": "sha256:" + "99" * 32}
IMAGE_IDS = {"basic": "sha256:" + "95" * 32, "large": "sha256:" + "87" * 32}

MTIME_DRIFT = [
    {"category": "mtime", "where": "archive:blobs/sha256", "a": 1795328380, "b": 1795328381, "note": "mtime"},
    {"category": "mtime", "where": "archive:index.json", "a": 1795328380, "b": 1795328381, "note": "mtime"},
]
CONFIG_DRIFT = [{"category": "config", "where": "image[0].config:$.config.Env[1]", "a": "LANG=C", "b": "LANG=C.UTF-8"},
                {"category": "mode", "where": "image[0].layer[2](sha256:" + "ab" * 32 + "):usr/bin/tool",
                 "a": "0755", "b": "0700", "note": "mode"}]


def _tests(check: str, engine: str, image: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(node id, image, metrics) of each test one check runs for one engine and image."""
    def node(path: str, func: str, *params: str) -> str:
        return f"suites/{path}::{func}[{'-'.join((engine, *params))}]@{engine}"

    if check == "save-determinism":
        return [(node("test_save_determinism.py", "test_repeated_saves_are_byte_identical", image), image,
                 {"save_s": 0.4 if image == "large" else 0.05,
                  "archive_bytes": 53_129_728 if image == "large" else 2_012_672, "distinct_archives": 1}),
                (node("test_save_determinism.py", "test_saves_across_a_daemon_restart_are_byte_identical", image),
                 image, {})]
    if check == "repodigests-unique":
        return [(node("test_repodigests_unique.py", f"test_{phase}_several_repositories", image), image,
                 {f"repodigests_after_{phase.split('_')[0]}": 2}) for phase in ("push_to", "pull_from")]
    if check == "round-trip":
        return [(node("test_round_trip.py", "test_save_load_save_preserves_the_image", image), image, {"findings": 0})]
    if check == "cross-engine":
        return [(node("test_cross_engine.py", "test_pulled_image_is_the_same_on_every_engine", image), image,
                 {"unlisted_inspect_fields": []})]
    if check == "reference-conformance":
        return [(node("test_reference_conformance.py", "test_save_conforms_to_the_canonical_archive", image), image,
                 {"differences": {"order": 1, "mtime": 5}, "canonical_identical": True,
                  "canonical_digest": CANONICAL[image], "archive_format": "docker-oci", "image_id": IMAGE_IDS[image]})]
    if check == "digest-preservation":
        return [(node("test_digest_preservation.py", "test_copied_image_keeps_its_registry_digest", image, route),
                 image, {"digest": "kept"})
                for route in ("skopeo-docker-daemon", "skopeo-docker-archive", "skopeo-oci-archive")]
    if check == "pull-resume" and image == "large":
        return [(node("test_pull_resume.py", "test_retry_after_a_cut_layer_fetches_only_what_is_missing"), "large",
                 {"layer_bytes": 50_340_152, "retry_bytes": 30_204_092, "retry_used_range": True,
                  "wasted_bytes": 0, "partial_bytes_left": 0})]
    if check == "delta" and image == "basic":
        return [(node("test_delta.py", "test_update_cost_and_stable_resave"), "delta-v1→v2",
                 {"update_layer_bytes": 16_831_488, "update_file_bytes": 84, "changed_layers": 1,
                  "resave_keeps_digest": True})]
    if check == "concurrent-clients" and image == "basic":
        return [(node("test_concurrent_clients.py", "test_reads_while_another_client_removes_images"), "basic",
                 {"other_client_removals": 40, "requests": {"list": 60, "inspect": 60, "save": 12},
                  "failed": {}, "list_failed_pct": 0.0, "distinct_saves": 1})]
    return []


CHECKS = ("save-determinism", "repodigests-unique", "round-trip", "cross-engine", "reference-conformance",
          "digest-preservation", "pull-resume", "delta", "concurrent-clients")


def make_report(host: str = "ci-a", engines: tuple[str, ...] = ENGINES, run_id: str = "20260101-000000-aaaaaa",
                changes: dict[tuple[str, str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A schema-1 report; `changes[(check, engine, image)]` is merged into every matching result
    (``metrics`` merged into the metrics)."""
    results = []
    for engine in engines:
        for check in CHECKS:
            for image in IMAGES:
                for test, shown_image, metrics in _tests(check, engine, image):
                    result = {"check": check, "engine": engine, "image": shown_image, "test": test, "outcome": "pass",
                              "duration_s": 1.5, "findings": [], "metrics": metrics, "message": ""}
                    for key in ((check, engine, image), (check, engine, shown_image)):
                        change = copy.deepcopy((changes or {}).get(key))
                        if change:
                            result["metrics"] = {**result["metrics"], **change.pop("metrics", {})}
                            result.update(change)
                    results.append(result)
    return {
        "schema": 1,
        "run": {"id": run_id, "started": "2026-01-01T00:00:00+00:00", "host": host, "harness_version": "0.1.0"},
        "engines": [{"id": e, "endpoint": f"unix:///run/{e}.sock", "version": e.split("-")[1],
                     "storage": e.rsplit("-", 1)[1], "os": "linux", "arch": "amd64"} for e in engines],
        "results": results,
    }


def drifting(engine: str, image: str = "basic") -> dict[tuple[str, str, str], dict[str, Any]]:
    """The changes that make `engine`'s saves of `image` nondeterministic (mtime drift), as on graph drivers."""
    return {("save-determinism", engine, image): {
        "outcome": "fail", "findings": MTIME_DRIFT, "metrics": {"distinct_archives": 3},
        "message": "AssertionError: 3 different archives from 3 saves"}}


README = Path(__file__).resolve().parents[1] / "README.md"


def committed_report() -> Path:
    """The real run's report.json the README's generated figures come from (docs/reports/<run-id>/)."""
    from harness.report.tables import blocks

    return README.parent / blocks(README.read_text())[0].group("report")


def summary_counts(text: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(run totals, engine → counts) as the summary prints them: ``ENGINE: 3 pass, 1 fail, 0 error``."""
    def counts(s: str) -> dict[str, int]:
        return {o: int(n) for n, o in re.findall(r"(\d+) (\w+)", s)}

    first, *rest = text.splitlines()
    per_engine = {m.group(1): counts(m.group(2)) for line in rest
                  if (m := re.match(r"^(\S+): ((?:\d+ \w+(?:, )?)+)$", line))}
    return counts(first.rsplit(": ", 1)[1]), per_engine


def page_counts(page: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(the header's totals, engine → the verdict list's ``data-counts``) as index.html shows them."""
    [header] = re.findall(r'<p class="totals">(.*?)</p>', page)
    totals = {o: int(n) for n, o in re.findall(r'<span class="o-\w+">(\d+) (\w+)</span>', header)}
    engines = {unescape(e): json.loads(unescape(c))
               for e, c in re.findall(r'<li class="verdict" data-engine="([^"]+)" data-counts=\'([^\']+)\'', page)}
    return totals, engines


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {o: n for o, n in counts.items() if n}


def write(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return path


def validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
