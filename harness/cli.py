"""The command line: `python -m harness` / `imgharness`.

Every subcommand lives in `harness.commands.<name>` and registers itself; this
module is the one place where harness errors become a one-line message and an
exit code (2 for errors, 130 for Ctrl-C), never a traceback.  Names read from
archives may hold any bytes (kept as surrogate escapes), newlines and terminal
escapes: the error line shows control characters escaped, and standard
output writes what it cannot encode as backslash escapes, as stderr does.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from harness import __version__, commands, progress
from harness.errors import HarnessError


def _one_line(text: str) -> str:
    """`text` with every non-printable character (newline, ESC, surrogate) as its Python escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgharness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"harness.commands.{mod.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    progress.set_quiet(args.quiet)
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    try:
        return int(args.func(args) or 0)
    except HarnessError as err:
        print(f"imgharness: error: {_one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("imgharness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
