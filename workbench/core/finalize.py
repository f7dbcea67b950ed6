"""Staged reviewer choices and finalize: decision rows plus journaled moves, per seed 002's routing.

A choice is committed the moment the user makes it (`stage_choice`), so a crash loses
nothing. `finalize_groups` turns staged choices into `ai_decisions` rows and plans, in the
same transaction, every move (each image of each group to where ARCHITECTURE.md's routing
table says, with its companions) and every sidecar write; the journal then carries them
out, and `FileJournal.recover` finishes them after a crash. `undo_last` reverses finalizes
(rows, files and sidecars).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workbench.core.crops import CropBox
from workbench.core.db import transaction
from workbench.core.decisions import Decision, insert_decision, make_group_id
from workbench.core.errors import FileOperationError, InvalidInput
from workbench.core.fileops import FileJournal, StepHook, durable
from workbench.core.project import Project
from workbench.core.sidecar import SIDECAR_SUFFIX, Sidecar, encode_sidecar, sidecar_path
from workbench.core.timeutil import iso_utc, utc_now


@dataclass(frozen=True)
class StagedChoice:
    """What the user chose for one group, and what the AI proposed when they chose it."""

    user_action: str
    user_selected_index: int
    crop_overlay_on: bool = True
    ai_selected_index: int | None = None
    ai_crop: CropBox | None = None
    ai_confidence: float | None = None
    ranker_version: str | None = None
    crop_version: str | None = None


@dataclass
class Route:
    """Where one group's chosen image went and why."""

    group_id: str
    chosen: Path
    folder: str
    ai_crop_accepted: bool | None
    sidecar: Sidecar | None


@dataclass
class FinalizeResult:
    """The rows written and the files moved by one finalize."""

    operation_id: int
    group_ids: list[str]
    routes: list[Route]
    moved: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _GroupRow:
    pk: int
    batch_number: int
    position: int
    group_id: str | None
    images: list[tuple[Path, int | None, int | None]]


def stage_choice(conn: sqlite3.Connection, group_pk: int, choice: StagedChoice) -> None:
    """Commit the user's choice for a group at once (replacing an earlier one)."""
    group = _load_group(conn, group_pk)
    if group.group_id is not None:
        raise InvalidInput(f"Group {group_pk} is already finalized as {group.group_id}.")
    n = len(group.images)
    if choice.user_action not in ("approve", "crop", "reject"):
        raise InvalidInput(f"Unknown action {choice.user_action!r}.")
    if not 0 <= choice.user_selected_index < n:
        raise InvalidInput(
            f"Image {choice.user_selected_index + 1} does not exist in a group of {n}."
        )
    if choice.ai_selected_index is not None and not 0 <= choice.ai_selected_index < n:
        raise InvalidInput(f"AI index {choice.ai_selected_index} is outside the group of {n}.")
    conn.execute(
        "INSERT INTO staged_choices(group_pk, user_action, user_selected_index, crop_overlay_on,"
        " ai_selected_index, ai_crop_coords, ai_confidence, ranker_version, crop_version, staged_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(group_pk) DO UPDATE SET user_action = excluded.user_action,"
        " user_selected_index = excluded.user_selected_index,"
        " crop_overlay_on = excluded.crop_overlay_on, ai_selected_index = excluded.ai_selected_index,"
        " ai_crop_coords = excluded.ai_crop_coords, ai_confidence = excluded.ai_confidence,"
        " ranker_version = excluded.ranker_version, crop_version = excluded.crop_version,"
        " staged_at = excluded.staged_at",
        (
            group_pk,
            choice.user_action,
            choice.user_selected_index,
            choice.crop_overlay_on,
            choice.ai_selected_index,
            choice.ai_crop.to_json() if choice.ai_crop else None,
            choice.ai_confidence,
            choice.ranker_version,
            choice.crop_version,
            iso_utc(),
        ),
    )


def unstage_choice(conn: sqlite3.Connection, group_pk: int) -> None:
    conn.execute("DELETE FROM staged_choices WHERE group_pk = ?", (group_pk,))


def staged_choices(conn: sqlite3.Connection, group_pks: Iterable[int]) -> dict[int, StagedChoice]:
    """The staged choice of each given group that has one."""
    out: dict[int, StagedChoice] = {}
    for pk in group_pks:
        r = conn.execute("SELECT * FROM staged_choices WHERE group_pk = ?", (pk,)).fetchone()
        if r is not None:
            out[pk] = StagedChoice(
                user_action=r["user_action"],
                user_selected_index=r["user_selected_index"],
                crop_overlay_on=bool(r["crop_overlay_on"]),
                ai_selected_index=r["ai_selected_index"],
                ai_crop=CropBox.from_json(r["ai_crop_coords"]) if r["ai_crop_coords"] else None,
                ai_confidence=r["ai_confidence"],
                ranker_version=r["ranker_version"],
                crop_version=r["crop_version"],
            )
    return out


