"""An image's own metadata: its config and its manifest, compared as JSON.

Config: each change is one `config` finding at ``image[i].config:$.path`` with
both values; ``rootfs.diff_ids`` is left out when the layers differ, because
the layer findings already name the cause. ``created`` and ``history`` stay:
they are real differences of the image (its ID changes with them).

Manifest: compared after `Rewriter` restated B's descriptors in A's terms, so
digests, sizes and mediaTypes that follow from layer or config findings vanish
and only independent changes (annotations, schema, media types) remain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from harness.diff.explain import Rewriter
from harness.diff.jsondiff import json_changes, same_json
from harness.diff.layers import LayerOutcome
from harness.findings import Category, Finding
from harness.image import Image

SAME_JSON = "same JSON, other bytes (whitespace, key order or escaping)"


def compare_config(label: str, a: Image, b: Image) -> list[Finding]:
    """`config` findings for one image pair."""
    if a.config_missing or b.config_missing:  # the lack is that side's `missing` problem
        if a.config_digest == b.config_digest:
            return []
        return [Finding(Category.CONFIG, f"{label}.config", a.config_digest, b.config_digest,
                        "compared by digest: one side lacks the config")]
    explained = a.diff_ids != b.diff_ids
    if explained and _without_diff_ids(a.config) == _without_diff_ids(b.config):
        return []  # the layer findings say it all, without deepdiff (most of a second to import)
    changes = json_changes(a.config, b.config)
    findings = [
        Finding(Category.CONFIG, f"{label}.config:{c.path}", c.a, c.b)
        for c in changes
        if not (explained and c.under("rootfs", "diff_ids"))
    ]
    if not changes and a.config_digest != b.config_digest:
        findings.append(Finding(Category.CONFIG, f"{label}.config", a.config_digest, b.config_digest, SAME_JSON))
    return findings


def _without_diff_ids(config: Mapping[str, Any]) -> Mapping[str, Any]:
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, Mapping):
        return config
    return {**config, "rootfs": {k: v for k, v in rootfs.items() if k != "diff_ids"}}


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _without_layers(manifest: Any, positions: tuple[int, ...]) -> Any:
    """The manifest without the descriptors of layers already reported as added or removed."""
    if not positions or not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        return manifest
    return {**manifest, "layers": [d for k, d in enumerate(manifest["layers"]) if k not in positions]}


def compare_manifest(
    label: str, a: Image, b: Image, layers: LayerOutcome, rewrite: Rewriter, *, same_format: bool
) -> list[Finding]:
    """`manifest` findings for one image pair that layer and config findings do not explain."""
    where = f"{label}.manifest"
    if a.raw_manifest is None or b.raw_manifest is None:
        if same_format and (a.raw_manifest, b.raw_manifest) != (None, None):
            return [Finding(Category.MANIFEST, where, _digest(a), _digest(b), "manifest on one side only")]
        return []
    return compare_raw_manifest(where, a.raw_manifest, b.raw_manifest, rewrite,
                                drop_a=layers.only_a, drop_b=layers.only_b)


def compare_raw_manifest(where: str, a: bytes, b: bytes, rewrite: Rewriter, *,
                         drop_a: tuple[int, ...] = (), drop_b: tuple[int, ...] = ()) -> list[Finding]:
    """Two manifests as JSON, B restated in A's terms (`Rewriter`), without the layers `drop_*` names."""
    if a == b:
        return []
    ja, jb = _parse(a), _parse(b)
    if ja is None or jb is None:
        return [Finding(Category.MANIFEST, where, _sha(a), _sha(b), "manifest is not JSON")]
    changes = json_changes(_without_layers(ja, drop_a), rewrite.json(_without_layers(jb, drop_b)))
    findings = [Finding(Category.MANIFEST, f"{where}:{c.path}", c.a, c.b) for c in changes]
    if same_json(ja, jb):
        findings.append(Finding(Category.MANIFEST, where, _sha(a), _sha(b), SAME_JSON))
    return findings


def _sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _digest(image: Image) -> str | None:
    return image.manifest.digest if image.manifest else None
