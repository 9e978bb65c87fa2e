"""The structural differ: two image archives in, findings named at their cause out.

One module per level, each reporting what only it can see:

    differ.py       orchestration, `diff_archives`, `DiffResult`
    matching.py     which image / layer of A is compared with which of B
    layers.py       layers by diff_id and stored blob (compression, added, removed)
    layer_files.py  files inside changed layers by path (headers, content digests)
    walk.py         two changed layers read in step: the side-by-side walk and its merge phases
    headers.py      one tar header against another, field class by field class
    metadata.py     image config and manifest as JSON
    explain.py      what image findings account for, so it is not reported twice
    layout.py       index.json, manifest.json, repositories
    entries.py      the outer archive's entries: headers, names, order
    jsondiff.py     deepdiff flattened to JSON paths
"""

from __future__ import annotations

from harness.diff.differ import DiffResult, diff_archives, sort_findings

__all__ = ["DiffResult", "diff_archives", "sort_findings"]