def _load_group(conn: sqlite3.Connection, group_pk: int) -> _GroupRow:
    g = conn.execute(
        "SELECT id, batch_number, position, group_id FROM groups WHERE id = ?", (group_pk,)
    ).fetchone()
    if g is None:
        raise InvalidInput(f"There is no group {group_pk} in this project.")
    imgs = conn.execute(
        "SELECT path, width, height FROM group_images WHERE group_pk = ? ORDER BY position",
        (group_pk,),
    ).fetchall()
    return _GroupRow(g[0], g[1], g[2], g[3], [(Path(r[0]), r[1], r[2]) for r in imgs])


def route_for(choice: StagedChoice) -> tuple[str, bool | None]:
    """ARCHITECTURE.md's routing table: (folder for the chosen image, ai_crop_accepted)."""
    if choice.user_action == "reject":
        return "delete_staging", None
    if choice.user_action == "crop":
        return "crop", None
    ai_pick_with_crop = (
        choice.ai_selected_index == choice.user_selected_index and choice.ai_crop is not None
    )
    if ai_pick_with_crop:
        return ("crop_auto", True) if choice.crop_overlay_on else ("selected", False)
    return "selected", None


def own_sidecar(project: Project, path: Path) -> bool:
    """True for a `.decision` file directly in the project's crop/ or crop_auto/: one of ours."""
    path = Path(path)
    folders = (project.folder("crop"), project.folder("crop_auto"))
    return path.suffix == SIDECAR_SUFFIX and path.parent in folders


def journal_for(
    project: Project, conn: sqlite3.Connection, step_hook: StepHook | None = None
) -> FileJournal:
    """A FileJournal confined to the project: only its own sidecars are removable, and no
    scanned image ever rides along as another image's companion."""

    def scanned(path: Path) -> bool:
        sql = "SELECT 1 FROM group_images WHERE path = ? LIMIT 1"
        return conn.execute(sql, (str(path),)).fetchone() is not None

    return FileJournal(
        conn,
        project.is_allowed,
        step_hook=step_hook,
        keep_out=scanned,
        removable=lambda p: own_sidecar(project, p),
    )


def finalize_groups(
    project: Project,
    conn: sqlite3.Connection,
    group_pks: Iterable[int],
    *,
    now: datetime | None = None,
    step_hook: StepHook | None = None,
) -> FinalizeResult:
    """The rows written and files moved, after finalizing the staged groups; all or nothing.

    Raises InvalidInput (or FileOperationError), changing nothing, when a group has no
    staged choice, is already finalized, or an image is missing or cannot be moved.
    """
    pks = list(dict.fromkeys(group_pks))
    if not pks:
        raise InvalidInput("There are no groups to finalize.")
    moment = now or utc_now()
    timestamp = iso_utc(moment)
    journal = journal_for(project, conn, step_hook)
    routes: list[Route] = []
    # FULL sync for this commit: the plan must be on disk before any file moves.
    with durable(conn), transaction(conn):
        choices = staged_choices(conn, pks)
        missing = [pk for pk in pks if pk not in choices]
        if missing:
            raise InvalidInput(
                f"{len(missing)} group(s) have no decision yet; decide them before finalizing."
            )
        op = journal.open_operation(f"finalize {len(pks)} group(s)")
        for pk in pks:
            group = _load_group(conn, pk)
            if group.group_id is not None:
                raise InvalidInput(f"Group {pk} is already finalized as {group.group_id}.")
            route = _finalize_one(project, conn, journal, op, group, choices[pk], timestamp, moment)
            routes.append(route)
        group_ids = [r.group_id for r in routes]
        journal.set_payload(op, {"kind": "finalize", "group_pks": pks, "group_ids": group_ids})
        journal.step("planned", op)  # a kill here rolls everything back
    journal.step("committed", op)
    moved = journal.execute(op)
    counts: dict[str, int] = {}
    for route in routes:
        counts[route.folder] = counts.get(route.folder, 0) + 1
    return FinalizeResult(op, group_ids, routes, moved, counts)


