"""What the suites measure: images as a run holds them — our corpus, and the user's own.

A subject is an archive (the corpus builds its own; a user gives a path, or a
reference the harness fetches once) that every check taking an image runs on,
under its name.  A run never loads a subject under the names it came with:
each run writes its own copy with every tag moved into the run's namespace,
blobs, manifests and indexes kept byte for byte (so digests stay the
registry's), and the run's clean-up removes exactly what it made.  A user's
images, tags and files are never touched.

Images that an index holds (multi-platform) reach an engine the way users get
them, pushed to the run's registry and pulled; single images are loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from filelock import FileLock

from harness.archive import read_archive
from harness.archive.refnames import parse_tagged
from harness.corpus import DEFAULT_NAMESPACE, EPOCH, corpus_tag, unique_image
from harness.engines.kept import KeptSaves
from harness.errors import EngineError, EngineUnavailable, HarnessError, UsageError
from harness.image import Archive, Compression
from harness.reference.writer import write_reference

if TYPE_CHECKING:
    from harness.engines.adapter import Engine
    from harness.engines.registry import Registry
    from harness.tools import Tool


class Refused(HarnessError):
    """An engine would not take an image (a layout it cannot load, a platform it cannot pull): a measured
    verdict in the engine's words, which fails the checks on that image instead of erroring them."""


@dataclass(frozen=True)
class Subject:
    """One image the checks run on: `name` keys its results in reports, baselines and comparisons."""

    name: str
    origin: Path           # the archive as built or as the user gave it: read, never written
    user: bool = False
    ref: str = ""          # the registry reference a user image was fetched from


_NAME = re.compile(r"[^a-z0-9._-]+")


def subject_name(text: str) -> str:
    """A name usable in test ids and as a repository path component."""
    name = _NAME.sub("-", text.lower()).strip("._-")
    if not name:
        raise UsageError(f"{text!r} gives no usable image name", hint="name it: NAME=PATH or NAME=REF")
    return name


