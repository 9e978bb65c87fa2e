"""Performance benchmark of the differ, the readers and the reference writer, side by side with their floors.

    python bench/run.py [--sizes 1,4] [--repeat 3] [--quick] [--no-peers] [--suites] [--insert] [--reference]
                        [--workdir DIR]

Generates its own archive pairs (`generate`: 1 and 4 GiB of layer content by
default, uncompressed and gzip layers, each pair differing in one file of one
layer, or with ``--insert`` in one file added there) under a temporary directory, measures, prints tables, and deletes
everything it generated.  Not part of the unit tests: it takes about a
quarter of an hour and wants 5x the largest size free on disk (it scales
down, saying so, when there is less).

Figures, each the best of ``--repeat`` runs, all measured in the same run:

* diff (``python -m harness diff A B`` as a child, and the same work timed
  inside a fresh process, start-up and imports excluded: `inprocess`) against
  the floor: sha256 of both archives with hashlib; peak RSS of the child;
* gzip pairs: the same diff against inflating every layer of both archives with
  the fastest inflater available (zlib, ISA-L's zlib API, ISA-L's gzip reader);
* ``python -m harness reference`` against ``shutil.copyfile`` of the archive:
  uncompressed pairs as they are (layers copied), gzip pairs with
  ``--keep-compression`` (blobs copied, every layer inflated once to check its
  diff_id) and without (every layer inflated and written uncompressed); with
  ``--reference`` nothing else is measured;
* the peers on the 1 GiB pairs: diffoscope (killed at 20x our time) and
  ``crane validate --tarball`` of both archives, as multiples of our diff;
* with ``--suites``: ``python -m harness run -n 1`` against ``-n 2`` on two farm
  engines and one image, in a farm home of its own (``/tmp/imgh-bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence
from xml.etree import ElementTree

import isal
from generate import GiB, MiB, Pair, Pools, generate_pair
from measure import INFLATERS, Child, Spawner, Timing, gzip_blobs, sha256_files, timed
from peers import Peer, crane, diffoscope

from harness.archive import read_archive

DISK_FACTOR = 5  # free space per byte of content: both archives, reference, copy and layer temporaries
PEER_FACTOR = 20  # diffoscope is stopped at this multiple of our diff time
SUITE_ENGINES = ("docker-28.5.2-containerd", "docker-28.5.2-overlay2")
SUITE_HOME = "/tmp/imgh-bench"
SUITE_PACKAGES = str(Path.home() / ".cache" / "imgharness" / "packages")


@dataclass(frozen=True)
class References:
    """The reference writer on one archive, each way it can write it, and a copy of the file."""

    archive_bytes: int
    runs: dict[str, Child]  # mode ("as stored", "--keep-compression", "uncompressed") → the fastest run
    copy: Timing


@dataclass
class Result:
    """Everything measured on one pair."""

    pair: Pair
    archive_bytes: int
    floor: Timing
    diff: Child         # the fastest run of the CLI
    rss_mb: float       # the highest peak RSS of any run of the CLI
    in_process: Timing
    inflate: dict[str, Timing]  # inflater → every gzip layer of both archives
    reference: References
    diffoscope: Child | None = None         # on the two archives
    diffoscope_layers: Child | None = None  # on the two blobs of the changed layer
    crane: float | None = None

    @property
    def label(self) -> str:
        return f"{_size(self.pair.content)} {self.pair.compression}"


def _size(n: float) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


REFERENCE_MODES: dict[str, dict[str, tuple[str, ...]]] = {
    "none": {"as stored": ()}, "gzip": {"--keep-compression": ("--keep-compression",), "uncompressed": ()}}


def measure_reference(spawner: Spawner, pair: Pair, repeat: int) -> References:
    """`reference` of A (CLI) each way `REFERENCE_MODES` names, and ``shutil.copyfile`` of A, interleaved."""
    out, copy_out = pair.a.with_name("reference.tar"), pair.a.with_name("copy.tar")
    runs: dict[str, list[Child]] = {mode: [] for mode in REFERENCE_MODES[pair.compression]}
    copies: list[Timing] = []
    shutil.copyfile(pair.a, copy_out)  # untimed: the file is in the page cache for every run alike
    copy_out.unlink()
    for _ in range(repeat):
        for mode, args in REFERENCE_MODES[pair.compression].items():
            child = spawner.run(_cli("reference", str(pair.a), "-o", str(out), *args))
            if child.code != 0:
                raise SystemExit(f"reference {pair.a} {' '.join(args)}: exit {child.code}")
            runs[mode].append(child)
            out.unlink()
        copies.append(timed(lambda: shutil.copyfile(pair.a, copy_out)))
        copy_out.unlink()
    return References(pair.a.stat().st_size, {m: min(c, key=lambda c: c.wall) for m, c in runs.items()},
                      _best(copies))


def measure_pair(spawner: Spawner, pair: Pair, repeat: int) -> Result:
    """The floors, our diff (CLI, and without start-up) and the reference writer, `repeat` times interleaved."""
    paths = [pair.a, pair.b]
    blobs = gzip_blobs(paths) if pair.compression == "gzip" else []
    floors: list[Timing] = []
    in_process: list[Timing] = []
    diffs: list[Child] = []
    inflate: dict[str, list[Timing]] = {name: [] for name in INFLATERS} if blobs else {}
    sha256_files(paths)  # untimed: every run starts from the page cache alike
    for run in range(repeat):
        floors.append(timed(lambda: sha256_files(paths)))
        child = spawner.run(_cli("diff", str(pair.a), str(pair.b), "--format", "json"), capture=True)
        summary = json.loads(child.stdout)["summary"] if child.code == 1 else None
        expected = {"added": 1} if pair.changed.endswith(".inserted") else {"content": 1}
        if summary != expected:
            raise SystemExit(f"diff {pair.a} {pair.b}: exit {child.code}, {summary}; expected {expected}")
        diffs.append(child)
        work = spawner.run([sys.executable, str(Path(__file__).with_name("inprocess.py")), str(pair.a), str(pair.b)],
                           capture=True)
        in_process.append(Timing(**json.loads(work.stdout)))
        for name, times in inflate.items():
            if run == 0 or name != "zlib":  # zlib is three times slower than ISA-L: once is enough
                times.append(timed(lambda: INFLATERS[name](blobs)))
    return Result(pair, pair.a.stat().st_size, _best(floors), min(diffs, key=lambda c: c.wall),
                  max(c.rss_mb for c in diffs), _best(in_process), {n: _best(t) for n, t in inflate.items()},
                  measure_reference(spawner, pair, repeat))


def _best(runs: Sequence[Timing]) -> Timing:
    """The least disturbed run: least wall and least CPU time, each on its own."""
    return Timing(min(r.wall for r in runs), min(r.cpu for r in runs))


def measure_peers(spawner: Spawner, result: Result, peers: Sequence[Peer]) -> None:
    """diffoscope, bounded by `PEER_FACTOR` times our diff, and crane validate on both archives.

    diffoscope pairs archive members by name, and the changed layer's blob is
    named by its digest: on the archives it lists renamed blobs and JSON
    changes without opening a layer.  So it also runs on the changed layer's
    two blobs, extracted beforehand (not timed), which is what it takes for it
    to name the changed file.
    """
    pair = result.pair
    bound = PEER_FACTOR * result.diff.wall
    for peer in peers:
        if peer.binary is None:
            continue
        if peer.name == "diffoscope":
            result.diffoscope = spawner.run([peer.binary, "--no-progress", str(pair.a), str(pair.b)], timeout=bound)
            blobs = _changed_layer_blobs(pair)
            result.diffoscope_layers = spawner.run([peer.binary, "--no-progress", *map(str, blobs)], timeout=bound)
            for blob in blobs:
                blob.unlink()
        else:  # once: it takes tens of times longer than the figures it is compared with
            runs = [spawner.run([peer.binary, "validate", "--tarball", str(p)]) for p in (pair.a, pair.b)]
            if any(r.code != 0 for r in runs):
                raise SystemExit(f"crane validate failed on {pair.a} or {pair.b}")
            result.crane = sum(r.wall for r in runs)


def _changed_layer_blobs(pair: Pair) -> list[Path]:
    """The changed layer's blob from A and from B, copied to files of their own."""
    out = []
    layers = [read_archive(p).images[0].layers for p in (pair.a, pair.b)]
    [(la, lb)] = [(x, y) for x, y in zip(*layers) if x.digest != y.digest]
    suffix = ".tar.gz" if pair.compression == "gzip" else ".tar"
    for name, layer in (("layer-a", la), ("layer-b", lb)):
        path = pair.a.with_name(name + suffix)
        with layer.compressed() as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        out.append(path)
    return out


