"""One engine's tests on one xdist worker, whatever the pytest version.

The suites rely on it: a daemon restart must not race another test on the same
daemon, and saves must not compete.  xdist's ``loadgroup`` groups tests by an
``@group`` suffix its workers append to node ids, writing the old ``_nodeid``
attribute; pytest 9 builds node ids from a structured id and ignores that
attribute, so under pytest 9.2 with xdist 3.8 no test had a group and two workers
drove one daemon at once (seen 2026-11-30: a farm restart of the arm64 overlay2
daemon in the middle of another worker's pull on it).  This scheduler finds the
engine in the test id's parameters itself (each engine-parametrized test id
starts with the engine id) and keeps xdist's own suffix where it is present.
"""

from __future__ import annotations

from typing import Any, Iterable

import pytest
from xdist.scheduler import LoadScopeScheduling


def engine_scope(nodeid: str, engine_ids: Iterable[str]) -> str:
    """The scheduling group of a test: its xdist group, else its engine, else the test alone."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[1]
    _, bracket, params = nodeid.partition("[")
    params = params.removesuffix("]") if bracket else ""
    for engine_id in sorted(engine_ids, key=len, reverse=True):  # docker-28.5.2-overlay2-arm64 before …-overlay2
        if params == engine_id or params.startswith(engine_id + "-"):
            return engine_id
    return nodeid


class EngineScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with one scope per engine."""

    def __init__(self, config: pytest.Config, log: Any, engine_ids: Iterable[str]) -> None:
        super().__init__(config, log)
        self.engine_ids = tuple(engine_ids)

    def _split_scope(self, nodeid: str) -> str:
        return engine_scope(nodeid, self.engine_ids)
