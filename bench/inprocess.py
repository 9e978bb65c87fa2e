"""The differ's own cost: both archives read and diffed in a fresh process, imports and start-up excluded.

    python bench/inprocess.py A B   →   {"wall": s, "cpu": s}

A fresh process per run, so that nothing one run computed (the inflated
digests of shared layer blobs are kept per process) makes the next one faster.
"""

from __future__ import annotations

import json
import sys
import time

from harness.archive import read_archives
from harness.diff import diff_archives


def main(a: str, b: str) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    diff_archives(*read_archives((a, None), (b, None), defer_checks=True))  # as `harness diff` does
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
