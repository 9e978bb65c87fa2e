"""Listing images stays reliable while another client loads and removes its own images; adapters
are made without touching their engine.

A containerd-store engine answers a listing that races a removal with 404
"content digest …: not found"; `Engine.images()` must ride over that (the
run's clean-up and the user-data checks list images while other workers churn).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.engines.adapter import Engine
from harness.engines.spec import EngineSpec
from harness.errors import EngineUnavailable
from suites.churn import Churn


GIVE_UP_S = 60  # for the other client to load and remove three images (a few seconds on every farm engine)


def test_listing_survives_a_client_removing_images(engine: Engine, run_namespace: str, tmp_path: Path) -> None:
    listings = 0
    with Churn(engine.spec, run_namespace, tmp_path) as churn:
        started = time.monotonic()
        while time.monotonic() - started < 3 or (min(churn.cycles, listings) < 3
                                                 and time.monotonic() - started < GIVE_UP_S):
            engine.images()
            listings += 1
            assert churn.error is None, churn.error
    assert churn.cycles >= 3 and listings >= 3, f"in {GIVE_UP_S} s: {churn.cycles} removals, {listings} listings"
    assert not any(t.startswith(f"{run_namespace}/churn-") for i in engine.images() for t in i.get("RepoTags") or [])


def test_an_adapter_is_made_without_asking_the_engine(tmp_path: Path) -> None:
    """Only a request can fail, with the engine named and no SDK exception: the socket is not there."""
    gone = Engine(EngineSpec(f"unix://{tmp_path}/gone.sock"))
    with pytest.raises(EngineUnavailable, match="gone.sock"):
        gone.images()