class RunSubjects:
    """The subjects as one run sees them (shared by xdist workers through `workdir` and file locks)."""

    def __init__(self, subjects: dict[str, Subject], namespace: str, workdir: Path, busybox: Path) -> None:
        self.subjects = subjects
        self.namespace = namespace
        self.workdir = workdir
        self.busybox = busybox
        self.saves = KeptSaves(workdir / "saves")
        self._archives: dict[Path, Archive] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.subjects

    def origin(self, name: str) -> Path:
        return self.subjects[name].origin

    def tag(self, name: str) -> str:
        """The run's tag of `name` (its first image's first tag)."""
        subject = self.subjects[name]
        if not subject.user:
            return corpus_tag(name, self.namespace)
        return self.tags(name)[0]

    def tags(self, name: str) -> list[str]:
        """Every tag the run's copy of `name` carries (a bundle: several per image)."""
        return list(dict.fromkeys(_tags(self.archive(name))))

    def original_tag(self, name: str, run_tag: str) -> str:
        """The tag that `run_tag` stands for in the subject as it came."""
        return next((t for t in _tags(self.origin_archive(name)) if self._moved(name, t) == run_tag), run_tag)

    def archive(self, name: str) -> Archive:
        """The run's copy of `name`, read once per process."""
        return self._read(self[name])

    def origin_archive(self, name: str) -> Archive:
        """`name` as it came, read once per process."""
        return self._read(self.origin(name))

    def _read(self, path: Path) -> Archive:
        """An archive of the run read once per process (subjects are read-only while a run lasts: reading one
        hashes every byte of it, a second each GiB)."""
        if path not in self._archives:
            self._archives[path] = read_archive(path)
        return self._archives[path]

    def untagged(self, name: str, archive: Archive) -> Archive:
        """`archive` (what an engine saved of the run's copy) under the tags the subject came with."""
        def back(tags: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(self.original_tag(name, t) for t in tags)

        return dataclasses.replace(
            archive, images=tuple(dataclasses.replace(im, repo_tags=back(im.repo_tags)) for im in archive.images),
            indexes=tuple(dataclasses.replace(ix, tags=back(ix.tags)) for ix in archive.indexes),
            referrers=tuple(dataclasses.replace(r, tags=back(r.tags)) for r in archive.referrers))

    def indexed(self, name: str) -> bool:
        """Whether the subject's images are held by an index (a multi-platform image)."""
        return bool(self.origin_archive(name).indexes)

    def __getitem__(self, name: str) -> Path:
        """The run's copy of `name` (written once): every tag moved into the run's namespace, untagged images
        given one, blobs, manifests and indexes kept as they are."""
        out = self.workdir / f"{name}.tar"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out) + ".lock", timeout=600):
            if not out.exists():
                archive = self.origin_archive(name)
                write_reference(self._retagged(name, archive), out, epoch=EPOCH,
                                keep_compression=_compressed(archive) or self.subjects[name].user)
        return out

    def _retagged(self, name: str, archive: Archive) -> Archive:
        def moved(tags: tuple[str, ...], k: int, untagged: bool) -> tuple[str, ...]:
            if tags:
                return tuple(self._moved(name, t) for t in tags)
            return (f"{self.namespace}/{name}:image-{k}",) if untagged else ()

        images = tuple(dataclasses.replace(im, repo_tags=moved(im.repo_tags, k, im.index is None))
                       for k, im in enumerate(archive.images))
        indexes = tuple(dataclasses.replace(ix, tags=moved(ix.tags, k, ix.parent is None and not ix.tags))
                        for k, ix in enumerate(archive.indexes))
        referrers = tuple(dataclasses.replace(r, tags=moved(r.tags, k, False)) for k, r in enumerate(archive.referrers))
        return dataclasses.replace(archive, images=images, indexes=indexes, referrers=referrers)

    def _moved(self, name: str, tag: str) -> str:
        """A tag in the run's namespace: the corpus' own namespace is replaced, a user's name is kept below
        the image's name (``<namespace>/<name>/<repository>:<tag>``)."""
        if not self.subjects[name].user and tag.startswith(DEFAULT_NAMESPACE + "/"):
            return self.namespace + tag[len(DEFAULT_NAMESPACE):]
        parsed = parse_tagged(tag)
        if parsed is None:
            return f"{self.namespace}/{name}:{subject_name(tag)}"
        repo = "/".join(subject_name(part) for part in parsed.familiar_repo.replace(":", "-").split("/"))
        return f"{self.namespace}/{name}/{repo}:{parsed.tag}"

    def publish(self, name: str, registry: Registry, skopeo: Tool, *, repository: str = "", tag: str = "") -> str:
        """`name` pushed to the run's registry once (every platform, attestations too) by `skopeo`, no engine
        involved, as `repository`:`tag` (default: its first tag's); returns the registry reference."""
        own, _, version = self.tag(name).rpartition(":")
        ref = f"{registry.host}/{repository or own}:{tag or version}"

        def push() -> str:
            source = (f"oci-archive:{self[name]}" if self.indexed(name)
                      else f"docker-archive:{self[name]}:{self.tag(name)}")
            proc = skopeo.run("--insecure-policy", "copy", "--all", "--dest-tls-verify=false", source,
                              f"docker://{ref}")
            if proc.returncode != 0:
                from harness.tools import ToolFailed, failure_words

                raise ToolFailed(f"{skopeo.id} could not publish {name}: {failure_words(proc.stderr)}")
            return ref

        return self.remembered(f"published {ref}", push)

    def remembered(self, key: str, compute: Callable[[], str]) -> str:
        """`compute()` once per run, every worker given the first answer: for what depends on the subjects
        alone (an image published, the canonical digest of an image as it came), not on an engine."""
        marker = self.workdir / f"memo-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(marker) + ".lock", timeout=600):
            if not marker.exists():
                marker.write_text(compute())
            return marker.read_text()

    def ensure(self, engine: Engine, name: str, registry: Registry | None = None,
               skopeo: Callable[[], Tool] | None = None) -> str:
        """`name` on `engine` under every run tag (loaded, or pulled when an index holds it and a registry and
        a skopeo to publish with are given); returns its tag.  An engine that will not take it raises
        `Refused` in its own words."""
        tags = self.tags(name)
        if _present(engine, tags):
            return self.tag(name)
        try:
            if self.indexed(name) and registry is not None and skopeo is not None:
                ref = self.publish(name, registry, skopeo())
                repository, _, version = ref.rpartition(":")
                engine.pull(repository, version)
                for tag in tags:
                    repo, _, tag_version = tag.rpartition(":")
                    engine.tag(ref, repo, tag_version)
            else:
                engine.load(self[name])
        except EngineUnavailable:
            raise
        except EngineError as e:
            raise Refused(f"{engine.id} did not take {name}: {e.message}") from e
        missing = [t for t in tags if not _present(engine, [t])]
        if missing:
            raise Refused(f"{engine.id} took {name} but not as {', '.join(missing)}")
        return self.tag(name)

    def unique(self, name: str, size: int) -> tuple[Path, str]:
        """An image no engine can already hold: busybox plus `size` bytes seeded by the run and `name`.

        For checks that must see a layer really downloaded (pull-resume): a layer any image on the
        engine shares would be skipped, and we never delete images we did not create to force it."""
        tag = f"{self.namespace}/{name}:v1"
        out = self.workdir / f"unique-{name}.tar"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out) + ".lock", timeout=600):
            if not out.exists():
                unique_image(self.busybox, out, tag, f"{self.namespace}/{name}", size)
        return out, tag