def _finalize_one(
    project: Project,
    conn: sqlite3.Connection,
    journal: FileJournal,
    op: int,
    group: _GroupRow,
    choice: StagedChoice,
    timestamp: str,
    moment: datetime,
) -> Route:
    group_id = make_group_id(project.name, moment, group.batch_number, group.position)
    paths = [p for p, _, _ in group.images]
    chosen_index = choice.user_selected_index
    if choice.user_action == "reject":
        chosen_index = choice.ai_selected_index if choice.ai_selected_index is not None else 0
    if not 0 <= chosen_index < len(paths):  # the group lost images after the choice was made
        raise InvalidInput(
            f"Group {group.pk} has no image {chosen_index + 1}; rescan and decide it again."
        )
    # A missing image the user did not keep must not block the batch: there is nothing to
    # move, so it gets no decision_files row. The kept image itself must be there.
    present = [p.is_file() for p in paths]
    if choice.user_action != "reject" and not present[chosen_index]:
        raise InvalidInput(
            f"{paths[chosen_index]} is missing; restore it, or choose another image or reject "
            "the group, before finalizing."
        )
    _, width, height = group.images[chosen_index]
    if not width or not height:
        raise InvalidInput(
            f"The size of {paths[chosen_index].name} is unknown; rescan the project."
        )
    directory = Path(os.path.commonpath([str(p.parent) for p in paths]))
    folder, accepted = route_for(choice)
    decision = Decision(
        group_id=group_id,
        timestamp=timestamp,
        project_id=project.name,
        directory=str(directory),
        batch_number=group.batch_number,
        images=[str(p.relative_to(directory)) for p in paths],
        ai_selected_index=choice.ai_selected_index,
        ai_crop=choice.ai_crop,
        ai_confidence=choice.ai_confidence,
        user_selected_index=chosen_index,
        user_action=choice.user_action,
        ai_crop_accepted=accepted,
        image_width=width,
        image_height=height,
        extras={"ranker_version": choice.ranker_version, "crop_version": choice.crop_version},
    )
    insert_decision(conn, decision)
    conn.execute("UPDATE groups SET group_id = ? WHERE id = ?", (group_id, group.pk))
    sidecar_needed = folder in ("crop", "crop_auto")
    chosen_dst = paths[chosen_index]
    for i, path in enumerate(paths):
        if not present[i]:
            continue
        target = folder if i == chosen_index else "delete_staging"
        # The sidecar's name is reserved with the image's, so it can never replace a file.
        suffixes = (SIDECAR_SUFFIX,) if (i == chosen_index and sidecar_needed) else ()
        dst = journal.plan_move(op, path, project.folder(target), reserve_suffixes=suffixes)
        if i == chosen_index:
            chosen_dst = dst
        conn.execute(
            "INSERT INTO decision_files(group_id, image_index, original_path, current_path)"
            " VALUES (?, ?, ?, ?)",
            (group_id, i, str(path), str(dst)),
        )
    sidecar = None
    if sidecar_needed:
        sidecar = Sidecar(
            group_id=group_id,
            project_id=project.name,
            needs_crop=folder == "crop",
            ai_crop_coords=choice.ai_crop,
            image=chosen_dst.name,
        )
        # Journaled with the moves, so a crash after the commit cannot leave it unwritten.
        journal.plan_write(op, sidecar_path(chosen_dst), encode_sidecar(chosen_dst, sidecar))
    return Route(group_id, chosen_dst, folder, accepted, sidecar)


# -- undo ------------------------------------------------------------------------------

# Reverts an operation's rows: (conn, its payload, {moved_to: moved_back_to}).
RowReverter = Callable[[sqlite3.Connection, dict[str, object], dict[str, Path]], None]


def _revert_finalize(
    conn: sqlite3.Connection, payload: dict[str, object], back: dict[str, Path]
) -> None:
    """Delete the finalize's rows; staged choices stay, so the groups can be finalized again."""
    group_ids = [str(g) for g in payload.get("group_ids", [])]  # type: ignore[attr-defined]
    for gid in group_ids:
        rows = conn.execute(
            "SELECT original_path, current_path FROM decision_files WHERE group_id = ?", (gid,)
        ).fetchall()
        for original, current in rows:
            returned = back.get(current)
            if returned is not None and str(returned) != original:
                # The original name was taken meanwhile: the group must point at the image
                # that came back, never at the newcomer now bearing the old name.
                conn.execute(
                    "UPDATE group_images SET path = ? WHERE path = ?", (str(returned), original)
                )
        # Cascades to decision_files and decision_extras; groups.group_id becomes NULL.
        conn.execute("DELETE FROM ai_decisions WHERE group_id = ?", (gid,))


# Later work (crop submits, restores) registers its own reverters by payload kind.
REVERTERS: dict[str, RowReverter] = {"finalize": _revert_finalize}


def undo_last(
    project: Project, conn: sqlite3.Connection, count: int = 1, *, step_hook: StepHook | None = None
) -> list[str]:
    """The labels of the last `count` operations, after undoing them (rows, files, sidecars).

    Sidecars are removed only from the project's crop/ and crop_auto/, and only while they
    hold what finalize wrote; everything else stays. Raises FileOperationError, changing
    nothing, when a file is no longer where the operation put it.
    """
    # Modules that journal operations of their own register their reverters on import;
    # restore imports this module, so it is imported here rather than at the top.
    import workbench.core.crop_submit  # noqa: F401
    import workbench.core.restore  # noqa: F401

    journal = journal_for(project, conn, step_hook)
    labels = dict(journal.undoable(limit=count))

    def revert(c: sqlite3.Connection, op_id: int, back: dict[str, Path]) -> None:
        payload = journal.payload(op_id)
        kind = str(payload.get("kind"))
        reverter = REVERTERS.get(kind)
        if reverter is None:
            # Moving files back without reverting their rows would leave the two disagreeing.
            raise FileOperationError(
                f"Workbench cannot undo a '{kind}' operation ({labels.get(op_id, op_id)}); "
                "nothing was changed."
            )
        reverter(c, payload, back)

    return [labels[i] for i in journal.undo(count, revert_rows=revert)]
