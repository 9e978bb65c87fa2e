"""The archive's own metadata files: index.json, manifest.json and repositories.

Only compared when both archives have the same format (another format lays
these out differently by design, and that is one `archive-format` finding).
B's documents are first restated in A's terms (`Explanation.rewrite`), items
belonging to images on one side only are dropped (already `added`/`removed`),
and list items are matched by what they point to rather than by position, so
a reordered list is one `order` finding. Whatever differs then is `manifest`,
or `tags` where it only carries image names that no image finding covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from harness.diff.explain import NAME_ANNOTATIONS, Explanation
from harness.diff.jsondiff import JsonChange, json_changes, json_path
from harness.diff.matching import claim_pairs, first_divergence
from harness.findings import Category, Finding
from harness.image import Archive, Index


def name_explained(value: Any, names: set[str]) -> bool:
    """Whether an image name (RepoTag, ref.name, containerd name annotation), or each of a list, is in `names`."""
    if value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(name_explained(v, names) for v in value)
    return isinstance(value, str) and any(
        value == t or value.endswith("/" + t) or value == t.rpartition(":")[2] for t in names
    )


def _finding(where: str, change: JsonChange, names: set[str], *, tag_keys: frozenset[str]) -> Finding | None:
    """One change as a finding: `tags` if it only carries names, None if image findings explain it."""
    if any(isinstance(k, str) and k in tag_keys for k in change.keys):
        if name_explained(change.a, names) and name_explained(change.b, names):
            return None
        return Finding(Category.TAGS, where + change.path[1:], change.a, change.b)
    return Finding(Category.MANIFEST, where + change.path[1:], change.a, change.b)


Item = Mapping[str, Any]


def _same(x: Item, y: Item) -> bool:
    return x == y


def _index_names(d: Item) -> list[str]:
    return [v for k, v in (d.get("annotations") or {}).items() if k in NAME_ANNOTATIONS]


def _tags(m: Item) -> list[str]:
    return list(m.get("RepoTags") or [])


@dataclass(frozen=True)
class _ListKind:
    """How the items of one metadata list are matched across archives, and what names they carry."""

    where: str
    rules: tuple[Callable[[Item, Item], bool], ...]
    tag_keys: frozenset[str]
    names_of: Callable[[Item], list[str]]
    label: Callable[[Item], str]


def _index_kind(where: str) -> _ListKind:
    return _ListKind(
        where, (_same, lambda x, y: x.get("digest") == y.get("digest")),
        NAME_ANNOTATIONS, _index_names, lambda d: (_index_names(d) or [str(d.get("digest"))])[0],
    )


MANIFEST_JSON = _ListKind(
    "archive:manifest.json:$", (_same, lambda x, y: x.get("Config") == y.get("Config")),
    frozenset({"RepoTags"}), _tags, lambda m: (_tags(m) or [str(m.get("Config"))])[0],
)


def _compare_lists(kind: _ListKind, a: Sequence[Item], b: Sequence[Item], names: set[str]) -> list[Finding]:
    """Matched items compared as JSON, then items on one side only, then the order of matched items."""
    pairs, only_a, only_b = claim_pairs(a, b, kind.rules)
    findings: list[Finding] = []
    for i, j in pairs:
        for change in json_changes(a[i], b[j]):
            if finding := _finding(f"{kind.where}[{i}]", change, names, tag_keys=kind.tag_keys):
                findings.append(finding)
    for side, items, category in ((only_a, a, Category.REMOVED), (only_b, b, Category.ADDED)):
        for k in side:
            carried = kind.names_of(items[k])
            if carried and all(name_explained(n, names) for n in carried):
                continue
            value = dict(items[k])
            removed = category is Category.REMOVED
            findings.append(Finding(
                Category.TAGS if carried else category, f"{kind.where}[{k}]",
                value if removed else None, None if removed else value, f"only in {'A' if removed else 'B'}",
            ))
    in_b_order = [i for i, _ in sorted(pairs, key=lambda p: p[1])]
    divergence = first_divergence([str(i) for i, _ in pairs], [str(i) for i in in_b_order])
    if divergence:
        k, x, y = divergence
        findings.append(Finding(
            Category.ORDER, kind.where, kind.label(a[int(x)]), kind.label(a[int(y)]),
            f"items in another order, first at {k}",
        ))
    return findings


def _index(a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    if a.index is None or b.index is None:
        return []  # an index.json on one side only is an added/removed entry
    return _index_document("archive:index.json", a.index, b.index, ex)


def _index_document(where: str, a: Item, b: Item, ex: Explanation) -> list[Finding]:
    """An index's own fields, then its descriptors (those of manifests on one side only already reported)."""
    def kept(index: Item, owned: set[str]) -> list[Item]:
        def blob(d: Item) -> str:
            return "blobs/" + str(d.get("digest")).replace(":", "/", 1)

        return [d for d in index.get("manifests") or [] if blob(d) not in owned]

    ib = ex.rewrite.json(dict(b))
    findings = [
        f for c in json_changes({k: v for k, v in a.items() if k != "manifests"},
                                {k: v for k, v in ib.items() if k != "manifests"})
        if (f := _finding(f"{where}:$", c, ex.names, tag_keys=NAME_ANNOTATIONS))
    ]
    ma, mb = kept(a, ex.owned_a), ex.rewrite.json(kept(b, ex.owned_b))
    return findings + _compare_lists(_index_kind(f"{where}:$.manifests"), ma, mb, ex.names)


