"""Files inside two layers whose diff_ids differ, compared by path.

Only called for layers whose uncompressed digests differ, so identical layers
cost nothing. Each side is held as a dict of path → `FileEntry` (headers and
content digests, never content). The sides are read one after the other:
reading both in threads measured slower (tar parsing holds the GIL).

When every file is the same, the diff_ids still differ for a reason: the
order of entries (`order`) or the tar encoding itself (`archive-format`:
PAX vs GNU headers, padding, end-of-archive blocks).
"""

from __future__ import annotations

from harness.diff.headers import describe, header_changes, normalize_name
from harness.diff.matching import first_divergence
from harness.findings import Category, Finding
from harness.image import FileEntry, Layer


def index_files(layer: Layer) -> tuple[dict[str, FileEntry], list[str]]:
    """path → entry (the last one wins, as on extraction), and the paths in layer order."""
    files: dict[str, FileEntry] = {}
    order: list[str] = []
    for entry in layer.files():
        path = normalize_name(entry.path)
        if path not in files:
            order.append(path)
        files[path] = entry
    return files, order


def compare_files(where: str, a: Layer, b: Layer) -> list[Finding]:
    """Findings for every file that differs between two layers, at ``where:path``."""
    files_a, order_a = index_files(a)
    files_b, order_b = index_files(b)
    findings: list[Finding] = []
    for path in order_a:
        if path not in files_b:
            gone = files_a[path]
            findings.append(Finding(Category.REMOVED, f"{where}:{path}", describe(gone.header, gone.digest), None))
    for path in order_b:
        fb = files_b[path]
        fa = files_a.get(path)
        if fa is None:
            findings.append(Finding(Category.ADDED, f"{where}:{path}", None, describe(fb.header, fb.digest)))
            continue
        if fa.header == fb.header and fa.digest == fb.digest:
            continue  # the common case, kept cheap for layers of many files
        for change in header_changes(fa.header, fb.header, digests=(fa.digest, fb.digest)):
            findings.append(Finding(change.category, f"{where}:{path}", change.a, change.b, change.note))
    divergence = first_divergence(order_a, order_b)
    if divergence is not None:
        k, x, y = divergence
        findings.append(Finding(
            Category.ORDER, where, x, y, f"entries in another order, first at common entry {k}",
        ))
    elif not findings:
        findings.append(Finding(
            Category.ARCHIVE_FORMAT, where, a.diff_id, b.diff_id,
            "same files and headers, other tar encoding (e.g. PAX vs GNU headers, padding)",
        ))
    return findings
