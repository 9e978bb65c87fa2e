"""`build ROOTFS_DIR... -o OUT`: a deterministic image archive from directories.

Each ROOTFS_DIR is one layer, bottom first; ``--layer-per DIR`` adds one
layer per subdirectory of DIR, in name order, after them.  The same inputs
give the same bytes (mtimes are clamped to SOURCE_DATE_EPOCH or 0).  Prints
the image ID.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "build", help="build a deterministic image archive from directories", description=__doc__.splitlines()[0],
        epilog="Words of --entrypoint/--cmd that start with '-' are given as --cmd=-c.")
    parser.add_argument("dirs", nargs="*", metavar="ROOTFS_DIR", help="one layer per directory, bottom first")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="archive to write")
    parser.add_argument("--layer-per", action="append", default=[], metavar="DIR",
                        help="one more layer per subdirectory of DIR, in name order (repeatable)")
    parser.add_argument("--tag", help="RepoTag, e.g. example/app:1")
    parser.add_argument("--label", action="append", default=[], metavar="K=V", help="label (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="environment variable (repeatable)")
    parser.add_argument("--entrypoint", action="append", metavar="ARG",
                        help="a JSON array, or one word appended per use")
    parser.add_argument("--cmd", action="append", metavar="ARG", help="a JSON array, or one word appended per use")
    parser.add_argument("--user", help="user (name or uid[:gid]) the container runs as")
    parser.add_argument("--workdir", help="working directory of the container")
    parser.add_argument("--layout", choices=("docker", "oci", "legacy"), default="docker", help="archive layout")
    parser.add_argument("--epoch", type=int, help="timestamp for created and mtimes (default: SOURCE_DATE_EPOCH or 0)")
    parser.add_argument("--arch", help="GOARCH of the image (default: the host's)")
    parser.set_defaults(func=run)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise UsageError(f"--{what} {v!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _words(values: list[str] | None, what: str) -> list[str] | None:
    """Each value is a JSON array of strings (taken whole) or one word."""
    if values is None:
        return None
    words: list[str] = []
    for v in values:
        if v.lstrip().startswith("["):
            try:
                parsed = json.loads(v)
            except ValueError as e:
                raise UsageError(f"--{what} {v!r}: not a JSON array ({e})") from None
            if not isinstance(parsed, list) or not all(isinstance(w, str) for w in parsed):
                raise UsageError(f"--{what} {v!r}: expected a JSON array of strings")
            words.extend(parsed)
        else:
            words.append(v)
    return words


def _layer_dirs(args: argparse.Namespace) -> list[Path]:
    dirs = [Path(d) for d in args.dirs]
    for parent in map(Path, args.layer_per):
        if not parent.is_dir():
            raise UsageError(f"--layer-per {parent}: not a directory")
        dirs.extend(sorted((p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.name))
    if not dirs:
        raise UsageError("no layers: give ROOTFS_DIR or --layer-per DIR")
    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"{d}: not a directory")
    return dirs


def run(args: argparse.Namespace) -> int:
    from harness.reference import build_image

    _pairs(args.env, "env")  # checks the form; the order and repeats of --env are kept
    env = list(args.env)
    image_id = build_image(
        _layer_dirs(args), args.output, tag=args.tag, labels=_pairs(args.label, "label"), env=env,
        entrypoint=_words(args.entrypoint, "entrypoint"), cmd=_words(args.cmd, "cmd"), user=args.user,
        workdir=args.workdir, epoch=args.epoch, layout=args.layout, architecture=args.arch)
    print(image_id)
    return 0
