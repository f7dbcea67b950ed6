"""Submitting crops: the cropped file to crop_cropped/, the decision row, then the journaled moves.

For each image: the crop is encoded like its source (crop_output) and written complete
under `delete_staging/cropped_outputs/<stamp>/` (a new file, never over another). Then
ONE transaction, fsynced before any file moves, records for every image with a trusted
sidecar `final_crop_coords`, `crop_timestamp`, `crop_match` and the IoU
(`record_final_crop`), points `decision_files` at the original's new place, and plans one
journal operation (payload kind "crop"): the cropped file moves into `crop_cropped/`
(`name__2` when the name is taken), the sidecar is removed (only while it holds what was
read), the original and its companions move to `crop_cropped/originals/` (ADR 0006). The
journal then carries the entries out; a crash rolls them forward.

Undo (`finalize.undo_last`, reverter registered here) restores the row, the sidecar and
the original, and moves the cropped file back into the staging folder in delete_staging/:
it is too large for the journal to hold its bytes, and nothing is ever deleted.
A failure before the commit (unreadable image, read-only folder, full disk) changes
nothing: no row, the sidecar and the original stay, and our staged copies are removed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core import finalize
from workbench.core.crop_output import (
    ORIGINALS,
    CroppedImage,
    check_output_folders,
    crop_image,
    write_error,
)
from workbench.core.crop_queue import (
    PendingImage,
    inspect_image,
    pending_images,
    trust_problem,
    untrusted_warning,
)
from workbench.core.crop_results import CropRequest, CropResult, SubmitReport
from workbench.core.crops import CropBox, iou
from workbench.core.db import database_error, transaction
from workbench.core.decisions import record_final_crop
from workbench.core.errors import FileOperationError, WorkbenchError
from workbench.core.fileops import FileJournal, StepHook
from workbench.core.images import UnreadableImage
from workbench.core.project import Project
from workbench.core.safe_io import durable, write_new_file
from workbench.core.sidecar import sidecar_path
from workbench.core.timeutil import compact_utc, iso_utc

log = logging.getLogger(__name__)

STAGING = "cropped_outputs"  # delete_staging/cropped_outputs/<stamp>/: before commit, after undo
Progress = Callable[[str, int, int], None]


@dataclass
class _Staged:
    item: PendingImage
    cropped: CroppedImage
    path: Path
    result: CropResult


def submit_crops(
    project: Project,
    conn: sqlite3.Connection,
    requests: Iterable[CropRequest],
    *,
    label: str | None = None,
    source: str = "manual",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    step_hook: StepHook | None = None,
) -> SubmitReport:
    """Every request's result, after cropping those that can be (one undoable operation).

    An image that cannot be cropped gets an `error` and is left as it was; the others go
    ahead. Raises WorkbenchError, changing nothing, when the output folders cannot be
    written or the database refuses the commit.
    """
    wanted = list(requests)
    report = progress or (lambda stage, done, total: None)
    check_output_folders(project)
    staging = _staging_folder(project)
    results: list[CropResult] = []
    staged: list[_Staged] = []
    seen: set[str] = set()
    stopped = False
    for i, req in enumerate(wanted):
        if should_stop is not None and should_stop():
            stopped = True
            break
        report(f"Cropping {Path(req.image).name}", i, len(wanted))
        result = CropResult(Path(req.image), req.box)
        results.append(result)
        item = inspect_image(project, conn, req.image)
        result.image = item.path
        if str(item.path) in seen:
            result.error = f"{item.path.name} was asked for twice; it is cropped once."
            continue
        seen.add(str(item.path))
        if item.error is not None:
            result.error = item.error
            continue
        one = _stage(item, result, staging)
        if one is not None:
            staged.append(one)
    for r in results:
        if r.error:
            log.warning("crop of %s refused: %s", r.image, r.error)
        elif r.warning:
            log.warning("%s", r.warning)
    report("Recording the crops", len(results), len(wanted))
    if not staged:
        _remove_empty(staging)
        return SubmitReport(None, results, stopped)
    try:
        journal, op = _commit(project, conn, staged, label, source, step_hook)
    except BaseException as exc:
        for one in staged:  # our own new files, never linked anywhere else yet
            one.path.unlink(missing_ok=True)
        _remove_empty(staging)
        if isinstance(exc, sqlite3.Error):
            raise database_error(exc, project.db_path) from exc
        raise
    journal.step("committed", op)  # from here on, recovery rolls the crop forward
    try:
        journal.execute(op)
    except (WorkbenchError, OSError) as exc:
        detail = getattr(exc, "message", None) or str(exc)
        raise FileOperationError(
            f"The crops are recorded, but moving the files stopped: {detail} Run "
            f"`workbench doctor {project.name} --repair` (or restart Workbench) to finish."
        ) from exc
    _remove_empty(staging)
    report("Done", len(wanted), len(wanted))
    return SubmitReport(op, results, stopped)


def _stage(item: PendingImage, result: CropResult, staging: Path) -> _Staged | None:
    """The crop encoded and written under `staging`, or None with `result.error` set."""
    result.warning = item.warning
    try:
        cropped = crop_image(item.path, result.box)
    except UnreadableImage as exc:
        result.error = f"{exc.message} It was left in place."
        return None
    target, n = staging / item.path.name, 1
    while os.path.lexists(target):  # same name from crop/ and crop_auto/: keep the name
        n += 1
        target = staging / str(n) / item.path.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_new_file(target, cropped.data)
    except OSError as exc:
        result.error = write_error(item.path, staging, exc)
        return None
    result.size, result.quality = cropped.size, cropped.quality
    return _Staged(item, cropped, target, result)


def _commit(
    project: Project,
    conn: sqlite3.Connection,
    staged: list[_Staged],
    label: str | None,
    source: str,
    step_hook: StepHook | None,
) -> tuple[FileJournal, int]:
    journal = finalize.journal_for(project, conn, step_hook)
    outputs, originals = project.folder("crop_cropped"), project.folder("crop_cropped") / ORIGINALS
    when = iso_utc()
    with durable(conn), transaction(conn):
        op = journal.open_operation(label or f"crop {len(staged)} image(s)")
        items = []
        for one in staged:
            r, item = one.result, one.item
            r.output = journal.plan_move(op, one.path, outputs, companions=False)
            entry: dict[str, Any] = {"image": str(item.path), "output": str(r.output),
                                     "box": r.box.to_list(), "group_id": None}  # fmt: skip
            sidecar = item.sidecar
            if sidecar is not None:
                problem = trust_problem(conn, item.path, sidecar)  # again, inside the transaction
                if problem is not None:
                    r.warning = untrusted_warning(item.path.name, problem)
                    sidecar = None
            if sidecar is not None and item.sidecar_bytes is not None:
                entry["previous"] = _previous(conn, sidecar.group_id)
                r.crop_match = record_final_crop(conn, sidecar.group_id, r.box, when=when)
                ai = entry["previous"]["ai_crop"]
                r.iou = iou(CropBox.from_seq(ai), r.box) if ai else None
                r.group_id = entry["group_id"] = sidecar.group_id
                journal.plan_remove(op, sidecar_path(item.path), item.sidecar_bytes)
            r.original = journal.plan_move(op, item.path, originals)
            entry["original"] = str(r.original)
            # Where the file is, is a fact even when no crop is recorded (no sidecar).
            conn.execute(
                "UPDATE decision_files SET current_path = ? WHERE current_path = ?",
                (str(r.original), str(item.path)),
            )
            items.append(entry)
        journal.set_payload(op, {"kind": "crop", "source": source, "items": items})
        journal.step("planned", op)  # a kill here rolls everything back
    return journal, op


def _previous(conn: sqlite3.Connection, group_id: str) -> dict[str, Any]:
    """The row's crop fields before this crop, so undo puts back exactly these."""
    row = conn.execute(
        "SELECT ai_crop_coords, final_crop_coords, crop_timestamp, crop_match"
        " FROM ai_decisions WHERE group_id = ?",
        (group_id,),
    ).fetchone()
    extras = conn.execute(
        "SELECT final_crop_iou FROM decision_extras WHERE group_id = ?", (group_id,)
    ).fetchone()
    ai = CropBox.from_json(row["ai_crop_coords"]).to_list() if row["ai_crop_coords"] else None
    return {
        "ai_crop": ai,
        "final_crop_coords": row["final_crop_coords"],
        "crop_timestamp": row["crop_timestamp"],
        "crop_match": None if row["crop_match"] is None else bool(row["crop_match"]),
        "had_extras": extras is not None,
        "final_crop_iou": extras[0] if extras is not None else None,
    }


