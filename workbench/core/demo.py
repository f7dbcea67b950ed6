"""A generated demo project: near-duplicate photo groups, plate crops, a half-done first batch.

Everything is drawn from a seed (demo_draw.py), so the demo needs no download and comes
out the same on every machine. `generate_demo` writes the images into the
project folder (`source/` and `plates/`), creates the project on that source, scans it into
groups and finalizes a few groups of the first batch so every view has work to show.

The "AI" of the demo is a transparent rule, not a model: it picks the image with the best
sharpness-times-exposure score and proposes a box centred on the drawn subject.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.core.crops import CropBox
from workbench.core.demo_draw import plate_font, render_group, render_plate
from workbench.core.errors import InvalidInput, ProjectExists
from workbench.core.project import SETTINGS_FILE, Project, ProjectStore

Progress = Callable[[str, int, int], None]

MANIFEST = "demo.json"
_START = datetime(2025, 7, 5, 14, 0, 0)


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoGroup:
    """One generated group: its files in time order, the truly best one and the AI's view."""

    files: tuple[Path, ...]
    best_index: int
    ai_index: int
    ai_crop: CropBox
    ai_confidence: float


@dataclass(frozen=True)
class DemoChoice:
    """A choice the demo finalized for a group of the first batch."""

    group_index: int
    user_action: str
    user_selected_index: int
    crop_overlay_on: bool
    folder: str


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo` made (or found): paths, the generated truth and the choices."""

    name: str
    root: Path
    source: Path
    plates_dir: Path
    truth_file: Path
    groups: tuple[DemoGroup, ...]
    skipped: tuple[tuple[Path, str], ...]
    plates: int
    choices: tuple[DemoChoice, ...]
    created: bool
    seconds: float

    @property
    def images(self) -> int:
        return sum(len(g.files) for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings) for `workbench demo --json`."""
        return {
            "project": self.name,
            "path": str(self.root),
            "source": str(self.source),
            "plates_dir": str(self.plates_dir),
            "truth_file": str(self.truth_file),
            "groups": len(self.groups),
            "images": self.images,
            "plates": self.plates,
            "skipped": [{"path": str(p), "fault": why} for p, why in self.skipped],
            "finalized": [
                {
                    "group": c.group_index,
                    "action": c.user_action,
                    "image": c.user_selected_index,
                    "folder": c.folder,
                }  # fmt: skip
                for c in self.choices
            ],
            "created": self.created,
            "seconds": round(self.seconds, 3),
        }


# -- the project -----------------------------------------------------------------------


def _draw_files(
    folder: Path, groups: int, plates: int, seed: int, report: Progress, history: int = 0
) -> dict[str, Any]:
    """Write source/ and plates/ under `folder`; returns the manifest."""
    source, plates_dir = folder / "source", folder / "plates"
    source.mkdir(parents=True)
    plates_dir.mkdir()
    days = [(_START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(3)]
    plate_paths = [
        f"{days[i * len(days) // max(1, plates)]}/CAM1_track{i + 1}.jpg" for i in range(plates)
    ]
    for day in {p.split("/")[0] for p in plate_paths}:
        (plates_dir / day).mkdir()
    font = plate_font(44)
    total, done = groups + plates + history, 0
    workers = max(1, min(4, os.cpu_count() or 1))
    earlier = _START - timedelta(days=7)  # the earlier batches' groups sort first
    with ThreadPoolExecutor(workers) as pool:
        history_jobs = [pool.submit(render_group, seed, 10_000 + i, source,
                                    earlier + timedelta(minutes=5 * i))
                        for i in range(history)]  # fmt: skip
        group_jobs = [pool.submit(render_group, seed, i, source, _START + timedelta(minutes=5 * i))
                      for i in range(groups)]  # fmt: skip
        plate_jobs = [pool.submit(render_plate, seed, i, plates_dir / rel, font)
                      for i, rel in enumerate(plate_paths)]  # fmt: skip
        jobs: list[Future[Any]] = [*history_jobs, *group_jobs, *plate_jobs]
        for job in jobs:
            job.result()
            done += 1
            report("Drawing demo images", done, total)
    # One corrupt file and one empty file, each alone in time, for the skipped list.
    end = _START + timedelta(minutes=5 * groups + 10)
    corrupt = f"{end:%Y%m%d_%H%M%S}_stage1.jpg"
    empty = f"{end + timedelta(minutes=5):%Y%m%d_%H%M%S}_stage1.png"
    (source / corrupt).write_bytes(
        b"This is not a JPEG: the demo wrote it to show a skipped file.\n" * 40
    )
    (source / empty).write_bytes(b"")
    texts = [job.result() for job in plate_jobs]
    lines = ["path\ttext"] + [
        f"{rel}\t{text}" for rel, text in zip(plate_paths, texts, strict=True)
    ]
    (plates_dir / "truth.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "version": 1,
        "seed": seed,
        "groups": [job.result() for job in group_jobs],
        "history": [job.result() for job in history_jobs],
        "history_batch_size": groups,
        "skipped": [{"file": corrupt, "fault": "corrupt"}, {"file": empty, "fault": "empty"}],
        "plates": plates,
    }


# The demo reviewer's choices for the first groups: (action, overlay on, user picks).
_PLAN = (
    ("approve", True, "ai"),  # AI pick with its crop -> crop_auto/
    ("crop", True, "best"),  # -> crop/ with a sidecar (the group with the EXIF-rotated photo)
    ("approve", True, "ai"),  # -> crop_auto/
    ("crop", True, "other"),  # the user disagrees with the AI -> crop/
    ("reject", True, "ai"),  # -> delete_staging/
    ("approve", False, "ai"),  # overlay off -> selected/
)


def _plan_choices(groups: list[dict[str, Any]]) -> list[DemoChoice]:
    out = []
    for i, (action, overlay, who) in enumerate(_PLAN[: len(groups)]):
        g = groups[i]
        n = len(g["files"])
        pick = {"ai": g["ai_index"], "best": g["best_index"], "other": (g["ai_index"] + 1) % n}[who]
        if action == "reject":
            folder = "delete_staging"
        elif action == "crop":
            folder = "crop"
        else:
            folder = "crop_auto" if overlay else "selected"
        out.append(DemoChoice(i, action, pick, overlay, folder))
    return out


def _group_pk(conn: sqlite3.Connection, first_image: Path) -> int | None:
    row = conn.execute(
        "SELECT group_pk FROM group_images WHERE path = ?", (str(first_image),)
    ).fetchone()
    return None if row is None else int(row[0])


def _scan(project: Project, conn: sqlite3.Connection, report: Progress, expected: int) -> None:
    from workbench.core.scan_store import scan_project

    stage = "Grouping the demo photos"
    report(stage, 0, expected)
    scan_project(
        project, conn, on_group=lambda pk, group: report(stage, min(pk, expected), expected)
    )
    report(stage, expected, expected)


def _finalize_first(project: Project, conn: sqlite3.Connection, manifest: dict[str, Any],
                    report: Progress) -> None:  # fmt: skip
    """Stage and finalize the planned choices, so crop/ and crop_auto/ have work."""
    from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice

    pks = []
    for choice in _plan_choices(manifest["groups"]):
        g = manifest["groups"][choice.group_index]
        pk = _group_pk(conn, project.source / g["files"][0])
        if (
            pk is None
            or conn.execute("SELECT group_id FROM groups WHERE id = ?", (pk,)).fetchone()[0]
        ):
            continue  # not scanned as expected, or finalized already
        stage_choice(conn, pk, StagedChoice(
            user_action=choice.user_action,
            user_selected_index=choice.user_selected_index,
            crop_overlay_on=choice.crop_overlay_on,
            ai_selected_index=g["ai_index"],
            ai_crop=CropBox.from_seq(g["ai_crop"]),
            ai_confidence=g["ai_confidence"],
            ranker_version="heuristic",
            crop_version="heuristic",
        ))  # fmt: skip
        pks.append(pk)
    if pks:
        report("Finalizing the first demo groups", 0, 1)
        finalize_groups(project, conn, pks)
        report("Finalizing the first demo groups", 1, 1)


def generate_demo(
    store: ProjectStore,
    name: str = "demo",
    *,
    groups: int = 24,
    plates: int = 30,
    seed: int = 7,
    history_batches: int = 0,
    progress: Progress | None = None,
) -> DemoSummary:
    """The demo project `name`, generated on first use and reused afterwards.

    A project of that name that the demo did not make raises ProjectExists; the demo
    never deletes or overwrites anything but its own half-written temporary folder.
    `progress(stage, done, total)` is called as the work goes on. With an existing demo,
    the arguments other than `name` are ignored (the demo's own manifest says what it holds).
    There is deliberately no `force`: to start over, move the demo's folder away (or pass
    another name); an interrupted generation is completed on the next call.
    """
    started = time.perf_counter()
    report: Progress = progress or (lambda stage, done, total: None)
    if not 1 <= groups <= 500 or not 0 <= plates <= 5000 or not 0 <= history_batches <= 10:
        raise InvalidInput(
            "A demo has 1 to 500 groups, 0 to 5000 plates and 0 to 10 earlier batches."
        )
    root = store.path_of(name)
    manifest_file = root / MANIFEST
    created = False
    if not manifest_file.is_file():
        if (root / SETTINGS_FILE).exists():
            raise ProjectExists(
                f"Project '{name}' already exists in {store.projects_dir} and is not a demo; "
                "choose another name for the demo."
            )
        if root.exists():
            raise InvalidInput(
                f"{root} exists but holds no project; move it away or choose another demo name."
            )
        store.projects_dir.mkdir(parents=True, exist_ok=True)
        partial = store.projects_dir / f".{name}.demo-partial-{os.getpid()}"
        if partial.exists():
            shutil.rmtree(partial)  # our own leftover from an earlier failed run of this process
        try:
            manifest = _draw_files(partial, groups, plates, seed, report,
                                   history=groups * history_batches)  # fmt: skip
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            os.replace(partial, root)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        created = True
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if not (root / SETTINGS_FILE).exists():
        # With earlier batches, a batch is as long as the demo's own groups, so those
        # come last as one batch of their own.
        history = bool(manifest.get("history"))
        if history:
            store.create(name, root / "source", batch_size=len(manifest["groups"]))
        else:
            store.create(name, root / "source")
    project = store.open(name)
    _complete(project, manifest, report)
    return _summary(project, manifest, created, time.perf_counter() - started)


def _complete(project: Project, manifest: dict[str, Any], report: Progress) -> None:
    """Run the steps an earlier, interrupted generation did not finish."""
    from workbench.core import db

    conn = project.connect()
    try:
        if db.get_meta(conn, "demo_steps") == "done":
            return
        with project.lock("demo"):
            if not conn.execute("SELECT 1 FROM groups LIMIT 1").fetchone():
                _scan(project, conn, report,
                      len(manifest["groups"]) + len(manifest.get("history", [])))  # fmt: skip
            if manifest.get("history"):
                from workbench.core import demo_history

                demo_history.allow_small_held_out(project)
                demo_history.finalize_history(project, conn, manifest, _group_pk, report)
            _finalize_first(project, conn, manifest, report)
            with db.transaction(conn):
                db.set_meta(conn, "demo_steps", "done")
    finally:
        conn.close()


def _summary(
    project: Project, manifest: dict[str, Any], created: bool, seconds: float
) -> DemoSummary:
    source = project.root / "source"
    reasons = {"corrupt": "not a readable image", "empty": "an empty (zero-byte) file"}
    return DemoSummary(
        name=project.name,
        root=project.root,
        source=source,
        plates_dir=project.root / "plates",
        truth_file=project.root / "plates" / "truth.tsv",
        groups=tuple(
            DemoGroup(
                files=tuple(source / f for f in g["files"]),
                best_index=int(g["best_index"]),
                ai_index=int(g["ai_index"]),
                ai_crop=CropBox.from_seq(g["ai_crop"]),
                ai_confidence=float(g["ai_confidence"]),
            )
            for g in manifest["groups"]
        ),
        skipped=tuple((source / s["file"], reasons[s["fault"]]) for s in manifest["skipped"]),
        plates=int(manifest["plates"]),
        choices=tuple(_plan_choices(manifest["groups"])),
        created=created,
        seconds=seconds,
    )
