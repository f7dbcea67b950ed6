"""How often the AI agreed with the user, batch by batch, and its recent mistakes (no Qt).

`read_performance(project)` opens its own connection (it runs on a worker thread) and
returns plain data: the agreement now (view `ai_performance`), selection and crop accuracy
per batch (`ai_decisions` grouped by batch_number) with the model versions behind each
batch (`decision_extras`), and the most recent rows of view `ai_mistakes` with the paths
of the images involved, where they are now. Rows of this project only (`project_id`),
as `workbench report` counts them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.crops import CropBox, iou
from workbench.core.errors import WorkbenchError
from workbench.core.project import Project

MISTAKES = 40  # the most recent mistakes listed

_BATCHES_SQL = """
SELECT COALESCE(d.batch_number, 0) AS batch,
       COUNT(*) AS decisions,
       SUM(d.selection_match IS NOT NULL) AS selection_judged,
       SUM(d.selection_match = 1) AS selection_correct,
       SUM(d.crop_match IS NOT NULL) AS crop_judged,
       SUM(d.crop_match = 1) AS crop_correct,
       GROUP_CONCAT(DISTINCT e.ranker_version) AS ranker_versions,
       GROUP_CONCAT(DISTINCT e.crop_version) AS crop_versions,
       MIN(d.timestamp) AS first_at,
       MAX(d.timestamp) AS last_at
FROM ai_decisions d LEFT JOIN decision_extras e ON e.group_id = d.group_id
WHERE d.project_id = ?
GROUP BY COALESCE(d.batch_number, 0)
ORDER BY batch
"""

_MISTAKES_SQL = """
SELECT m.group_id, COALESCE(m.batch_number, 0) AS batch, m.timestamp, m.images, m.directory,
       m.ai_selected_index, m.user_selected_index, m.user_action, m.ai_confidence,
       m.selection_match, m.crop_match, m.ai_crop_coords, m.final_crop_coords,
       e.ranker_version, e.crop_version
FROM ai_mistakes m LEFT JOIN decision_extras e ON e.group_id = m.group_id
WHERE m.project_id = ?
ORDER BY m.timestamp DESC, m.group_id DESC
LIMIT ?
"""


@dataclass(frozen=True)
class BatchPoint:
    """One batch: how many decisions, how many picks and crops the AI got right, with what."""

    batch: int  # 0: rows without a batch number (imported)
    decisions: int
    selection_judged: int
    selection_correct: int
    crop_judged: int
    crop_correct: int
    ranker_versions: tuple[str, ...] = ()
    crop_versions: tuple[str, ...] = ()
    first_at: str = ""
    last_at: str = ""

    @property
    def selection_accuracy(self) -> float | None:
        return self.selection_correct / self.selection_judged if self.selection_judged else None

    @property
    def crop_accuracy(self) -> float | None:
        return self.crop_correct / self.crop_judged if self.crop_judged else None


@dataclass(frozen=True)
class Mistake:
    """One row of `ai_mistakes`: what the AI proposed, what the user did, the images now."""

    group_id: str
    batch: int
    timestamp: str
    user_action: str
    ai_index: int | None
    user_index: int
    ai_confidence: float | None
    selection_wrong: bool
    crop_wrong: bool
    ai_path: Path | None  # the image the AI picked, where it is now
    user_path: Path  # the image the user kept, where it is now
    ai_crop: CropBox | None
    final_crop: CropBox | None
    ranker_version: str | None
    crop_version: str | None

    @property
    def crop_iou(self) -> float | None:
        if self.ai_crop is None or self.final_crop is None:
            return None
        return iou(self.ai_crop, self.final_crop)


@dataclass
class Performance:
    """Everything the AI performance view shows."""

    decisions: int = 0
    selection_correct: int = 0
    selection_accuracy: float | None = None
    crops: int = 0  # decisions with both the AI's crop and a final crop
    crop_correct: int = 0
    crop_accuracy: float | None = None
    mistakes_total: int = 0
    batches: list[BatchPoint] = field(default_factory=list)
    mistakes: list[Mistake] = field(default_factory=list)

    @property
    def last_batch(self) -> BatchPoint | None:
        return self.batches[-1] if self.batches else None


def _versions(text: str | None) -> tuple[str, ...]:
    return tuple(sorted({v for v in (text or "").split(",") if v}))


def _box(text: str | None) -> CropBox | None:
    if not text:
        return None
    try:
        return CropBox.from_json(text)
    except (WorkbenchError, ValueError, TypeError):
        return None


def batch_points(conn: sqlite3.Connection, project_name: str) -> list[BatchPoint]:
    """Selection and crop accuracy per batch, oldest first, with the model versions used."""
    return [
        BatchPoint(batch=int(r[0]), decisions=int(r[1]), selection_judged=int(r[2] or 0),
                   selection_correct=int(r[3] or 0), crop_judged=int(r[4] or 0),
                   crop_correct=int(r[5] or 0), ranker_versions=_versions(r[6]),
                   crop_versions=_versions(r[7]), first_at=r[8] or "", last_at=r[9] or "")  # fmt: skip
        for r in conn.execute(_BATCHES_SQL, (project_name,))
    ]


def _image_paths(conn: sqlite3.Connection, group_id: str, images: str, directory: str | None) -> list[Path]:
    """The group's images where they are now (decision_files), else where the row says."""
    try:
        names = json.loads(images)
    except (TypeError, ValueError):
        names = []
    current = dict(conn.execute(
        "SELECT image_index, current_path FROM decision_files WHERE group_id = ?", (group_id,)
    ).fetchall())  # fmt: skip
    out = []
    for i, name in enumerate(names if isinstance(names, list) else []):
        here = current.get(i)
        if here is None:
            p = Path(str(name))
            here = str(Path(directory) / p) if directory and not p.is_absolute() else str(p)
        out.append(Path(here))
    return out


