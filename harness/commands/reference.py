"""`reference SOURCE -o OUT`: write the canonical reference archive of an image.

The same image gives the same bytes whatever engine, registry or format it
came through (layers stored uncompressed, fixed times, root ownership, fixed
modes and order; see `harness.reference.writer`).  SOURCE is an archive path,
or ``ENGINE_ID:IMAGE_REF`` saved from that engine first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.commands import local_archive


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
        # Uncompressing, the writer inflates every layer and settles its check on the way; keeping compression,
        # it never does, so the layers are checked while reading, before anything is written.
        archive = read_archive(local_archive(args.source, Path(tmp)), source=args.source,
                               defer_checks=not args.keep_compression)
        write_reference(archive, args.output, layout=args.layout, keep_compression=args.keep_compression)
        problems = list(archive.problems)
    if not getattr(args, "quiet", False):  # after writing: a failure stays the one line of its error
        for problem in problems:
            print(f"imgharness: warning: {problem.category} {problem.where}: "
                  f"expected {problem.a}, found {problem.b}", file=sys.stderr)
    for image in archive.images:
        print(image.id, *image.repo_tags)
    return 0
