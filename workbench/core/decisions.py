"""Decision rows of `ai_decisions`: group ids, validation, match flags, writes."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.core.crops import CropBox, corners_match, iou
from workbench.core.errors import InvalidInput
from workbench.core.timeutil import compact_utc, iso_utc

USER_ACTIONS = ("approve", "crop", "reject")
PROJECT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
GROUP_ID_RE = re.compile(
    r"^(?P<project>[a-z0-9][a-z0-9_-]*)_group_(?P<ts>\d{8}T\d{6}Z)"
    r"_batch(?P<batch>\d{3,})_img(?P<pos>\d{3,})$"
)
# Column order of ai_decisions, as seed 002 fixes it.
COLUMNS = (
    "group_id", "timestamp", "project_id", "directory", "batch_number", "images",
    "ai_selected_index", "ai_crop_coords", "ai_confidence", "user_selected_index",
    "user_action", "ai_crop_accepted", "final_crop_coords", "crop_timestamp",
    "image_width", "image_height", "selection_match", "crop_match",
)  # fmt: skip


def make_group_id(project: str, finalized_at: datetime, batch: int, position: int) -> str:
    """`{project}_group_{YYYYMMDDTHHMMSSZ}_batch{NNN}_img{NNN}`, position counted from 000."""
    if not PROJECT_NAME_RE.match(project):
        raise InvalidInput(f"project name {project!r} must match [a-z0-9][a-z0-9_-]*")
    if batch < 0 or position < 0:
        raise InvalidInput("batch and position must not be negative")
    return f"{project}_group_{compact_utc(finalized_at)}_batch{batch:03d}_img{position:03d}"


def selection_match(
    user_action: str, ai_selected_index: int | None, user_selected_index: int
) -> bool | None:
    """True when the AI picked the user's image; None for rejects and when the AI gave no pick."""
    if ai_selected_index is None or user_action == "reject":
        return None
    return ai_selected_index == user_selected_index


def crop_match(ai_crop: CropBox | None, final_crop: CropBox | None) -> bool | None:
    """Seed 002's 5% corner tolerance; None until both crops exist."""
    if ai_crop is None or final_crop is None:
        return None
    return corners_match(ai_crop, final_crop)


@dataclass
class Decision:
    """One row of `ai_decisions`, validated; match flags are derived, never given."""

    group_id: str
    timestamp: str
    project_id: str
    images: list[str]
    user_selected_index: int
    user_action: str
    image_width: int
    image_height: int
    directory: str | None = None
    batch_number: int | None = None
    ai_selected_index: int | None = None
    ai_crop: CropBox | None = None
    ai_confidence: float | None = None
    ai_crop_accepted: bool | None = None
    final_crop: CropBox | None = None
    crop_timestamp: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise InvalidInput naming the first field that breaks a rule."""
        if not self.group_id:
            raise InvalidInput("group_id is empty")
        if self.user_action not in USER_ACTIONS:
            raise InvalidInput(f"user_action {self.user_action!r} is not approve, crop or reject")
        if not 1 <= len(self.images) <= 4:
            raise InvalidInput(f"a group has 1 to 4 images, not {len(self.images)}")
        if not all(isinstance(name, str) and name for name in self.images):
            raise InvalidInput("every image of a group needs a non-empty file name")
        if not PROJECT_NAME_RE.match(self.project_id or ""):
            raise InvalidInput(f"project_id {self.project_id!r} is not a valid project name")
        if self.ai_crop_accepted is not None and not isinstance(self.ai_crop_accepted, bool):
            raise InvalidInput("ai_crop_accepted must be True, False or empty")
        for name, idx in (("user_selected_index", self.user_selected_index),
                          ("ai_selected_index", self.ai_selected_index)):  # fmt: skip
            if idx is None:
                continue
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise InvalidInput(f"{name} {idx!r} is not a whole number")
            if not 0 <= idx <= 3:
                raise InvalidInput(f"{name} {idx} is outside 0-3")
            if idx >= len(self.images):
                raise InvalidInput(
                    f"{name} {idx} points past the group's {len(self.images)} images"
                )
        if self.ai_confidence is not None and not 0.0 <= self.ai_confidence <= 1.0:
            raise InvalidInput(f"ai_confidence {self.ai_confidence} is outside 0-1")
        if self.image_width <= 0 or self.image_height <= 0:
            raise InvalidInput("image_width and image_height must be positive")

    @property
    def selection_match(self) -> bool | None:
        return selection_match(self.user_action, self.ai_selected_index, self.user_selected_index)

    @property
    def crop_match(self) -> bool | None:
        return crop_match(self.ai_crop, self.final_crop)

    def row(self) -> dict[str, Any]:
        """The database row, in seed 002's column order."""
        return {
            "group_id": self.group_id,
            "timestamp": self.timestamp,
            "project_id": self.project_id,
            "directory": self.directory or None,
            "batch_number": self.batch_number,
            "images": json.dumps(self.images),
            "ai_selected_index": self.ai_selected_index,
            "ai_crop_coords": self.ai_crop.to_json() if self.ai_crop else None,
            "ai_confidence": self.ai_confidence,
            "user_selected_index": self.user_selected_index,
            "user_action": self.user_action,
            "ai_crop_accepted": self.ai_crop_accepted,
            "final_crop_coords": self.final_crop.to_json() if self.final_crop else None,
            "crop_timestamp": self.crop_timestamp,
            "image_width": self.image_width,
            "image_height": self.image_height,
            "selection_match": self.selection_match,
            "crop_match": self.crop_match,
        }


