"""Prints how fast a folder of N images (default 100,000) is listed, grouped and stored.

Budget (ARCHITECTURE.md, "Performance budget"): open a folder of 100,000 images to the
first group <= 1 s, cold start. The folder is made of hard links to a few small real
PNG and JPEG files, named with increasing timestamps so they form groups of 1-4.

Each figure is taken in a fresh Python process (imports included in "process start to
first group"); when this user may write /proc/sys/vm/drop_caches the page cache is
dropped before each one, so the listing and probes read from disk.

    .venv/bin/python benchmarks/bench_scan.py [--n 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Seconds between shots inside a group, and between groups (well over the 10 s gap).
GROUP_SIZES = (2, 3, 4, 1, 4, 3)
IN_GROUP_STEP_S = 2
BETWEEN_GROUPS_S = 60
MARKER = ".bench_scan_n"


def make_source(folder: Path, n: int, names: str = "timestamp") -> bool:
    """Fill `folder` with n hard links to six small real images (3 PNG, 3 JPEG).

    `names` "timestamp" gives IMG_20250705_080000.jpg (groups by name time);
    "counter" gives IMG_000001.jpg (natural name order, the costlier sort key; hard links
    share their original's mtime, so these group by mtime into one long streamed run).
    False when a kept folder from an earlier run already holds them.
    """
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MARKER).is_file() and (folder / MARKER).read_text().strip() == f"{n} {names}":
        return False
    originals = folder.parent / f"{folder.name}_originals"
    originals.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    sources: list[Path] = []
    for k in range(6):
        pixels = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8)
        ext = ".png" if k % 2 == 0 else ".jpg"
        path = originals / f"original_{k}{ext}"
        Image.fromarray(pixels).save(path)
        sources.append(path)
    moment = datetime(2025, 7, 5, 8, 0, 0, tzinfo=UTC)
    i = 0
    while i < n:
        for size in GROUP_SIZES:
            for _ in range(size):
                if i >= n:
                    break
                original = sources[i % len(sources)]
                if names == "counter":
                    name = f"IMG_{i:06d}{original.suffix}"
                else:
                    name = f"IMG_{moment:%Y%m%d_%H%M%S}{original.suffix}"
                os.link(original, folder / name)
                moment += timedelta(seconds=IN_GROUP_STEP_S)
                i += 1
            moment += timedelta(seconds=BETWEEN_GROUPS_S)
    (folder / MARKER).write_text(f"{n} {names}")
    return True


def drop_caches() -> bool:
    """True when the page cache could be dropped (root on Linux), so reads are cold."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def child(kind: str, source: Path, work: Path, started: float) -> dict[str, float]:
    """One measurement in this (fresh) process; figures in seconds."""
    imported = time.perf_counter()
    from workbench.core.grouping import FormedGroup, iter_groups, scan_folder
    from workbench.core.project import ProjectStore
    from workbench.core.scan_store import known_paths, store_scan

    out: dict[str, float] = {"import_s": time.perf_counter() - imported}
    t0 = time.perf_counter()
    if kind == "listing":
        # As iter_groups lists: names only; sizes and mtimes come later from each probe.
        out["files"] = sum(1 for _ in scan_folder(source, stat=False))
        out["listing_s"] = time.perf_counter() - t0
    elif kind == "listing_stat":
        out["files"] = sum(1 for _ in scan_folder(source, stat=True))
        out["listing_s"] = time.perf_counter() - t0
    elif kind == "first_yield":
        for event in iter_groups(source):
            if isinstance(event, FormedGroup):
                break
        out["first_yield_s"] = time.perf_counter() - t0
    elif kind == "store":
        store = ProjectStore(work / "projects", work / "models")
        project = store.create("bench", source)
        conn = project.connect()
        out["create_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        first: list[float] = []

        def on_group(pk: int, group: FormedGroup) -> None:
            if not first:
                first.append(time.perf_counter())

        summary = store_scan(
            conn, iter_groups(source, known_paths=known_paths(conn)), on_group=on_group
        )
        out["first_commit_s"] = first[0] - t1
        out["first_commit_since_create_s"] = first[0] - t0
        out["first_commit_since_process_start_s"] = first[0] - started
        out["total_s"] = time.perf_counter() - t1
        out["groups"] = summary.groups
        out["images"] = summary.images
        out["skipped"] = len(summary.skipped)
        out["batches"] = len(summary.batches)
        conn.close()
    return out


def run_child(kind: str, source: Path, work: Path) -> tuple[dict[str, float], bool]:
    """Figures from one fresh process, after dropping the page cache when allowed."""
    cold = drop_caches()
    shutil.rmtree(work, ignore_errors=True)
    started = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--source",
            str(source),
            "--work",
            str(work),
            "--started",
            repr(started),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"measurement {kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout), cold


def measure(kind: str, source: Path, work: Path, repeat: int) -> tuple[dict[str, float], bool]:
    """Per figure, the median over `repeat` fresh processes (and each run's value)."""
    runs = [run_child(kind, source, work) for _ in range(repeat)]
    cold = all(c for _, c in runs)
    out: dict[str, float] = {}
    for key in runs[0][0]:
        values = sorted(r[key] for r, _ in runs)
        out[key] = statistics.median(values)
        out[key + "_all"] = values  # type: ignore[assignment]
    return out, cold


def line(label: str, figures: dict[str, float], key: str, note: str = "") -> None:
    runs = ", ".join(f"{v * 1000:.0f}" for v in figures[key + "_all"])  # type: ignore[attr-defined]
    print(f"{label:<24}{figures[key] * 1000:8.1f} ms  (runs: {runs}){note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of images (100000)")
    parser.add_argument("--keep", type=Path, help="make (or reuse) the image folder here")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure (3)")
    parser.add_argument("--names", choices=("timestamp", "counter"), default="timestamp",
                        help="file names: IMG_20250705_080000 (default) or IMG_000001")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # time.time() in the parent just before the spawn: process start + interpreter boot
        started = time.perf_counter() - (time.time() - args.started)
        print(json.dumps(child(args.child, args.source, args.work, started)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench_scan_"))
    source = args.keep.resolve() if args.keep else tmp / "source"
    try:
        t0 = time.perf_counter()
        marker = source / MARKER
        if marker.is_file() and marker.read_text().strip() != f"{args.n} {args.names}":
            sys.exit(f"{source} holds another benchmark's images; remove it or pick another.")
        made = make_source(source, args.n, args.names)
        how = f"made in {(time.perf_counter() - t0):.1f} s" if made else "reused"
        print(f"folder                  {source}: {args.n} hard-linked images "
              f"({args.names} names), {how}")  # fmt: skip
        listing, cold = measure("listing", source, tmp / "work", args.repeat)
        with_stat, _ = measure("listing_stat", source, tmp / "work", args.repeat)
        first, _ = measure("first_yield", source, tmp / "work", args.repeat)
        stored, _ = measure("store", source, tmp / "work", args.repeat)
        print(
            f"page cache              {'dropped before each run' if cold else 'warm (cannot drop it)'}"
        )
        print(f"median of {args.repeat} fresh processes per figure")
        line("import grouping", listing, "import_s", "  (numpy + Pillow + sqlite3)")
        line("listing", listing, "listing_s", f"  ({listing['files']:.0f} files, names only)")
        line("listing with stat", with_stat, "listing_s", "  (scan_folder default)")
        line("first group yielded", first, "first_yield_s", "  (iter_groups)")
        line("project create", stored, "create_s")
        line("first group committed", stored, "first_commit_s", "  (store_scan; budget 1000 ms)")
        line("  + project create", stored, "first_commit_since_create_s")
        line("  + process start", stored, "first_commit_since_process_start_s",
             "  (interpreter, imports, create, scan)")  # fmt: skip
        line("all scanned + stored", stored, "total_s",
             f"  ({stored['groups']:.0f} groups, {stored['batches']:.0f} batches, "
             f"{stored['images']:.0f} images, {stored['skipped']:.0f} skipped)")  # fmt: skip
        per_image = stored["total_s"] / max(1.0, stored["images"]) * 1e6
        print(f"{'per image':<24}{per_image:8.1f} us")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(source.parent / f"{source.name}_originals", ignore_errors=True)


if __name__ == "__main__":
    main()
