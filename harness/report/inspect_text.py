"""Views of an image archive for `inspect`: JSON for machines, lines for people.

Images, tags, manifests, layers (sizes, diff_ids, compression, file counts)
and config; problems met while reading (digest mismatches) at the end.  File
counts read every layer, so `describe` counts them only when asked.
"""

from __future__ import annotations

import json
from typing import Any

from harness.image import Archive, Image
from harness.report.units import human_bytes


def describe(archive: Archive, *, count_files: bool) -> dict[str, Any]:
    """The JSON view of an archive."""
    return {
        "source": archive.source,
        "format": archive.format.value,
        "size": archive.size,
        "entries": len(archive.entries),
        "images": [_image(im, count_files) for im in archive.images],
        "problems": [f.to_json() for f in archive.problems],
    }


def _image(im: Image, count_files: bool) -> dict[str, Any]:
    config = dict(im.config)
    manifest = None
    if im.manifest is not None:
        manifest = {"media_type": im.manifest.media_type, "digest": im.manifest.digest, "size": im.manifest.size,
                    "platform": dict(im.manifest.platform) if im.manifest.platform else None,
                    "annotations": dict(im.manifest.annotations)}
    return {
        "id": im.id,
        "repo_tags": list(im.repo_tags),
        "platform": "/".join(str(config[k]) for k in ("os", "architecture", "variant") if config.get(k)),
        "created": config.get("created"),
        "manifest": manifest,
        "layers": [{
            "position": la.position, "diff_id": la.diff_id, "digest": la.digest, "size": la.size,
            "media_type": la.media_type, "compression": la.compression.value, "entry": la.entry_name,
            "files": sum(1 for _ in la.files()) if count_files else None,
        } for la in im.layers],
        "config": config,
    }


def _short(digest: str) -> str:
    return digest[:19]


def render_text(view: dict[str, Any]) -> str:
    lines = [f"{view['source']}: {view['format']}, {len(view['images'])} image(s), {view['entries']} entries, "
             f"{human_bytes(view['size'])}"]
    for im in view["images"]:
        lines.append(f"image {im['id']}  {', '.join(im['repo_tags']) or '(untagged)'}")
        lines.append(f"  platform {im['platform'] or '?'}, created {im['created'] or '?'}")
        if im["manifest"]:
            m = im["manifest"]
            lines.append(f"  manifest {m['digest']} {m['media_type']} {human_bytes(m['size'])}")
        for la in im["layers"]:
            files = f", {la['files']} files" if la["files"] is not None else ""
            blob = f" blob {_short(la['digest'])}" if la["digest"] != la["diff_id"] else ""
            lines.append(f"  layer {la['position']} {_short(la['diff_id'])}{blob} {human_bytes(la['size'])} "
                         f"{la['compression']}{files}")
        run_config = im["config"].get("config") or {}
        for key in ("Entrypoint", "Cmd", "User", "WorkingDir", "Env", "Labels", "ExposedPorts", "Volumes"):
            if run_config.get(key) not in (None, "", [], {}):
                lines.append(f"  {key} {json.dumps(run_config[key], sort_keys=True)}")
    if view["problems"]:
        lines.append("problems:")
        lines.extend(f"  {p['category']} {p['where']}: expected {p['a']}, found {p['b']}" for p in view["problems"])
    return "\n".join(lines) + "\n"