def measure_suites(spawner: Spawner) -> list[list[str]]:
    """`harness run` with one worker and with two on the same subset, in a farm home of its own."""
    env = dict(os.environ, IMGHARNESS_HOME=SUITE_HOME, IMGHARNESS_PACKAGES=SUITE_PACKAGES)
    subset = [a for e in SUITE_ENGINES for a in ("--farm-engine", e)]
    rows = []
    walls: dict[str, float] = {}
    try:
        for workers in ("1", "2"):
            report = Path(tempfile.mkdtemp(prefix=f"imgharness-bench-n{workers}-"))
            child = spawner.run(_cli("run", "-n", workers, *subset, "--report-dir", str(report), "--",
                                     "--image", "basic"), env=env)
            walls[workers] = child.wall
            rows.append([f"-n {workers}", f"{child.wall:.1f} s", _outcome(report / "junit.xml")])
            shutil.rmtree(report, ignore_errors=True)
    finally:
        spawner.run(_cli("engines", "down"), env=env)
    rows.append(["speed-up", f"{walls['1'] / walls['2']:.2f}x", ""])
    return rows


def _outcome(junit: Path) -> str:
    """The test counts of a run, from its junit.xml."""
    try:
        root = ElementTree.parse(junit).getroot()
    except (OSError, ElementTree.ParseError) as e:
        return f"no junit.xml ({e})"
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return "no testsuite in junit.xml"
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return ", ".join(f"{v} {k}" for k, v in counts.items())


