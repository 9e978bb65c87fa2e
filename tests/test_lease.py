"""Farm leases: the last process to give its lease back is the one that stops what leases started.

No engine is started here: the leases are files, and the processes holding them are this one and a child.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness.engines.farm import Farm
from harness.engines.lease import FarmLease


def test_the_last_release_is_the_one_that_says_so(tmp_path: Path) -> None:
    farm = Farm(home=tmp_path, cache=tmp_path / "cache")
    first, second = FarmLease(farm, "first"), FarmLease(farm, "second")
    first.join()
    second.join()
    assert first.holds and second.holds
    assert first.release() is False  # the second still needs the registry it shares
    assert not first.holds
    assert second.release() is True
    assert list((farm.root / "leases").iterdir()) == []


def test_a_lease_of_a_process_that_died_does_not_count(tmp_path: Path) -> None:
    farm = Farm(home=tmp_path, cache=tmp_path / "cache")
    child = subprocess.Popen(["sleep", "60"])
    try:
        ours = FarmLease(farm, "ours")
        ours.join()
        theirs = farm.root / "leases" / "theirs"
        theirs.write_text(json.dumps([child.pid, 0]))  # the pid alive, but not the process that took the lease
        assert ours.release() is True
        assert not theirs.exists()
    finally:
        child.kill()
        child.wait()
