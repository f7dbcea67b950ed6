"""Print the database and file-move figures of ARCHITECTURE.md's performance budget.

    python benchmarks/bench_db.py [--images 100000] [--keep DIR]

Figures: 10,000 decisions logged (staged one commit each, as the reviewer does, and
written as ai_decisions rows); a 100-group finalize with its journaled file moves; a
lookup by group_id in a 100,000-row database; `init` on a 100,000-image folder until its
first group is committed (and until the whole scan is stored).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from workbench.core.crops import CropBox  # noqa: E402
from workbench.core.db import transaction  # noqa: E402
from workbench.core.decisions import Decision, insert_decision, make_group_id  # noqa: E402
from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice  # noqa: E402
from workbench.core.grouping import iter_groups  # noqa: E402
from workbench.core.project import ProjectStore  # noqa: E402
from workbench.core.scan_store import store_scan  # noqa: E402

BUDGET_S = 1.0


def line(name: str, seconds: float, budget: float | None = BUDGET_S, extra: str = "") -> None:
    verdict = "" if budget is None else ("  OK" if seconds <= budget else "  OVER BUDGET")
    budget_txt = "" if budget is None else f" (budget {budget * 1000:.0f} ms)"
    print(f"{name:<58} {seconds * 1000:9.1f} ms{budget_txt}{verdict}{extra}", flush=True)


def _fake_groups(conn, n: int, source: Path, images_per_group: int = 3) -> list[int]:
    """Insert n groups pointing at placeholder paths (for DB-only figures)."""
    now = "2026-01-01T00:00:00Z"
    pks = []
    with transaction(conn):
        for i in range(n):
            cur = conn.execute(
                "INSERT INTO groups(batch_number, position, reason, created_at) VALUES (?, ?, ?, ?)",
                (i // 100 + 1, i % 100, "bench", now),
            )
            pk = int(cur.lastrowid or 0)
            pks.append(pk)
            conn.executemany(
                "INSERT INTO group_images(group_pk, position, path, width, height, size_bytes,"
                " mtime_ns) VALUES (?, ?, ?, 3072, 2048, 1000, 0)",
                [(pk, j, str(source / f"g{i:06d}_{j}.png")) for j in range(images_per_group)],
            )
    return pks


def bench_decisions(store: ProjectStore, src: Path) -> None:
    project = store.create("bench-log", src)
    conn = project.connect()
    pks = _fake_groups(conn, 10_000, src)
    ai_crop = CropBox(0.1, 0.1, 0.9, 0.9)
    t0 = time.perf_counter()
    for k, pk in enumerate(pks):
        stage_choice(conn, pk, StagedChoice("approve", k % 3, ai_selected_index=0, ai_crop=ai_crop,
                                            ai_confidence=0.8))  # fmt: skip
    line("stage 10,000 choices (one commit each)", time.perf_counter() - t0)

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    decisions = [
        Decision(
            group_id=make_group_id("bench-log", moment, i // 100 + 1, i % 100),
            timestamp="2026-01-01T00:00:00Z",
            project_id="bench-log",
            directory=str(src),
            batch_number=i // 100 + 1,
            images=["a.png", "b.png", "c.png"],
            ai_selected_index=0,
            ai_crop=ai_crop,
            ai_confidence=0.8,
            user_selected_index=i % 3,
            user_action=("approve", "crop", "reject")[i % 3],
            image_width=3072,
            image_height=2048,
        )
        for i in range(10_000)
    ]
    t0 = time.perf_counter()
    with transaction(conn):
        for d in decisions:
            insert_decision(conn, d)
    line("log 10,000 decisions (ai_decisions rows, one transaction)", time.perf_counter() - t0)
    conn.close()


def bench_finalize(store: ProjectStore, root: Path) -> None:
    src = root / "finalize-src"
    src.mkdir()
    sample = src / "_sample.png"
    Image.new("RGB", (256, 256), (120, 80, 40)).save(sample)
    start = datetime(2025, 7, 5, 12, 0, 0)
    for g in range(100):
        for j in range(3):
            stamp = (start + timedelta(minutes=g, seconds=j)).strftime("%Y%m%d_%H%M%S")
            shutil.copyfile(sample, src / f"{stamp}_img.png")
            if j == 0:
                (src / f"{stamp}_img.txt").write_text("companion")
    sample.unlink()
    project = store.create("bench-final", src)
    conn = project.connect()
    store_scan(conn, iter_groups(src, group_by="sequence"), batch_size=100)
    pks = [int(r[0]) for r in conn.execute("SELECT id FROM groups ORDER BY id")]
    crop = CropBox(0.1, 0.1, 0.9, 0.9)
    for k, pk in enumerate(pks):
        action = ("approve", "crop", "reject", "approve")[k % 4]
        stage_choice(conn, pk, StagedChoice(action, k % 2, crop_overlay_on=k % 8 < 4,
                                            ai_selected_index=0, ai_crop=crop, ai_confidence=0.7))  # fmt: skip
    t0 = time.perf_counter()
    result = finalize_groups(project, conn, pks)
    elapsed = time.perf_counter() - t0
    line(f"finalize a batch of {len(pks)} groups ({result.moved} journaled moves)", elapsed)
    conn.close()


def bench_lookup(store: ProjectStore, src: Path) -> None:
    project = store.create("bench-lookup", src)
    conn = project.connect()
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(100_000):
        gid = make_group_id(
            "bench-lookup", moment + timedelta(seconds=i // 1000), i // 100 + 1, i % 100
        )
        rows.append(
            (
                gid,
                "2026-01-01T00:00:00Z",
                "bench-lookup",
                '["a.png","b.png"]',
                0,
                "approve",
                100,
                100,
            )
        )
    with transaction(conn):
        conn.executemany(
            "INSERT INTO ai_decisions(group_id, timestamp, project_id, images, user_selected_index,"
            " user_action, image_width, image_height) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    probes = random.Random(1).sample([r[0] for r in rows], 2000)
    times = []
    for gid in probes:
        t0 = time.perf_counter()
        row = conn.execute("SELECT * FROM ai_decisions WHERE group_id = ?", (gid,)).fetchone()
        times.append(time.perf_counter() - t0)
        assert row is not None
    times.sort()
    p95 = times[int(len(times) * 0.95)]
    print(f"{'lookup by group_id in a 100,000-row DB (2,000 lookups)':<58} "
          f"p95 {p95 * 1e6:6.1f} us, median {statistics.median(times) * 1e6:.1f} us", flush=True)  # fmt: skip
    conn.close()


def make_image_folder(folder: Path, n: int) -> None:
    """n valid images as hard links of a few real files, named as a camera would."""
    folder.mkdir(parents=True, exist_ok=True)
    originals = []
    for k, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        p = folder.parent / f"orig{k}.png"
        Image.new("RGB", (64, 48), colour).save(p)
        originals.append(p)
    start = datetime(2025, 1, 1)
    for i in range(n):
        # groups of 3 shots one second apart, a minute between groups
        stamp = (start + timedelta(minutes=i // 3, seconds=i % 3)).strftime("%Y%m%d_%H%M%S")
        os.link(originals[i % 3], folder / f"{stamp}_{i:06d}.png")


def bench_init(store: ProjectStore, root: Path, n: int) -> None:
    folder = root / "big-src"
    t0 = time.perf_counter()
    make_image_folder(folder, n)
    print(f"(made {n:,} images as hard links in {time.perf_counter() - t0:.1f} s)", flush=True)
    t0 = time.perf_counter()
    first: list[float] = []

    def on_group(pk: int, group: object) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    project = store.create("bench-init", folder)
    conn = project.connect()
    summary = store_scan(conn, iter_groups(folder, group_by="sequence"), batch_size=100,
                         on_group=on_group)  # fmt: skip
    total = time.perf_counter() - t0
    line(f"init on {n:,} images: first group committed", first[0])
    groups = getattr(summary, "groups", "?")
    line(f"init on {n:,} images: all {groups} groups stored", total, None)
    conn.close()

    # The GUI's "create project" path: it stops after the first full batch and the window
    # groups the rest in the background.
    from workbench.ui.session import create_and_scan

    t0 = time.perf_counter()
    create_and_scan(store, "bench-gui", folder, "sequence")
    line(f"GUI create on {n:,} images: first batch of 100 groups committed",
         time.perf_counter() - t0)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="wb-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        store = ProjectStore(root / "projects", root / "models")
        empty = root / "empty-src"
        empty.mkdir(exist_ok=True)
        bench_decisions(store, empty)
        bench_finalize(store, root)
        bench_lookup(store, empty)
        bench_init(store, root, args.images)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