def recent_mistakes(conn: sqlite3.Connection, project_name: str, limit: int = MISTAKES) -> list[Mistake]:
    """The newest rows of `ai_mistakes`, newest first."""
    out = []
    for r in conn.execute(_MISTAKES_SQL, (project_name, limit)).fetchall():
        paths = _image_paths(conn, r[0], r[3], r[4])
        user = int(r[6])
        ai = r[5] if r[5] is None else int(r[5])
        if user >= len(paths):
            continue  # a damaged row: nothing to show
        out.append(Mistake(
            group_id=r[0], batch=int(r[1]), timestamp=r[2], user_action=r[7],
            ai_index=ai, user_index=user, ai_confidence=r[8],
            selection_wrong=r[9] == 0, crop_wrong=r[10] == 0,
            ai_path=paths[ai] if ai is not None and ai < len(paths) else None,
            user_path=paths[user], ai_crop=_box(r[11]), final_crop=_box(r[12]),
            ranker_version=r[13], crop_version=r[14],
        ))  # fmt: skip
    return out


def performance(conn: sqlite3.Connection, project_name: str, *, mistakes: int = MISTAKES) -> Performance:
    """The AI's performance in this project from an open connection."""
    out = Performance()
    row = conn.execute(
        "SELECT decisions, selection_correct, selection_accuracy, decisions_with_both_crops, "
        "crop_correct, crop_accuracy FROM ai_performance WHERE project_id = ?", (project_name,)
    ).fetchone()  # fmt: skip
    if row is not None:
        out.decisions, out.selection_correct = int(row[0]), int(row[1] or 0)
        out.selection_accuracy = row[2]
        out.crops, out.crop_correct = int(row[3] or 0), int(row[4] or 0)
        out.crop_accuracy = row[5]
    out.mistakes_total = int(conn.execute(
        "SELECT COUNT(*) FROM ai_mistakes WHERE project_id = ?", (project_name,)
    ).fetchone()[0])  # fmt: skip
    out.batches = batch_points(conn, project_name)
    out.mistakes = recent_mistakes(conn, project_name, mistakes)
    return out


def read_performance(project: Project, *, mistakes: int = MISTAKES) -> Performance:
    """The AI's performance in `project` (opens its own connection: call it off the GUI)."""
    conn = project.connect()
    try:
        return performance(conn, project.name, mistakes=mistakes)
    finally:
        conn.close()


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def versions_text(versions: tuple[str, ...]) -> str:
    """The versions, sorted and comma-separated, or "–" when none was recorded."""
    return ", ".join(versions) if versions else "–"


def summary_text(p: Performance) -> str:
    """The agreement now, in one line."""
    if not p.decisions:
        return "No decisions yet: finalize a batch in the reviewer to see how the AI does."
    text = f"Agreement now: picks {percent(p.selection_accuracy)} of {p.decisions} decisions"
    text += f"   ·   crops {percent(p.crop_accuracy)} of {p.crops}" if p.crops else "   ·   no crops judged yet"
    last = p.last_batch
    if last is not None and len(p.batches) > 1:
        text += (f"   ·   last batch ({last.batch}): picks {percent(last.selection_accuracy)}, "
                 f"crops {percent(last.crop_accuracy)}")  # fmt: skip
    return text


def mistake_text(m: Mistake) -> str:
    """Two lines: what went wrong, then when and with which models."""
    what = []
    if m.selection_wrong and m.ai_index is not None:
        conf = f" ({m.ai_confidence * 100:.0f}% sure)" if m.ai_confidence is not None else ""
        what.append(f"picked image {m.ai_index + 1}{conf}, you kept image {m.user_index + 1}")
    if m.crop_wrong:
        overlap = m.crop_iou
        what.append("crop off" + (f" (overlap {overlap * 100:.0f}%)" if overlap is not None else ""))
    models = ", ".join(f"{k} {v}" for k, v in (("ranker", m.ranker_version), ("crop", m.crop_version)) if v)
    when = m.timestamp[:16].replace("T", " ")
    return f"AI {'; '.join(what) or 'disagreed'}\nBatch {m.batch} · {when}" + (f" · {models}" if models else "")


def version_changes(batches: list[BatchPoint], attribute: str = "ranker_versions") -> list[tuple[int, str]]:
    """(batch, version) where a batch used a model version no earlier batch had used."""
    seen: set[str] = set()
    out = []
    for b in batches:
        new = [v for v in getattr(b, attribute) if v not in seen]
        seen.update(new)
        if new and b is not batches[0]:
            out.append((b.batch, ", ".join(new)))
    return out


def as_rows(batches: list[BatchPoint]) -> list[dict[str, Any]]:
    """The per-batch table as plain rows (for the view's table)."""
    return [{"batch": b.batch or "–", "decisions": b.decisions,
             "picks": f"{percent(b.selection_accuracy)} of {b.selection_judged}",
             "crops": f"{percent(b.crop_accuracy)} of {b.crop_judged}" if b.crop_judged else "–",
             "ranker": versions_text(b.ranker_versions), "crop": versions_text(b.crop_versions)}
            for b in batches]  # fmt: skip
