"""Merging reports from several hosts into one matrix report (the nightly cross-host matrix).

Every host runs the suites and uploads its report.json; `merge` keys each engine by
the host it ran on (``HOST/ENGINE-ID``; ``HOST~RUN-ID/…`` when one host sent
several runs), so the same engine version on two machines gets two rows.  Engine
sets may differ between hosts: a check an engine did not run is an empty cell.
`host_differences` lists the corpus images whose canonical digest (the sha256 of
the canonical archive of each engine's save) is not one and the same everywhere,
with the hosts and engines behind each digest: one image, one digest is the promise.
"""

from __future__ import annotations

import platform
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any, Sequence

from harness import __version__
from harness.report.report_json import SCHEMA_VERSION, new_run_id


def labels(reports: Sequence[dict[str, Any]]) -> list[str]:
    """Each report's engine-key prefix: its host, or host~run-id where a host sent several runs."""
    hosts = Counter(r["run"]["host"] for r in reports)
    return [r["run"]["host"] if hosts[r["run"]["host"]] == 1 else f"{r['run']['host']}~{r['run']['id']}"
            for r in reports]


def merge(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One schema-1 report from `reports` (in order), engines and results re-keyed by host."""
    engines: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    sources = []
    for label, report in zip(labels(reports), reports):
        run = report["run"]
        sources.append({"id": run["id"], "started": run["started"], "host": run["host"],
                        "harness_version": run["harness_version"], "label": label})
        for e in report["engines"]:
            original = e.get("engine", e["id"])
            engines.append({**e, "id": f"{label}/{original}", "host": label, "engine": original})
        results += [dict(r, engine=f"{label}/{r['engine']}" if r["engine"] else "") for r in report["results"]]
    merged = {
        "schema": SCHEMA_VERSION,
        "run": {"id": "compare-" + new_run_id(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "host": platform.node(), "harness_version": __version__, "sources": sources},
        "engines": engines,
        "results": results,
    }
    merged["host_differences"] = host_differences(merged)
    return merged


def host_differences(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Images with more than one canonical digest: digest → the engine keys whose save has it
    (most common digest first), so a reader sees whether the split follows hosts or engines."""
    by_image: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in report["results"]:
        digest = r["metrics"].get("canonical_digest")
        if digest and r["engine"] not in by_image[r["image"]][digest]:
            by_image[r["image"]][digest].append(r["engine"])
    out = []
    for image, digests in sorted(by_image.items()):
        if len(digests) > 1:
            ordered = sorted(digests.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            out.append({"image": image, "digests": {d: sorted(keys) for d, keys in ordered}})
    return out
