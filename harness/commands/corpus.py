"""`imgharness corpus ls | load ENGINE…`: the test images, on an engine under their default tags.

The corpus (`harness.corpus`) is built offline into ``<harness home>/corpus/v3/NAME.tar``;
`load` puts images on farm engines as ``imgharness/corpus-NAME:v3`` (tags of the
harness's own: a tag there that names another image is left alone, and the
command says so) and prints them, so that a first ``save`` or ``diff`` needs no
image from a registry:

    imgharness engines up docker-26.1.5-overlay2 docker-28.5.2-containerd --with-corpus
    imgharness diff docker-26.1.5-overlay2:imgharness/corpus-basic:v3 docker-28.5.2-containerd:imgharness/corpus-basic:v3
"""

from __future__ import annotations

import argparse
from typing import Sequence

from harness import progress
from harness.errors import UsageError

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="list the test images, or load them into farm engines under their tags")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("ls", help="the corpus images: name, tag, archive")
    load = actions.add_parser("load", help="load the corpus images into farm engines as imgharness/corpus-NAME:v3")
    load.add_argument("engines", nargs="+", metavar="ENGINE", help="farm engine ids (running)")
    add_image_option(load)
    p.set_defaults(func=run)


def add_image_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", action="append", dest="images", metavar="NAME",
                   help="this corpus image only: basic, features, large, zstd, bundle or multiplatform (repeatable; "
                        "default: the first three)")


def image_names(asked: Sequence[str] | None) -> list[str]:
    from harness.corpus import IMAGE_NAMES, SINGLE_IMAGES

    unknown = sorted(set(asked or ()) - set(IMAGE_NAMES))
    if unknown:
        raise UsageError(f"no corpus image {', '.join(unknown)}", hint=f"corpus images: {', '.join(IMAGE_NAMES)}")
    return list(asked or SINGLE_IMAGES)


def run(args: argparse.Namespace) -> int:
    from harness.corpus import build_corpus, corpus_tag
    from harness.settings import default_home

    if args.action == "ls":
        for name, path in build_corpus(default_home()).items():
            print(f"{name:9} {corpus_tag(name):28} {path}")
        return 0
    load_corpus(args.engines, image_names(args.images))
    return 0


def load_corpus(engine_ids: Sequence[str], names: Sequence[str]) -> None:
    """Load corpus images `names` into each farm engine and print one line per image and engine; then how to
    diff one image saved from two engines."""
    from harness.corpus import load_default_tags
    from harness.engines.farm import Farm
    from harness.settings import default_home

    farm = Farm()
    for engine_id in engine_ids:
        engine = farm.running(engine_id)
        try:
            progress.say(f"{engine_id}: loading the corpus ({', '.join(names)})")
            for image in load_default_tags(engine, default_home(), list(names)):
                print(f"{engine_id}  {image.tag}  {image.image_id}  {'(already there)' if image.already else 'loaded'}")
        finally:
            engine.close()
    if len(engine_ids) > 1:
        a, b = engine_ids[:2]
        tag = f"imgharness/corpus-{names[0]}:v3"
        print(f"try: imgharness diff {a}:{tag} {b}:{tag}")