def _tags(archive: Archive) -> list[str]:
    return [t for image in archive.images for t in image.repo_tags] + [t for ix in archive.indexes for t in ix.tags]


def _compressed(archive: Archive) -> bool:
    return any(layer.compression is not Compression.NONE for image in archive.images for layer in image.layers)


def _present(engine: Engine, tags: list[str]) -> bool:
    try:
        for tag in tags:
            engine.inspect(tag)
    except EngineUnavailable:
        raise
    except HarnessError:
        return False
    return True


@dataclass(frozen=True)
class UserImage:
    """An image the user asked the suites to measure: an archive they have, or a reference in their registry."""

    name: str
    archive: str = ""
    ref: str = ""


def user_images(archives: list[str], refs: list[str], inventory: str | None) -> list[UserImage]:
    """``--image-archive [NAME=]PATH``, ``--image-ref [NAME=]REF`` and the inventory's ``[images]`` table
    (``NAME = {archive = "…"}`` or ``{ref = "…"}``, archives relative to the file), each name once."""
    found = [UserImage(name, archive=path) for name, path in (split_named(v, archive_name) for v in archives)]
    found += [UserImage(name, ref=ref) for name, ref in (split_named(v, _ref_name) for v in refs)]
    if inventory:
        found += _inventory_images(Path(inventory))
    names = [u.name for u in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"image name {twice[0]!r} given twice", hint="name them: NAME=PATH or NAME=REF")
    for u in found:
        if u.archive and not Path(u.archive).is_file():
            raise UsageError(f"image {u.name}: {u.archive}: no such file")
    return found


def split_named(value: str, default_name: Callable[[str], str]) -> tuple[str, str]:
    """(name, path or reference) of ``[NAME=]VALUE``; a name holds no '/' or ':', so paths and references
    with '=' in them stay whole."""
    name, sep, rest = value.partition("=")
    if sep and name and "/" not in name and ":" not in name:
        return subject_name(name), rest
    return subject_name(default_name(value)), value


def archive_name(path: str) -> str:
    """``dist/app-oci.tar`` → ``app-oci``."""
    return Path(path).stem


def _ref_name(ref: str) -> str:
    """``registry.example/team/app:1.2`` → ``app-1.2``."""
    last = ref.rsplit("/", 1)[-1]
    return last.replace(":", "-").replace("@", "-")


def _inventory_images(path: Path) -> list[UserImage]:
    import tomllib

    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get("images") or {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the inventory: {e}") from None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: images must be a table: [images] NAME = {{archive = \"…\"}}")
    found = []
    for key, entry in table.items():
        if not isinstance(entry, dict) or bool(entry.get("archive")) == bool(entry.get("ref")):
            raise UsageError(f"{path}: images.{key}: give exactly one of archive = \"PATH\" or ref = \"REF\"")
        archive = str(entry.get("archive") or "")
        found.append(UserImage(subject_name(key), str(path.parent / archive) if archive else "",
                               str(entry.get("ref") or "")))
    return found


def fetch(image: UserImage, out: Path, skopeo: Tool) -> Path:
    """A user's registry image fetched once, every platform, into an OCI archive at `out`: with the user's
    docker credentials (``$DOCKER_CONFIG/config.json``), TLS verified except for a registry on this host."""
    with FileLock(str(out) + ".lock", timeout=900):
        if out.exists():
            return out
        args = ["--insecure-policy", "copy", "--all"]
        config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
        if config.is_file():
            args += ["--src-authfile", str(config)]
        host = image.ref.split("/", 1)[0]
        if host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]"):
            args.append("--src-tls-verify=false")
        partial = out.with_suffix(".partial")
        proc = skopeo.run(*args, f"docker://{image.ref}", f"oci-archive:{partial}")
        if proc.returncode != 0:
            from harness.tools import failure_words

            partial.unlink(missing_ok=True)
            raise UsageError(f"image {image.name}: cannot fetch {image.ref}: {failure_words(proc.stderr)}")
        partial.replace(out)
    return out
