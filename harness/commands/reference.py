"""`reference SOURCE -o OUT`: write the canonical reference archive of an image.

The same image gives the same bytes whatever engine, registry or format it
came through (layers stored uncompressed, fixed times, root ownership, fixed
modes and order; see `harness.reference.writer`).  Multi-platform indexes,
attestations and artifacts are carried too; what cannot be carried (a blob
the archive lacks, a media type nobody knows) is an error, never left out.
SOURCE is an archive path, or ``ENGINE_ID:IMAGE_REF`` saved from that engine first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.commands import local_archive
from harness.image import ReferrerKind

PREDICATE_TYPE = "in-toto.io/predicate-type"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reference", help="write the canonical reference archive of an image", description=__doc__.splitlines()[0])
    parser.add_argument("source", metavar="SOURCE", help="archive path or ENGINE_ID:IMAGE_REF")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="archive to write")
    parser.add_argument("--layout", choices=("docker", "oci", "legacy"), default="docker",
                        help="docker: OCI layout + manifest.json (default); oci: OCI layout only; "
                             "legacy: the Docker <= 24 format")
    parser.add_argument("--keep-compression", action="store_true",
                        help="copy layer blobs as stored and keep manifests, so that their digests are preserved")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.archive import read_archive
    from harness.reference import write_reference

    with tempfile.TemporaryDirectory(prefix="imgharness-reference-") as tmp:
        # The writer verifies every blob as it copies it and inflates each compressed layer once (checking its
        # diff_id on the way): reading need not hash the blobs it copies, nor check the layers first.  So the
        # warnings below do not say whether a blob no manifest names, and the writer skips, is its digest.
        archive = read_archive(local_archive(args.source, Path(tmp)), source=args.source, defer_checks=True,
                               defer_hashing=True)
        write_reference(archive, args.output, layout=args.layout, keep_compression=args.keep_compression)
        problems = list(archive.problems)
    if not getattr(args, "quiet", False):  # after writing: a failure stays the one line of its error
        for problem in problems:  # what the source got wrong and the reference does not repeat
            print(f"imgharness: warning: {problem.category} {problem.where}: "
                  f"expected {problem.a}, found {problem.b}", file=sys.stderr)
    for image in archive.images:
        print(image.id, *image.repo_tags, *([f"({image.platform})"] if image.index else []))
    for r in archive.referrers:
        about = (", ".join(sorted({b.descriptor.annotations.get(PREDICATE_TYPE, b.descriptor.media_type)
                                   for b in r.blobs})) if r.kind is ReferrerKind.ATTESTATION else r.artifact_type)
        print(r.manifest.digest, *r.tags, f"({r.kind}: {about})")
    return 0