def fitting_sizes(sizes: Sequence[float], workdir: Path) -> list[float]:
    """The sizes that fit on disk; one that does not is scaled down to what fits, with a note."""
    free = shutil.disk_usage(workdir).free
    out = []
    for size in sizes:
        fit = size
        while fit * GiB * DISK_FACTOR > free and fit > 1 / 64:
            fit /= 2
        if fit != size:
            print(f"note: {size:g} GiB needs {size * DISK_FACTOR:g} GiB free in {workdir}, "
                  f"{free / GiB:.1f} GiB are: measuring {fit:g} GiB instead")
        out.append(fit)
    return out


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table, ready to paste into the README."""
    print(f"\n### {title}\n")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def _ratio(x: float, floor: float) -> str:
    return f"{x / floor:.2f}x"


def _fastest(r: Result) -> str:
    return min(r.inflate, key=lambda n: r.inflate[n].cpu)


def _secs(wall: float, cpu: float) -> str:
    return f"{wall:.2f} s ({cpu:.2f})"


def _ratios(wall: float, cpu: float, floor: Timing) -> str:
    return f"{wall / floor.wall:.2f}x ({cpu / floor.cpu:.2f}x)"


def reference_table(pairs: Sequence[tuple[Pair, References]]) -> None:
    table("reference writer against shutil.copyfile of the archive; wall time, CPU time in brackets "
          "(the CLI's, start-up included)",
          ["archive", "layers written", "reference (CLI)", "MB/s", "copyfile", "MB/s", "x copy", "peak RSS"],
          [[f"{_size(pair.content)} {pair.compression}, {refs.archive_bytes / MiB:.0f} MiB", mode,
            _secs(child.wall, child.cpu), f"{refs.archive_bytes / child.wall / 1e6:.0f}",
            _secs(refs.copy.wall, refs.copy.cpu), f"{refs.archive_bytes / refs.copy.wall / 1e6:.0f}",
            _ratios(child.wall, child.cpu, refs.copy), f"{child.rss_mb:.0f} MB"]
           for pair, refs in pairs for mode, child in refs.runs.items()])


def report(results: Sequence[Result], peers: Sequence[Peer]) -> None:
    def row_of(r: Result, fn: Callable[[Result], list[str]]) -> list[str]:
        return [r.label, *fn(r)]

    table("diff against the hashing floor (sha256 of both archives); wall time, CPU time in brackets",
          ["pair", "archive", "files", "sha256 floor", "diff (CLI)", "x floor", "no start-up", "x floor",
           "peak RSS (CLI)"],
          [row_of(r, lambda r: [
              f"{r.archive_bytes / MiB:.0f} MiB", f"{r.pair.files}", _secs(r.floor.wall, r.floor.cpu),
              _secs(r.diff.wall, r.diff.cpu), _ratios(r.diff.wall, r.diff.cpu, r.floor),
              _secs(r.in_process.wall, r.in_process.cpu), _ratios(r.in_process.wall, r.in_process.cpu, r.floor),
              f"{r.rss_mb:.0f} MB"]) for r in results])
    gz = [r for r in results if r.inflate]
    if gz:
        names = list(INFLATERS)
        table("gzip layers: diff against inflating every layer of both archives; wall time, CPU time in brackets",
              ["pair", *names, "fastest", "diff (CLI)", "x inflate", "no start-up", "x inflate"],
              [row_of(r, lambda r: [
                  *(_secs(r.inflate[n].wall, r.inflate[n].cpu) for n in names), _fastest(r),
                  _secs(r.diff.wall, r.diff.cpu), _ratios(r.diff.wall, r.diff.cpu, r.inflate[_fastest(r)]),
                  _secs(r.in_process.wall, r.in_process.cpu),
                  _ratios(r.in_process.wall, r.in_process.cpu, r.inflate[_fastest(r)])])
               for r in gz])
    reference_table([(r.pair, r.reference) for r in results])
    peered = [r for r in results if r.diffoscope or r.crane]
    if peered:
        table("peers on the same pair, as multiples of our diff (CLI); > : stopped at that time",
              ["pair", "ours", "diffoscope A B", "x ours", "diffoscope on the changed layer", "x ours",
               "crane validate A, B", "x ours"],
              [row_of(r, lambda r: [f"{r.diff.wall:.2f} s", *_peer_cells(r)]) for r in peered])
    for p in peers:
        if p.binary is None:
            print(f"\n{p.name}: skipped ({p.reason})")


def _peer_cells(r: Result) -> list[str]:
    cells = []
    for child in (r.diffoscope, r.diffoscope_layers):
        if child is None:
            cells += ["-", "-"]
        else:
            over = ">" if child.timed_out else ""
            cells += [f"{over}{child.wall:.1f} s", f"{over}{_ratio(child.wall, r.diff.wall)}"]
    return cells + (["-", "-"] if r.crane is None else [f"{r.crane:.2f} s", _ratio(r.crane, r.diff.wall)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4", help="GiB of layer content per archive, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts (default 3)")
    parser.add_argument("--quick", action="store_true", help="one 256 MiB size, one run: a smoke test")
    parser.add_argument("--no-peers", action="store_true", help="skip diffoscope and crane")
    parser.add_argument("--suites", action="store_true", help="also time the suites with -n 1 and -n 2 (farm)")
    parser.add_argument("--insert", action="store_true", help="B has a file more instead of a changed one")
    parser.add_argument("--reference", action="store_true", help="measure the reference writer only")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    spawner = Spawner()  # first, while this process is small: its children's peak RSS is their own
    sizes = [0.25] if args.quick else [float(s) for s in args.sizes.split(",")]
    repeat = 1 if args.quick else args.repeat
    print(f"# imgharness benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"isal {isal.__version__}, load average {os.getloadavg()[0]:.1f} at start")
    peers = [] if args.no_peers or args.reference else [diffoscope(), crane()]
    peer_size = min(sizes, key=lambda s: (s < 1, abs(s - 1)))  # the 1 GiB pairs, or the nearest
    workdir = Path(tempfile.mkdtemp(prefix="imgharness-bench-", dir=args.workdir))
    results: list[Result] = []
    references: list[tuple[Pair, References]] = []
    try:
        sizes = fitting_sizes(sizes, workdir)
        pools = Pools()
        for size in sizes:
            for gzip in (False, True):
                start = time.perf_counter()
                pair = generate_pair(workdir / f"{size:g}-{'gzip' if gzip else 'none'}", int(size * GiB),
                                     gzip=gzip, pools=pools, insert=args.insert)
                print(f"generated {pair.a.name}/{pair.b.name} {_size(pair.content)} {pair.compression}: "
                      f"{pair.files} files, changed {pair.changed} ({time.perf_counter() - start:.0f} s)",
                      flush=True)
                if args.reference:
                    references.append((pair, measure_reference(spawner, pair, repeat)))
                else:
                    result = measure_pair(spawner, pair, repeat)
                    if size == peer_size:
                        measure_peers(spawner, result, peers)
                    results.append(result)
                shutil.rmtree(pair.a.parent)
        if args.reference:
            reference_table(references)
        else:
            report(results, peers)
        if args.suites:
            table("suite scaling: harness run on " + " + ".join(SUITE_ENGINES) + ", --image basic",
                  ["workers", "wall", "outcome"], measure_suites(spawner))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        spawner.close()
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
