"""Legacy (Docker <= 24) layer IDs and ``<id>/json`` documents, computed as moby's exporter does.

moby 24 ``image/tarexport/save.go``: for layer *i* of an image, a `V1Image` is
marshalled — the image's own config fields for the top layer, an empty one
created at the Unix epoch for the others — with ``layer_id`` (the chain ID of
the diff_ids up to *i*) and ``parent`` (the previous v1 ID) added as top-level
keys, sorted; its sha256 is the v1 ID (``image/v1.CreateID``).  The ``json``
file is the same struct with ``id``, ``parent`` and ``os`` set.  The result depends
only on the config and diff_ids: the same image always gets the same IDs.
Checked against the saves of Docker 20.10.24 (IDs and ``json`` byte for byte).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from harness.reference import gojson
from harness.tar.hashing import sha256_digest

EPOCH_TIME = "1970-01-01T00:00:00Z"  # time.Unix(0, 0) in a UTC daemon


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI chain IDs: ChainID(L0) = L0, ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + Ln)."""
    chains: list[str] = []
    for d in diff_ids:
        chains.append(d if not chains else sha256_digest(f"{chains[-1]} {d}".encode()))
    return chains


def _v1_fields(config: Mapping[str, Any] | None, *, v1_id: str = "", parent: str = "",
               os_name: str = "") -> list[tuple[str, str]]:
    """`image.V1Image` marshalled in field order; `config` None is the empty intermediate image
    (whose OS the exporter sets after hashing: `os_name`)."""
    data = dict(config or {})
    # Image.Parent shadows the embedded V1Image.Parent: a config's "parent" never reaches the V1Image.
    keys = {k.lower(): k for k in data}

    def get(name: str) -> Any:
        return data.get(name, data.get(keys.get(name.lower(), ""), None))

    created = gojson.string(EPOCH_TIME) if config is None else gojson.time_value(get("created"))
    pairs: list[tuple[str, str]] = []
    for key, value in (("id", v1_id), ("parent", parent), ("comment", _s(get("comment")))):
        if value:
            pairs.append((key, gojson.string(value)))
    pairs.append(("created", created))
    if _s(get("container")):
        pairs.append(("container", gojson.string(_s(get("container")))))
    pairs.append(("container_config", gojson.container_config(get("container_config"))))
    for key in ("docker_version", "author"):
        if _s(get(key)):
            pairs.append((key, gojson.string(_s(get(key)))))
    if isinstance(get("config"), dict):
        pairs.append(("config", gojson.container_config(get("config"))))
    for key in ("architecture", "variant", "os"):
        if _s(get(key)):
            pairs.append((key, gojson.string(_s(get(key)))))
    if config is None and os_name:
        pairs.append(("os", gojson.string(os_name)))
    size = get("Size")
    if isinstance(size, int) and not isinstance(size, bool) and size:
        pairs.append(("Size", str(size)))
    return pairs


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


@dataclass(frozen=True)
class LegacyLayer:
    """One layer directory of a legacy save."""

    v1_id: str      # hex, the directory name
    diff_id: str
    json: bytes     # content of <id>/json


def legacy_layers(config: Mapping[str, Any], diff_ids: Sequence[str]) -> list[LegacyLayer]:
    """The layer directories of one image, bottom first."""
    out: list[LegacyLayer] = []
    parent = ""
    chains = chain_ids(diff_ids)
    for i, diff_id in enumerate(diff_ids):
        own = config if i == len(diff_ids) - 1 else None
        hashed = dict(_v1_fields(own))
        hashed["layer_id"] = gojson.string(chains[i])
        if parent:
            hashed["parent"] = gojson.string(parent)
        v1 = hashlib.sha256(gojson.marshal_map(hashed).encode("utf-8")).hexdigest()
        doc = gojson.obj(_v1_fields(own, v1_id=v1, parent=parent.split(":", 1)[-1] if parent else "",
                                    os_name=_s(config.get("os"))))
        out.append(LegacyLayer(v1, diff_id, doc.encode("utf-8")))
        parent = "sha256:" + v1
    return out
