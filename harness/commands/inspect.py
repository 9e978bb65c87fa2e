"""`inspect A`: an image archive as a person wants to read it.

Indexes and their platforms, images, attestations, artifacts, what was not
followed and why, entries no manifest references, and problems met while
reading (digest mismatches, missing blobs).  File counts read every layer;
``--no-files`` skips that on large archives.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.commands import local_archive


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("inspect", help="describe the images in an archive",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("archive", metavar="A", help="archive path or ENGINE_ID:IMAGE_REF")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--no-files", action="store_true", help="do not read layers to count their files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.archive import read_archive
    from harness.report.inspect_text import describe, render_text

    with tempfile.TemporaryDirectory(prefix="imgharness-inspect-") as tmp:
        archive = read_archive(local_archive(args.archive, Path(tmp)), source=args.archive)
        view = describe(archive, count_files=not args.no_files)
    out = json.dumps(view, indent=2, sort_keys=False) + "\n" if args.format == "json" else render_text(view)
    sys.stdout.write(out)
    return 0