def compare_indexes(ex: Explanation) -> list[Finding]:
    """The indexes an index.json reaches (multi-platform images), pair by pair, whatever the formats;
    an index on one side only is one finding."""
    def identity(ix: Index) -> dict[str, Any]:
        return {"digest": ix.descriptor.digest, "tags": list(ix.tags), "manifests": len(ix.manifests)}

    only_a, only_b = ex.indexes_only
    findings = [Finding(Category.REMOVED, f"index[{k}]", identity(ix), None, "index only in A") for k, ix in only_a]
    findings += [Finding(Category.ADDED, f"index[{k}]", None, identity(ix), "index only in B") for k, ix in only_b]
    for ia, ib in ex.indexes:
        if ia.raw != ib.raw:  # both were read as JSON objects
            findings += _index_document(f"archive:{ia.entry_name}", json.loads(ia.raw), json.loads(ib.raw), ex)
    return findings


def _manifest_json(a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    if a.manifest_json is None or b.manifest_json is None:
        return []

    def kept(manifests: Sequence[Item], owned: set[str]) -> list[Item]:
        """Entries and Layers paths of images and layers on one side only are already reported."""
        return [
            {**m, "Layers": [p for p in m["Layers"] if p not in owned]} if isinstance(m.get("Layers"), list) else m
            for m in manifests if m.get("Config") not in owned
        ]

    ma, mb = kept(a.manifest_json, ex.owned_a), ex.rewrite.json(kept(b.manifest_json, ex.owned_b))
    return _compare_lists(MANIFEST_JSON, ma, mb, ex.names)


def _repositories(a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    if a.repositories is None or b.repositories is None:
        return []

    def flat(repos: Item) -> dict[tuple[str, str], Any]:
        return {(r, t): v for r, tags in repos.items() if isinstance(tags, Mapping) for t, v in tags.items()}

    fa, fb = flat(a.repositories), flat(ex.rewrite.json(dict(b.repositories)))
    findings = []
    for key in sorted(fa.keys() | fb.keys()):
        va, vb = fa.get(key), fb.get(key)
        where = "archive:repositories:" + json_path(key)
        if va is None or vb is None:
            if not name_explained(f"{key[0]}:{key[1]}", ex.names):
                findings.append(Finding(Category.TAGS, where, va, vb, "name on one side only"))
        elif va != vb:
            findings.append(Finding(Category.MANIFEST, where, va, vb))
    return findings


def compare_layout(a: Archive, b: Archive, ex: Explanation) -> list[Finding]:
    """Findings in index.json, manifest.json and repositories that image findings do not explain."""
    return [*_index(a, b, ex), *_manifest_json(a, b, ex), *_repositories(a, b, ex)]
