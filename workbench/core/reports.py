"""Read-only summaries of a project: status counts and the AI performance report."""

from __future__ import annotations

import sqlite3
from typing import Any

from workbench.core.project import ROUTING_FOLDERS, Project
from workbench.core.sidecar import SIDECAR_SUFFIX


def _scalar(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0] or 0) if row else 0


def _folder_images(project: Project, folder: str) -> int:
    path = project.folder(folder)
    if not path.is_dir():
        return 0
    return sum(
        1
        for p in path.iterdir()
        if p.is_file() and p.suffix != SIDECAR_SUFFIX and not p.name.startswith(".")
    )


def project_status(project: Project, conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts a user asks for first: groups, decisions, pending crops, labels, models."""
    groups = _scalar(conn, "SELECT COUNT(*) FROM groups")
    decided = _scalar(conn, "SELECT COUNT(*) FROM groups WHERE group_id IS NOT NULL")
    staged = _scalar(
        conn,
        "SELECT COUNT(*) FROM staged_choices s JOIN groups g ON g.id = s.group_pk "
        "WHERE g.group_id IS NULL",
    )
    first_open = conn.execute(
        "SELECT batch_number, position FROM groups WHERE group_id IS NULL "
        "ORDER BY batch_number, position LIMIT 1"
    ).fetchone()
    models: dict[str, Any] = {}
    for row in conn.execute(
        "SELECT kind, COUNT(*) AS versions, MAX(CASE WHEN is_champion THEN version END) AS champion "
        "FROM model_versions GROUP BY kind ORDER BY kind"
    ):
        models[row["kind"]] = {
            "versions": row["versions"],
            "champion": f"v{row['champion']}" if row["champion"] else None,
        }
    return {
        "project": project.name,
        "path": str(project.root),
        "source": str(project.source),
        "group_by": project.settings.group_by,
        "groups": groups,
        "images": _scalar(conn, "SELECT COUNT(*) FROM group_images"),
        "batches": _scalar(conn, "SELECT COUNT(DISTINCT batch_number) FROM groups"),
        "batch_size": project.settings.batch_size,
        "decided": decided,
        "staged": staged,
        "undecided": groups - decided - staged,
        "next_group": ({"batch": first_open[0], "position": first_open[1]} if first_open else None),
        "decisions": _scalar(conn, "SELECT COUNT(*) FROM ai_decisions"),
        "pending_crops": _scalar(conn, "SELECT COUNT(*) FROM incomplete_crops"),
        "folders": {name: _folder_images(project, name) for name in ROUTING_FOLDERS},
        "skipped_files": _scalar(conn, "SELECT COUNT(*) FROM scan_skipped"),
        "labels": {
            "labeled": _scalar(conn, "SELECT COUNT(*) FROM plate_labels WHERE text != '__SKIP__'"),
            "skipped": _scalar(conn, "SELECT COUNT(*) FROM plate_labels WHERE text = '__SKIP__'"),
        },
        "models": models,
        "unfinished_moves": _scalar(
            conn, "SELECT COUNT(*) FROM file_moves WHERE state IN ('intent', 'moved')"
        ),
    }


def performance_report(conn: sqlite3.Connection, project_name: str) -> dict[str, Any]:
    """Selection and crop accuracy from the `ai_performance` view, counts by action and batch."""
    perf = conn.execute(
        "SELECT * FROM ai_performance WHERE project_id = ?", (project_name,)
    ).fetchone()
    by_action = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT user_action, COUNT(*) FROM ai_decisions WHERE project_id = ? "
            "GROUP BY user_action",
            (project_name,),
        )
    }
    accepted = {
        str(row[0]): row[1]
        for row in conn.execute(
            "SELECT CASE ai_crop_accepted WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE 'null' END,"
            " COUNT(*) FROM ai_decisions WHERE project_id = ? GROUP BY 1",
            (project_name,),
        )
    }
    batches = [
        {
            "batch": row["batch_number"],
            "decisions": row["n"],
            "selection_accuracy": row["sel_acc"],
            "crop_accuracy": row["crop_acc"],
        }
        for row in conn.execute(
            "SELECT batch_number, COUNT(*) AS n,"
            " AVG(CASE WHEN selection_match IS NOT NULL THEN selection_match END) AS sel_acc,"
            " AVG(CASE WHEN crop_match IS NOT NULL THEN crop_match END) AS crop_acc"
            " FROM ai_decisions WHERE project_id = ? GROUP BY batch_number ORDER BY batch_number",
            (project_name,),
        )
    ]
    mistakes = _scalar(
        conn, "SELECT COUNT(*) FROM ai_mistakes WHERE project_id = ?", (project_name,)
    )
    if perf is None:
        summary: dict[str, Any] = {
            "decisions": 0,
            "selection_correct": 0,
            "selection_accuracy": None,
            "decisions_with_both_crops": 0,
            "crop_correct": 0,
            "crop_accuracy": None,
        }
    else:
        summary = {
            key: perf[key]
            for key in (
                "decisions",
                "selection_correct",
                "selection_accuracy",
                "decisions_with_both_crops",
                "crop_correct",
                "crop_accuracy",
            )
        }
    return {
        "project": project_name,
        **summary,
        "by_action": {a: by_action.get(a, 0) for a in ("approve", "crop", "reject")},
        "ai_crop_accepted": {k: accepted.get(k, 0) for k in ("true", "false", "null")},
        "incomplete_crops": _scalar(
            conn, "SELECT COUNT(*) FROM incomplete_crops WHERE project_id = ?", (project_name,)
        ),
        "mistakes": mistakes,
        "batches": batches,
    }