def _staging_folder(project: Project) -> Path:
    base = project.folder("delete_staging") / STAGING
    stamp, n = compact_utc(), 1
    candidate = base / stamp
    while os.path.lexists(candidate):
        n += 1
        candidate = base / f"{stamp}_{n}"
    return candidate


def _remove_empty(folder: Path) -> None:
    """Remove the staging folder's empty folders (an undone crop may still live there)."""
    if not folder.is_dir():
        return
    for sub in sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True
    ):
        _rmdir(sub)
    if _rmdir(folder):
        _rmdir(folder.parent)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()  # only when empty
    except OSError:
        return False
    return True


# -- crop_auto/ ----------------------------------------------------------------------------


def auto_requests(
    project: Project, conn: sqlite3.Connection
) -> tuple[list[CropRequest], list[CropResult]]:
    """The crop_auto/ images to crop from their sidecars' AI crops, and those left as they are."""
    requests: list[CropRequest] = []
    left: list[CropResult] = []
    whole = CropBox(0.0, 0.0, 1.0, 1.0)
    for item in pending_images(project, conn, "crop_auto"):
        if item.error is not None:
            left.append(CropResult(item.path, whole, error=item.error))
        elif item.ai_crop is None:
            why = item.warning or f"The sidecar of {item.path.name} holds no AI crop."
            left.append(
                CropResult(item.path, whole, warning=f"{why} Left for a manual crop.", skipped=True)
            )
        else:
            requests.append(CropRequest(item.path, item.ai_crop))
    return requests, left


