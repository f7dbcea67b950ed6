"""Storing scanned groups in the project database, and reading them back.

`store_scan` consumes `grouping.iter_groups` events and appends groups in batches,
committing right after the first group so a window can show it at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.db import get_meta, set_meta, transaction
from workbench.core.errors import InvalidInput
from workbench.core.grouping import (
    DEFAULT_GAP_SECONDS,
    DEFAULT_MAX_SIZE,
    DEFAULT_THRESHOLD,
    FormedGroup,
    GroupingEvent,
    iter_groups,
)
from workbench.core.images import SkippedFile
from workbench.core.project import Project
from workbench.core.timeutil import iso_utc


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One image of a stored group, as the database holds it."""

    position: int
    path: str
    width: int | None
    height: int | None
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group row with its images: pk, batch, position, reason and decision id (if any)."""

    pk: int
    batch_number: int
    position: int
    reason: str
    created_at: str
    group_id: str | None
    images: list[StoredImage]


@dataclass
class ScanSummary:
    """What one store_scan wrote, and how fast the first group was there."""

    groups: int = 0
    images: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    first_group_s: float | None = None
    stopped: bool = False

    def skip_counts(self) -> dict[str, int]:
        """How many files were skipped per kind of reason (the text before any ':')."""
        return dict(Counter(s.reason.split(":", 1)[0] for s in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "images": self.images,
            "batches": self.batches,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "skip_counts": self.skip_counts(),
            "elapsed_s": round(self.elapsed_s, 3),
            "first_group_s": None if self.first_group_s is None else round(self.first_group_s, 3),
            "stopped": self.stopped,
        }


def known_paths(conn: sqlite3.Connection) -> set[str]:
    """Absolute paths of every image already in a group (pass to iter_groups on a rescan)."""
    return {row[0] for row in conn.execute("SELECT path FROM group_images")}


def store_scan(
    conn: sqlite3.Connection,
    events: Iterable[GroupingEvent],
    *,
    batch_size: int = 100,
    on_group: Callable[[int, FormedGroup], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    commit_every: int = 500,
    commit_interval_s: float = 1.0,
) -> ScanSummary:
    """A ScanSummary after writing the events' groups and skips into the project database.

    New groups start a new batch after the last existing one (batch numbers from 1,
    `batch_size` groups each, positions from 0), so a rescan never changes a batch the
    reviewer may already have finalized. Rows are written in short transactions: right
    after the first group (so another connection can show it at once), whenever a batch
    is complete, every `commit_every` events or `commit_interval_s` seconds, and at the
    end. No write lock is held while images are being probed. `on_group(pk, group)` is
    called for each group after the transaction holding it has COMMITTED, in order.
    Images already stored (by path) are left out of a group rather than duplicated.
    `should_stop()` ends the scan early; what was found so far is kept.
    """
    if batch_size < 1:
        raise InvalidInput(f"The batch size must be at least 1, not {batch_size}.")
    started = time.perf_counter()
    summary = ScanSummary()
    stored = known_paths(conn)
    was_skipped = {row[0] for row in conn.execute("SELECT path FROM scan_skipped")}
    last_batch = conn.execute("SELECT COALESCE(MAX(batch_number), 0) FROM groups").fetchone()[0]
    batch, position = int(last_batch) + 1, 0
    groups: list[tuple[int, int, FormedGroup]] = []
    skips: list[SkippedFile] = []
    last_flush = started

    def flush(notify: bool = True) -> None:
        nonlocal last_flush
        if not groups and not skips:
            return
        now = iso_utc()
        written: list[tuple[int, FormedGroup]] = []
        with transaction(conn):
            for group_batch, group_position, group in groups:
                cur = conn.execute(
                    "INSERT INTO groups(batch_number, position, reason, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (group_batch, group_position, group.reason, now),
                )
                pk = int(cur.lastrowid or 0)
                conn.executemany(
                    "INSERT INTO group_images(group_pk, position, path, width, height,"
                    " size_bytes, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (pk, i, str(im.path), im.width, im.height, im.size_bytes, im.mtime_ns)
                        for i, im in enumerate(group.images)
                    ],
                )
                fixed = [(str(im.path),) for im in group.images if str(im.path) in was_skipped]
                conn.executemany("DELETE FROM scan_skipped WHERE path = ?", fixed)
                written.append((pk, group))
            conn.executemany(
                "INSERT INTO scan_skipped(path, reason, scanned_at) VALUES (?, ?, ?)"
                " ON CONFLICT(path) DO UPDATE SET reason = excluded.reason,"
                " scanned_at = excluded.scanned_at",
                [(str(s.path), s.reason, now) for s in skips],
            )
        groups.clear()
        skips.clear()
        last_flush = time.perf_counter()
        if summary.first_group_s is None and written:
            summary.first_group_s = last_flush - started
        if notify and on_group is not None:
            for pk, group in written:
                on_group(pk, group)

    try:
        for event in events:
            if isinstance(event, SkippedFile):
                skips.append(event)
                summary.skipped.append(event)
            else:
                images = [im for im in event.images if str(im.path) not in stored]
                if images:
                    group = (
                        event
                        if len(images) == len(event.images)
                        else FormedGroup(images, event.reason)
                    )
                    stored.update(str(im.path) for im in images)
                    groups.append((batch, position, group))
                    if not summary.batches or summary.batches[-1] != batch:
                        summary.batches.append(batch)
                    summary.groups += 1
                    summary.images += len(images)
                    position += 1
                    if position == batch_size:
                        batch, position = batch + 1, 0
                    if summary.groups == 1 or position == 0:
                        flush()  # the first group, and every complete batch, show at once
            if (
                len(groups) + len(skips) >= commit_every
                or time.perf_counter() - last_flush >= commit_interval_s
            ):
                flush()
            if should_stop is not None and should_stop():
                summary.stopped = True
                break
    except BaseException:
        # Keep the groups already formed: a rescan then continues after them.
        with contextlib.suppress(sqlite3.Error):
            flush(notify=False)
        raise
    flush()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def load_groups(conn: sqlite3.Connection, batch_number: int | None = None) -> list[StoredGroup]:
    """The stored groups (all, or one batch's) with their images, in batch and position order."""
    sql = (
        "SELECT g.id, g.batch_number, g.position, g.reason, g.created_at, g.group_id,"
        " i.position, i.path, i.width, i.height, i.size_bytes, i.mtime_ns"
        " FROM groups g LEFT JOIN group_images i ON i.group_pk = g.id"
    )
    params: tuple[int, ...] = ()
    if batch_number is not None:
        sql += " WHERE g.batch_number = ?"
        params = (batch_number,)
    sql += " ORDER BY g.batch_number, g.position, i.position"
    out: list[StoredGroup] = []
    for row in conn.execute(sql, params):
        if not out or out[-1].pk != row[0]:
            out.append(StoredGroup(row[0], row[1], row[2], row[3], row[4], row[5], []))
        if row[7] is not None:
            out[-1].images.append(StoredImage(row[6], row[7], row[8], row[9], row[10], row[11]))
    return out


def scan_into(
    conn: sqlite3.Connection,
    source: Path | str,
    *,
    group_by: str = "sequence",
    max_size: int = DEFAULT_MAX_SIZE,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    threshold: int = DEFAULT_THRESHOLD,
    batch_size: int = 100,
    on_group: Callable[[int, FormedGroup], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScanSummary:
    """A ScanSummary after scanning `source` and storing the groups of files not yet grouped.

    The same call serves `init` (empty database) and a rescan (only new files are added).
    """
    events = iter_groups(
        source,
        group_by=group_by,
        max_size=max_size,
        gap_seconds=gap_seconds,
        threshold=threshold,
        known_paths=known_paths(conn),
    )
    return store_scan(
        conn, events, batch_size=batch_size, on_group=on_group, should_stop=should_stop
    )


SCAN_COMPLETE_KEY = "scan.complete"


def scan_incomplete(conn: sqlite3.Connection) -> bool:
    """True when the last scan of the source stopped early (the rest is still to group)."""
    return get_meta(conn, SCAN_COMPLETE_KEY) == "0"


def scan_project(
    project: Project,
    conn: sqlite3.Connection,
    *,
    on_group: Callable[[int, FormedGroup], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScanSummary:
    """A ScanSummary after grouping the project's new source images with its own settings.

    A scan that stops early is recorded as incomplete, so the next one (in the background
    when the project is opened) picks up the rest.
    """
    s = project.settings
    summary = scan_into(
        conn,
        project.source,
        group_by=s.group_by,
        max_size=s.max_group_size,
        gap_seconds=s.sequence_gap_seconds,
        threshold=s.similarity_threshold,
        batch_size=s.batch_size,
        on_group=on_group,
        should_stop=should_stop,
    )
    set_meta(conn, SCAN_COMPLETE_KEY, "0" if summary.stopped else "1")
    return summary
