"""One xdist worker per engine: how the suites' tests are spread over workers.

Each engine's tests must run on one worker, one after another: two tests never
drive one daemon at once (a round-trip's remove and reload would take the image
away under another test's save; a daemon restart would cut it off).  xdist's
``--dist loadgroup`` groups tests by their ``xdist_group`` mark by appending
``@group`` to node ids in the workers, which pytest 9.2's structured node ids no
longer let it do: the groups are silently lost and an engine's tests run on both
workers at once (pytest-dev/pytest-xdist#1386).  This scheduler, used for
``--dist loadgroup``, finds the engine in the node id's parameters on the
controller, which knows the engine ids; other tests keep loadgroup's rules.
"""

from __future__ import annotations

from typing import Iterable

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling


def engine_of(nodeid: str, engine_ids: Iterable[str]) -> str | None:
    """The engine a test is parametrized with: one of `engine_ids` as a whole ``-``-separated part of
    the node id's parameters (``test_x[docker-28.5.2-overlay2-basic]``), the longest that fits."""
    start, end = nodeid.find("["), nodeid.rfind("]")
    if start < 0 or end < start:
        return None
    params = f"-{nodeid[start + 1:end]}-"
    fits = [e for e in engine_ids if f"-{e}-" in params]
    return max(fits, key=len) if fits else None


class EngineScheduling(LoadGroupScheduling):
    """loadgroup scheduling in which every engine's tests form one group."""

    def __init__(self, config: pytest.Config, log: Producer | None, engine_ids: Iterable[str]) -> None:
        super().__init__(config, log)
        self.engine_ids = tuple(engine_ids)

    def _split_scope(self, nodeid: str) -> str:
        engine = engine_of(nodeid, self.engine_ids)
        return f"engine:{engine}" if engine else super()._split_scope(nodeid)