def crop_auto(
    project: Project,
    conn: sqlite3.Connection,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SubmitReport:
    """Crop every crop_auto/ image to its sidecar's AI crop, as one undoable operation.

    Each is recorded like a manual crop (final crop = AI crop, so crop_match is True).
    Images without a usable AI crop are skipped and reported; unreadable ones are errors.
    """
    requests, left = auto_requests(project, conn)
    if not requests:
        return SubmitReport(None, left)
    done = submit_crops(project, conn, requests, label=f"auto-crop {len(requests)} image(s) of crop_auto/",
                        source="auto", progress=progress, should_stop=should_stop)  # fmt: skip
    done.results = sorted(done.results + left, key=lambda r: r.image.name)
    return done


# -- undo ------------------------------------------------------------------------------------


def _revert_crop(conn: sqlite3.Connection, payload: dict[str, Any], back: dict[str, Path]) -> None:
    """Put each row's crop fields back as they were and point decision_files at the original."""
    for entry in payload.get("items", []):
        gid, prev = entry.get("group_id"), entry.get("previous") or {}
        if gid:
            conn.execute(
                "UPDATE ai_decisions SET final_crop_coords = ?, crop_timestamp = ?, crop_match = ?"
                " WHERE group_id = ?",
                (
                    prev.get("final_crop_coords"),
                    prev.get("crop_timestamp"),
                    prev.get("crop_match"),
                    gid,
                ),
            )
            if prev.get("had_extras"):
                conn.execute(
                    "UPDATE decision_extras SET final_crop_iou = ? WHERE group_id = ?",
                    (prev.get("final_crop_iou"), gid),
                )
            else:
                conn.execute("DELETE FROM decision_extras WHERE group_id = ?", (gid,))
        returned = back.get(str(entry.get("original")))
        if returned is not None:
            conn.execute(
                "UPDATE decision_files SET current_path = ? WHERE current_path = ?",
                (str(returned), str(entry["original"])),
            )


finalize.REVERTERS["crop"] = _revert_crop


def last_operation_kind(
    project: Project, conn: sqlite3.Connection
) -> tuple[str | None, str | None]:
    """(payload kind, label) of the operation `undo_last` would undo next; (None, None) if none."""
    journal = finalize.journal_for(project, conn)
    ops = journal.undoable(limit=1)
    if not ops:
        return None, None
    op_id, label = ops[0]
    return str(journal.payload(op_id).get("kind")), label