_INSERT_SQL = (
    f"INSERT INTO ai_decisions ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in COLUMNS)})"
)


def insert_decision(
    conn: sqlite3.Connection, decision: Decision, *, source: str = "reviewer"
) -> None:
    """Insert one validated row (and its side-table extras); the caller owns the transaction."""
    decision.validate()
    try:
        conn.execute(_INSERT_SQL, decision.row())
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) and "group_id" in str(exc):
            raise InvalidInput(f"group_id {decision.group_id!r} already exists") from exc
        raise InvalidInput(f"row rejected by the database: {exc}") from exc
    final_iou = (
        iou(decision.ai_crop, decision.final_crop)
        if decision.ai_crop and decision.final_crop
        else None
    )
    conn.execute(
        "INSERT INTO decision_extras(group_id, final_crop_iou, ranker_version, crop_version, source)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            decision.group_id,
            final_iou,
            decision.extras.get("ranker_version"),
            decision.extras.get("crop_version"),
            source,
        ),
    )


def record_final_crop(
    conn: sqlite3.Connection, group_id: str, final_crop: CropBox, *, when: str | None = None
) -> bool | None:
    """Set final_crop_coords, crop_timestamp and crop_match on a row; returns crop_match."""
    row = conn.execute(
        "SELECT ai_crop_coords FROM ai_decisions WHERE group_id = ?", (group_id,)
    ).fetchone()
    if row is None:
        raise InvalidInput(f"no decision with group_id {group_id!r}")
    ai = CropBox.from_json(row[0]) if row[0] else None
    match = crop_match(ai, final_crop)
    conn.execute(
        "UPDATE ai_decisions SET final_crop_coords = ?, crop_timestamp = ?, crop_match = ? "
        "WHERE group_id = ?",
        (final_crop.to_json(), when or iso_utc(), match, group_id),
    )
    conn.execute(
        "INSERT INTO decision_extras(group_id, final_crop_iou) VALUES (?, ?) "
        "ON CONFLICT(group_id) DO UPDATE SET final_crop_iou = excluded.final_crop_iou",
        (group_id, iou(ai, final_crop) if ai else None),
    )
    return match


def decision_from_row(row: sqlite3.Row | dict[str, Any]) -> Decision:
    """A Decision from a database row (as read back, for export and training)."""
    r = dict(row)
    return Decision(
        group_id=r["group_id"],
        timestamp=r["timestamp"],
        project_id=r["project_id"],
        directory=r["directory"],
        batch_number=r["batch_number"],
        images=list(json.loads(r["images"])),
        ai_selected_index=r["ai_selected_index"],
        ai_crop=CropBox.from_json(r["ai_crop_coords"]) if r["ai_crop_coords"] else None,
        ai_confidence=r["ai_confidence"],
        user_selected_index=r["user_selected_index"],
        user_action=r["user_action"],
        ai_crop_accepted=None if r["ai_crop_accepted"] is None else bool(r["ai_crop_accepted"]),
        final_crop=CropBox.from_json(r["final_crop_coords"]) if r["final_crop_coords"] else None,
        crop_timestamp=r["crop_timestamp"],
        image_width=r["image_width"],
        image_height=r["image_height"],
    )
