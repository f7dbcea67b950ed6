"""Restore from delete_staging/: what is there, and moving chosen files back where they came from.

A restore is one journaled operation (payload kind "restore"), so a crash finishes it and
undo reverses it. It moves files only: the decision rows stay (the user restored a file,
not the decision) and `decision_files.current_path` follows the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workbench.core import finalize as fz
from workbench.core.db import transaction
from workbench.core.errors import InvalidInput, UnsafePath
from workbench.core.images import IMAGE_EXTENSIONS
from workbench.core.project import Project
from workbench.core.safe_io import PARTIAL_SUFFIX, durable

STAGING = "delete_staging"


@dataclass(frozen=True)
class StagedFile:
    """A file in delete_staging/ and what the decisions know of it (None: nothing known)."""

    path: Path
    size_bytes: int
    group_id: str | None
    image_index: int | None
    original_path: Path | None
    companions: tuple[Path, ...] = ()  # files sharing its stem; they are restored with it


@dataclass(frozen=True)
class RestoredFile:
    """Where one restored file was and where it is now."""

    src: Path
    dst: Path
    group_id: str | None
    image_index: int | None


@dataclass
class RestoreResult:
    """The journal operation of a restore, the files restored, and the entries carried out."""

    operation_id: int
    restored: list[RestoredFile]
    moved: int  # images and their companions


def _origin(conn: sqlite3.Connection, path: Path) -> sqlite3.Row | None:
    sql = (
        "SELECT group_id, image_index, original_path FROM decision_files"
        " WHERE current_path = ? ORDER BY group_id LIMIT 1"
    )
    return conn.execute(sql, (str(path),)).fetchone()


def staged_for_deletion(project: Project, conn: sqlite3.Connection) -> list[StagedFile]:
    """The files in delete_staging/, by name, each image with its companions and origin."""
    staging = project.folder(STAGING)
    if not staging.is_dir():
        return []
    with os.scandir(staging) as it:
        names = sorted(
            e.name
            for e in it
            # Links are never restored (they could point anywhere); partial copies are ours.
            if e.is_file(follow_symlinks=False) and not e.name.endswith(PARTIAL_SUFFIX)
        )
    journal = fz.journal_for(project, conn)
    images = [staging / n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
    companions = {image: tuple(journal.companions_of(image)) for image in images}
    claimed = {c for group in companions.values() for c in group}
    out = []
    for name in names:
        path = staging / name
        if path in claimed:
            continue
        row = _origin(conn, path)
        out.append(
            StagedFile(
                path=path,
                size_bytes=path.stat().st_size,
                group_id=row["group_id"] if row else None,
                image_index=row["image_index"] if row else None,
                original_path=Path(row["original_path"]) if row else None,
                companions=companions.get(path, ()),
            )
        )
    return out


def _staged_path(project: Project, path: Path | str) -> Path:
    """The file's path as the database spells it, or UnsafePath when not in delete_staging/."""
    staging = project.folder(STAGING)
    candidate = Path(os.path.abspath(path))  # folds '..' before the folder is compared
    if candidate.parent.resolve() != staging.resolve():
        raise UnsafePath(f"{path} is not in {staging}; only files there can be restored.")
    candidate = staging / candidate.name
    if candidate.is_symlink() or not candidate.is_file():
        raise InvalidInput(f"{candidate.name} is not a file in delete_staging/; nothing restored.")
    return candidate


def restore(
    project: Project, conn: sqlite3.Connection, paths: Iterable[Path | str]
) -> RestoreResult:
    """The restored files, after moving each back to its original folder; all or nothing.

    A file no decision knows goes to the source folder's root. Nothing is overwritten: a
    name taken there gets `name__2`. Companions come along with their image. Raises
    UnsafePath for a path outside delete_staging/, InvalidInput or FileOperationError
    (changing nothing) when a file cannot be restored.
    """
    wanted = list(dict.fromkeys(_staged_path(project, p) for p in paths))
    if not wanted:
        raise InvalidInput("There are no files to restore.")
    journal = fz.journal_for(project, conn)
    # A companion asked for beside its image moves with the image, not a second time.
    riding = {
        c for p in wanted if p.suffix.lower() in IMAGE_EXTENSIONS for c in journal.companions_of(p)
    }
    wanted = [p for p in wanted if p not in riding]
    restored: list[RestoredFile] = []
    with durable(conn), transaction(conn):
        op = journal.open_operation(f"restore {len(wanted)} file(s) from delete_staging")
        for src in wanted:
            row = _origin(conn, src)
            folder = Path(row["original_path"]).parent if row else project.source
            dst = journal.plan_move(op, src, folder)
            if row is not None:
                conn.execute(
                    "UPDATE decision_files SET current_path = ? WHERE current_path = ?",
                    (str(dst), str(src)),
                )
            group_id, index = (row["group_id"], row["image_index"]) if row else (None, None)
            restored.append(RestoredFile(src, dst, group_id, index))
        files = [
            {
                "from": str(r.src),
                "to": str(r.dst),
                "group_id": r.group_id,
                "image_index": r.image_index,
            }
            for r in restored
        ]
        journal.set_payload(op, {"kind": "restore", "files": files})
        journal.step("planned", op)
    journal.step("committed", op)
    return RestoreResult(op, restored, journal.execute(op))


def _revert_restore(
    conn: sqlite3.Connection, payload: dict[str, object], back: dict[str, Path]
) -> None:
    """Point decision_files at where the undo put each restored file (in delete_staging/)."""
    for entry in payload.get("files", []):  # type: ignore[attr-defined]
        returned = back.get(str(entry["to"]))
        if returned is not None:
            conn.execute(
                "UPDATE decision_files SET current_path = ? WHERE current_path = ?",
                (str(returned), str(entry["to"])),
            )


# Undo (finalize.undo_last) looks reverters up by payload kind.
fz.REVERTERS["restore"] = _revert_restore
