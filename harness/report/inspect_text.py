"""Views of an image archive for `inspect`: JSON for machines, lines for people.

Indexes and the platforms they name; images, tags, manifests, layers (sizes,
diff_ids, compression, file counts) and config; attestations (and the image
each attests), artifacts, descriptors not followed and why, entries no
manifest references; problems met while reading (digest mismatches, missing
blobs) at the end.  File counts read every layer, so `describe` counts them
only when asked.
"""

from __future__ import annotations

import json
from typing import Any

from harness.image import Archive, Descriptor, Image, Index, Platform, Referrer
from harness.report.units import human_bytes


def describe(archive: Archive, *, count_files: bool) -> dict[str, Any]:
    """The JSON view of an archive."""
    labels = {im.manifest.digest: f"image[{k}]" for k, im in enumerate(archive.images) if im.manifest}
    return {
        "source": archive.source,
        "format": archive.format.value,
        "size": archive.size,
        "entries": len(archive.entries),
        "indexes": [_index(ix) for ix in archive.indexes],
        "images": [_image(im, count_files) for im in archive.images],
        "attestations": [_referrer(r, labels) for r in archive.attestations],
        "artifacts": [_referrer(r, labels) for r in archive.artifacts],
        "unfollowed": [{"where": u.where, "digest": u.descriptor.digest, "media_type": u.descriptor.media_type,
                        "platform": _platform(u.descriptor.platform), "reason": u.reason} for u in archive.unfollowed],
        "unreferenced": [{"entry": u.name, "size": u.size, "what": u.what} for u in archive.unreferenced],
        "problems": [f.to_json() for f in archive.problems],
    }


def _platform(value: Any) -> str | None:
    platform = Platform.of(value)
    return str(platform) if platform else None


def _descriptor(d: Descriptor) -> dict[str, Any]:
    return {"media_type": d.media_type, "digest": d.digest, "size": d.size,
            "platform": dict(d.platform) if d.platform else None, "annotations": dict(d.annotations)}


def _index(ix: Index) -> dict[str, Any]:
    return {**_descriptor(ix.descriptor), "tags": list(ix.tags), "parent": ix.parent,
            "manifests": [{"digest": d.digest, "media_type": d.media_type, "platform": _platform(d.platform)}
                          for d in ix.manifests]}


def _image(im: Image, count_files: bool) -> dict[str, Any]:
    config = dict(im.config)
    return {
        "id": im.id,
        "repo_tags": list(im.repo_tags),
        "platform": str(im.platform) if im.platform else None,
        "index": im.index,
        "created": config.get("created"),
        "complete": im.complete,
        "config_missing": im.config_missing,
        "manifest": _descriptor(im.manifest) if im.manifest is not None else None,
        "layers": [{
            "position": la.position, "diff_id": la.diff_id, "digest": la.digest, "size": la.size,
            "media_type": la.media_type, "compression": la.compression.value, "entry": la.entry_name,
            "present": la.present,
            "files": sum(1 for _ in la.files()) if count_files and la.present else None,
        } for la in im.layers],
        "config": config,
    }


def _referrer(r: Referrer, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": r.kind.value,
        "manifest": _descriptor(r.manifest),
        "artifact_type": r.artifact_type,
        "tags": list(r.tags),
        "subject": r.subject,
        "attests": labels.get(r.subject or ""),
        "index": r.index,
        "blobs": [{"role": role, "media_type": b.descriptor.media_type, "digest": b.descriptor.digest,
                   "size": b.descriptor.size, "present": b.present,
                   "predicate_type": b.descriptor.annotations.get("in-toto.io/predicate-type")}
                  for role, b in (("config", r.config), *((f"blob[{j}]", b) for j, b in enumerate(r.blobs)))],
    }


def _short(digest: str | None) -> str:
    return (digest or "")[:19]


def render_text(view: dict[str, Any]) -> str:
    lines = [f"{view['source']}: {view['format']}, {len(view['images'])} image(s), {view['entries']} entries, "
             f"{human_bytes(view['size'])}"]
    for ix in view["indexes"]:
        where = f"in {_short(ix['parent'])}" if ix["parent"] else "in index.json"
        lines.append(f"index {ix['digest']}  {', '.join(ix['tags']) or '(untagged)'} ({where}), "
                     f"{len(ix['manifests'])} manifest(s)")
        for d in ix["manifests"]:
            lines.append(f"  {_short(d['digest'])} {d['platform'] or '-'} {d['media_type']}")
    for k, im in enumerate(view["images"]):
        lines.append(f"image[{k}] {im['id']}  {', '.join(im['repo_tags']) or '(untagged)'}")
        origin = f", in index {_short(im['index'])}" if im["index"] else ""
        lines.append(f"  platform {im['platform'] or '?'}, created {im['created'] or '?'}{origin}")
        if im["config_missing"]:
            lines.append("  config MISSING from the archive")
        if im["manifest"]:
            m = im["manifest"]
            lines.append(f"  manifest {m['digest']} {m['media_type']} {human_bytes(m['size'])}")
        for la in im["layers"]:
            files = f", {la['files']} files" if la["files"] is not None else ""
            blob = f" blob {_short(la['digest'])}" if la["digest"] != la["diff_id"] else ""
            state = "" if la["present"] else " MISSING from the archive"
            lines.append(f"  layer {la['position']} {_short(la['diff_id']) or '?'}{blob} {human_bytes(la['size'])} "
                         f"{la['compression']}{files}{state}")
        run_config = im["config"].get("config") or {}
        for key in ("Entrypoint", "Cmd", "User", "WorkingDir", "Env", "Labels", "ExposedPorts", "Volumes"):
            if run_config.get(key) not in (None, "", [], {}):
                lines.append(f"  {key} {json.dumps(run_config[key], sort_keys=True)}")
    for r in view["attestations"] + view["artifacts"]:
        m = r["manifest"]
        if r["kind"] == "attestation":
            target = r["attests"] or (_short(r["subject"]) if r["subject"] else "no image named")
            lines.append(f"attestation {m['digest']} of {target}")
        else:
            tags = f"  {', '.join(r['tags'])}" if r["tags"] else ""
            subject = f", refers to {_short(r['subject'])}" if r["subject"] else ""
            lines.append(f"artifact {m['digest']} {r['artifact_type']}{tags}{subject}")
        for b in r["blobs"]:
            what = b["predicate_type"] or b["media_type"]
            state = "" if b["present"] else " MISSING from the archive"
            lines.append(f"  {b['role']} {_short(b['digest'])} {human_bytes(b['size'])} {what}{state}")
    if view["unfollowed"]:
        lines.append("not followed:")
        lines.extend(f"  {u['where']} {_short(u['digest'])}{' ' + u['platform'] if u['platform'] else ''}: "
                     f"{u['reason']}" for u in view["unfollowed"])
    if view["unreferenced"]:
        lines.append("entries no manifest references:")
        lines.extend(f"  {u['entry']} {human_bytes(u['size'])}: {u['what']}" for u in view["unreferenced"])
    if view["problems"]:
        lines.append("problems:")
        lines.extend(f"  {p['category']} {p['where']}: " + (
            f"{p['a']} {p.get('note', 'is not in the archive')}" if p["category"] == "missing"
            else f"expected {p['a']}, found {p['b']}") for p in view["problems"])
    return "\n".join(lines) + "\n"
