"""`diff A B`: are these the same image, and if not, why exactly?

A and B are archive paths, or ``ENGINE_ID:IMAGE_REF`` (when no such file
exists), saved from that engine into a temporary directory that is removed
afterwards.  The first line says whether A and B hold the same images (same
image IDs, layer contents, platforms, artifacts, and tags where both name
some) and then what differs in the packaging.  Exit 0: equivalent after
ignores (with ``--semantic``: the same images, whatever the packaging);
1: differences; 2: error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.commands import local_archive
from harness.findings import Category, Ignores


def _category(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        choices = ", ".join(c.value for c in Category)
        raise argparse.ArgumentTypeError(f"unknown category {value!r} (choose from {choices})") from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff", help="compare two image archives and name each difference at its cause",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("a", metavar="A", help="archive path or ENGINE_ID:IMAGE_REF")
    parser.add_argument("b", metavar="B", help="archive path or ENGINE_ID:IMAGE_REF")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument(
        "--ignore", action="append", default=[], type=_category, metavar="CATEGORY",
        help="leave out findings of this category (repeatable), e.g. --ignore mtime",
    )
    parser.add_argument(
        "--ignore-path", action="append", default=[], metavar="GLOB",
        help="leave out findings whose place (or its last part: file path, JSON path) matches (repeatable)",
    )
    parser.add_argument(
        "--all", action="store_true", help="text output: list every finding, not the first ten per category",
    )
    parser.add_argument(
        "--semantic", action="store_true",
        help="judge only whether the images are the same: exit 0 whatever the packaging (headers, order, "
             "compression, layout) and build attestations say",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.archive import read_archives
    from harness.diff import diff_archives
    from harness.report.diff_text import DEFAULT_LIMIT, render_json, render_text

    ignores = Ignores(frozenset(args.ignore), tuple(args.ignore_path))
    with tempfile.TemporaryDirectory(prefix="imgharness-diff-") as tmp:
        a, b = read_archives((local_archive(args.a, Path(tmp, "a")), args.a),
                             (local_archive(args.b, Path(tmp, "b")), args.b), defer_checks=True)
        result = diff_archives(a, b, ignores)  # layers read lazily: before the workdir goes
    if args.format == "json":
        sys.stdout.write(render_json(result))
    else:
        sys.stdout.write(render_text(result, limit=None if args.all else DEFAULT_LIMIT))
    return 0 if (result.same_image if args.semantic else result.equivalent) else 1
