"""What the project overview shows, read in one go from the project database (no Qt).

`read_snapshot(project)` opens its own connection (it runs on a worker thread) and
returns plain data: the status counts, the AI's performance, skipped files with their
reasons, model versions and every group with where its images are now.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.project import Project
from workbench.core.reports import performance_report, project_status
from workbench.core.scan_store import load_groups


@dataclass(frozen=True)
class ImageEntry:
    """One image of a group: where it is now, where it was scanned, its size."""

    path: Path
    original: Path
    width: int | None
    height: int | None
    size_bytes: int


@dataclass(frozen=True)
class GroupEntry:
    """A group as the browser lists it, with its decision when it has one."""

    pk: int
    batch_number: int
    position: int
    reason: str
    group_id: str | None
    images: tuple[ImageEntry, ...]
    action: str | None = None
    chosen_index: int | None = None
    staged_action: str | None = None
    ai_index: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    kind: str
    version: int
    created_at: str
    champion: bool


@dataclass(frozen=True)
class Snapshot:
    """Everything the overview displays, as read at one moment."""

    status: dict[str, Any]
    performance: dict[str, Any]
    skipped: list[tuple[str, str]]
    models: list[ModelEntry]
    groups: list[GroupEntry] = field(default_factory=list)


def read_snapshot(project: Project) -> Snapshot:
    """The overview's data, read on the calling thread with its own connection."""
    conn = project.connect()
    try:
        with _read_transaction(conn):
            return Snapshot(
                status=project_status(project, conn),
                performance=performance_report(conn, project.name),
                skipped=[
                    (r[0], r[1])
                    for r in conn.execute("SELECT path, reason FROM scan_skipped ORDER BY path")
                ],  # fmt: skip
                models=[
                    ModelEntry(r[0], int(r[1]), r[2], bool(r[3]))
                    for r in conn.execute(
                        "SELECT kind, version, created_at, is_champion FROM model_versions "
                        "ORDER BY kind, version"
                    )
                ],
                groups=read_groups(conn),
            )
    finally:
        conn.close()


class _read_transaction:
    """BEGIN ... COMMIT around reads, so all counts come from the same database state."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def read_groups(conn: sqlite3.Connection) -> list[GroupEntry]:
    """All groups in review order, each image at its current path."""
    current = {
        (r[0], r[1]): Path(r[2])
        for r in conn.execute("SELECT group_id, image_index, current_path FROM decision_files")
    }
    staged = {r[0]: r[1] for r in conn.execute("SELECT group_pk, user_action FROM staged_choices")}
    decided = {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT group_id, user_action, user_selected_index, ai_selected_index FROM ai_decisions"
        )
    }
    out = []
    for g in load_groups(conn):
        action, chosen, ai = decided.get(g.group_id or "", (None, None, None))
        images = tuple(
            ImageEntry(
                path=current.get((g.group_id, i.position), Path(i.path)),
                original=Path(i.path),
                width=i.width,
                height=i.height,
                size_bytes=int(i.size_bytes or 0),
            )
            for i in g.images
        )
        out.append(
            GroupEntry(
                pk=g.pk,
                batch_number=g.batch_number,
                position=g.position,
                reason=g.reason,
                group_id=g.group_id,
                images=images,
                action=action,
                chosen_index=chosen,
                staged_action=staged.get(g.pk),
                ai_index=ai,
            )  # fmt: skip
        )
    return out


def human_size(size: int) -> str:
    """Bytes as a short string: 812 B, 14.2 KB, 3.1 MB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
