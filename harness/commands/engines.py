"""`imgharness engines up|down|status|ls`: the local engine farm."""

from __future__ import annotations

import argparse
import sys

from harness.errors import UsageError
from harness.commands.corpus import add_image_option, image_names, load_corpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="start, stop and list the local engine farm")
    p.add_argument("action", choices=("up", "down", "status", "ls"))
    p.add_argument("ids", nargs="*", help="farm engine ids (default: all)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--with-corpus", action="store_true",
                   help="up: then load the corpus images into each engine as imgharness/corpus-NAME:v3")
    add_image_option(p)
    p.set_defaults(func=run)


def _progress(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: print(f"· {msg}", file=sys.stderr, flush=True))


def run(args: argparse.Namespace) -> int:
    from harness.engines.farm import Farm, statuses_json

    if args.with_corpus and (args.action != "up" or args.format == "json"):
        raise UsageError("--with-corpus goes with `engines up` (text output)")
    farm = Farm()
    if args.action == "ls":
        for fe in farm.select(args.ids):
            print(f"{fe.id}\t{fe.source.name}")
        return 0
    if args.action == "down":
        for engine_id in farm.down(args.ids):
            print(f"stopped {engine_id}")
        return 0
    statuses = farm.up(args.ids, _progress(args.quiet)) if args.action == "up" else farm.status(args.ids)
    if args.format == "json":
        print(statuses_json(statuses))
    else:
        for st in statuses:
            state = "healthy" if st.healthy else ("down" if not st.pid and not st.error else "FAILED")
            print(f"{st.id:32} {state:8} {st.platform or '-':12} pid={st.pid or '-':<8} {st.endpoint}"
                  + (f"\n    {st.error}" if st.error else ""))
    failed = [st for st in statuses if st.error or (args.action == "up" and not st.healthy)]
    if args.action == "up" and args.with_corpus and not failed:
        load_corpus([st.id for st in statuses], image_names(args.images))
    return 3 if failed else 0
