"""The checks the suites make (`suites/`), in the order the matrix shows them, each with what must hold.

Every suite module marks its tests ``pytest.mark.check(NAME)`` with one of these
names (a test keeps the two in step); the README's table says the same.  The
report views are given this list: report.json names a result's check, not what
it means.
"""

from __future__ import annotations

CHECKS: dict[str, str] = {
    "save-determinism": "saving the same image again gives the same bytes, also across a daemon restart",
    "repodigests-unique": "no RepoDigest listed twice after tagging into several repositories, pushing and pulling",
    "round-trip": "save → load → save keeps image ID, RepoTags and content",
    "cross-engine": "the same registry image saves content-equivalent on every engine; inspect agrees with its config",
    "reference-conformance": "the engine's save, canonicalized, is byte-identical to the canonical original",
    "digest-preservation": "copies by skopeo (daemon, docker-archive, oci-archive) keep the registry digest",
    "pull-resume": "a pull interrupted mid-layer (registry error, client hang-up) and retried fetches only what "
                   "is missing",
    "delta": "saving the same version twice keeps the archive digest; update cost at layer vs file granularity",
    "concurrent-clients": "listing, inspecting and saving keep working while another client removes its own images",
    "multi-platform": "a multi-platform image keeps the engine's own platform through pull, save and load; the "
                      "platforms, index, attestations and RepoDigests it keeps are recorded",
    "platform": "an image keeps its platform through load, inspect, save and pull, also on an engine of another "
                "platform (kept, refused or converted)",
}
