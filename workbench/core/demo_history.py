"""Earlier batches of the demo: groups reviewed and cropped the week before, through the
same finalize and crop code a user's keys go through.

With history, a new user's demo opens with something to train on (the training view's
Retrain works at once) and a few batches of agreement to chart (the AI performance
view). The demo's user keeps the undamaged frame of each group and crops it tightly
around the subject; the demo's AI is its transparent rule (demo_draw.py), recorded as the
`heuristic` versions, so the history shows how often that rule agreed, nothing more.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.crops import CropBox
from workbench.core.project import SETTINGS_FILE, Project

Progress = Callable[[str, int, int], None]

MARGIN = 0.10  # the demo user's crop: the subject plus 10% of its size on each side
REJECT_SHARE = 0.08
CROP_SHARE = 0.60
FINALIZED = datetime(2025, 7, 1, 17, 0, 0, tzinfo=UTC)  # the first earlier batch
# The demo's history is small: its held-out split holds a handful of groups, so the
# demo project asks for fewer of them before a model is measured (project.toml).
TRAINING_SETTINGS = "\n[training]\nmin_ranker_held_out = 3\nmin_crop_held_out = 2\n"


def user_crop(box: list[float]) -> CropBox:
    """The demo user's crop around a subject box (normalized x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    mw, mh = MARGIN * (x2 - x1), MARGIN * (y2 - y1)
    values = (max(0.0, x1 - mw), max(0.0, y1 - mh), min(1.0, x2 + mw), min(1.0, y2 + mh))
    return CropBox.from_seq([round(v, 4) for v in values])


def plan(entries: list[dict[str, Any]], seed: int) -> list[str]:
    """The demo user's action for each earlier group, fixed by the seed."""
    rng = np.random.default_rng([seed, 77])
    draws = rng.random(len(entries))
    return ["reject" if r < REJECT_SHARE else "crop" if r < REJECT_SHARE + CROP_SHARE
            else "approve" for r in draws]  # fmt: skip


def allow_small_held_out(project: Project) -> None:
    """Adds the demo's training minimums to project.toml (once; other sections are kept)."""
    path = project.root / SETTINGS_FILE
    text = path.read_text(encoding="utf-8")
    if "[training]" not in text:
        path.write_text(text.rstrip("\n") + "\n" + TRAINING_SETTINGS, encoding="utf-8")


def finalize_history(
    project: Project,
    conn: sqlite3.Connection,
    manifest: dict[str, Any],
    group_pk: Callable[[sqlite3.Connection, Path], int | None],
    report: Progress,
) -> None:
    """Decide, finalize and crop the earlier batches (what is already done is skipped)."""
    from workbench.core.crop_results import CropRequest
    from workbench.core.crop_submit import submit_crops
    from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice

    entries: list[dict[str, Any]] = manifest.get("history", [])
    per_batch = int(manifest.get("history_batch_size", 0)) or 1
    actions = plan(entries, int(manifest["seed"]))
    stage = "Deciding the earlier batches"
    crops: list[tuple[int, int, CropBox]] = []  # (group pk, kept image, the user's box)
    for start in range(0, len(entries), per_batch):
        report(stage, start, len(entries))
        pks = []
        for i in range(start, min(start + per_batch, len(entries))):
            g, action = entries[i], actions[i]
            pk = group_pk(conn, project.source / g["files"][0])
            if pk is None:
                continue  # not grouped as drawn: leave it for the user
            pick = int(g["best_index"])
            if action == "crop":
                crops.append((pk, pick, user_crop(g["boxes"][pick])))
            if conn.execute("SELECT group_id FROM groups WHERE id = ?", (pk,)).fetchone()[0]:
                continue  # finalized by an earlier, interrupted run
            stage_choice(conn, pk, StagedChoice(
                user_action=action, user_selected_index=pick, crop_overlay_on=action == "crop",
                ai_selected_index=int(g["ai_index"]), ai_crop=CropBox.from_seq(g["ai_crop"]),
                ai_confidence=float(g["ai_confidence"]), ranker_version="heuristic",
                crop_version="heuristic",
            ))  # fmt: skip
            pks.append(pk)
        if pks:
            moment = FINALIZED + timedelta(days=start // per_batch)
            finalize_groups(project, conn, pks, now=moment)
    report(stage, len(entries), len(entries))
    requests = []
    for pk, pick, box in crops:
        row = conn.execute(
            "SELECT f.current_path, d.final_crop_coords FROM groups g "
            "JOIN decision_files f ON f.group_id = g.group_id "
            "JOIN ai_decisions d ON d.group_id = g.group_id "
            "WHERE g.id = ? AND f.image_index = ?",
            (pk, pick),
        ).fetchone()
        if row is not None and row[1] is None and Path(row[0]).is_file():
            requests.append(CropRequest(Path(row[0]), box))
    if requests:
        submit_crops(project, conn, requests, label="demo: earlier crops", source="manual",
                     progress=lambda s, done, total: report("Cropping the earlier batches",
                                                            done, total))  # fmt: skip
