"""Lazy folder scan and grouping of images into review groups of 1-4.

Pipeline: `scan_folder` lists files (cheap, no image is opened) -> `iter_groups` sorts
each folder's files, probes them one at a time in that order and yields groups as soon
as they are known -> `store_scan` writes groups into the project database in batches.
The first group of a 100,000-image folder is therefore available after one listing and
a handful of probes.

Sequence rule (the default): files of one folder are ordered by the timestamp in their
name (`20250705_220230`, `IMG_20250705_220230`, `2025-07-05 22.02.30`, ...) when they
have one, otherwise by natural name order, mtime breaking ties. An image joins the run
of the image before it when either
  (a) the two were taken within `gap_seconds` of each other (name timestamps when both
      names carry one, else file mtimes), or
  (b) they share a burst stem (see `burst_stem`): `IMG_0042.jpg`, `IMG_0042_1.jpg` and
      `IMG_0042_stage3_enhanced.jpg` are one shot and its variants.
Similarity rule: same order, but an image joins when the dHash Hamming distance to the
image before it is at most `threshold`.
A run longer than `max_size` is cut into chunks of at most `max_size`, balanced so no
chunk of one is left over when avoidable (5 -> 3 + 2). An image with no neighbour is a
group of one: no image is ever dropped. Files that cannot be used are reported as
SkippedFile and never appear in a group.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import eq
from pathlib import Path
from typing import Any, NamedTuple

from workbench.core.db import transaction
from workbench.core.errors import InvalidInput
from workbench.core.images import (
    IMAGE_EXTENSIONS,
    ImageInfo,
    SkippedFile,
    UnreadableImage,
    dhash,
    hamming,
    is_image_name,
    probe_image,
)
from workbench.core.naming import burst_stem, name_key, name_timestamp, natural_key, order_key
from workbench.core.project import GROUP_BY
from workbench.core.timeutil import iso_utc

DEFAULT_MAX_SIZE = 4
DEFAULT_GAP_SECONDS = 10.0
DEFAULT_THRESHOLD = 10

_EXTENSIONS = frozenset(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)


class FileEntry(NamedTuple):
    """A listed file: absolute path, its folder and name, size and mtime (no image opened)."""

    path: str
    folder: str
    name: str
    size: int | None = None  # None when listed without stat (iter_groups stats lazily)
    mtime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class FormedGroup:
    """A group of 1-4 usable images, in display order, and why they belong together."""

    images: list[ImageInfo]
    reason: str


GroupingEvent = FormedGroup | SkippedFile


def scan_folder(
    source: Path | str,
    *,
    stat: bool = True,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> Iterator[FileEntry]:
    """Image-named files under `source`, lazily, each folder's files before its subfolders.

    Skips hidden files and folders (names starting with "."), `.decision` sidecars and
    files whose extension is not an image's. Symbolic links are not followed: a linked
    file could duplicate another or lie outside the source, so it is reported through
    `on_skip` instead, as are folders that cannot be read. With `stat=False` entries
    carry no size or mtime: on a cold disk, 100,000 stat calls cost more than the listing.
    """
    root = os.path.abspath(source)
    if not os.path.isdir(root):
        raise InvalidInput(f"Source folder {source} does not exist or is not a folder.")
    pending = [root]
    while pending:
        folder = pending.pop()
        subfolders: list[str] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    try:
                        if entry.is_file(follow_symlinks=False):
                            dot = name.rfind(".")
                            # (.decision sidecars end in their own extension, so they drop out here)
                            if dot <= 0 or name[dot + 1 :].lower() not in _EXTENSIONS:
                                continue
                            if not stat:
                                yield FileEntry(entry.path, folder, name)
                                continue
                            st = entry.stat(follow_symlinks=False)
                            yield FileEntry(entry.path, folder, name, st.st_size, st.st_mtime_ns)
                        elif entry.is_dir(follow_symlinks=False):
                            subfolders.append(entry.path)
                        elif entry.is_symlink() and is_image_name(name) and on_skip is not None:
                            on_skip(SkippedFile(Path(entry.path), "symbolic link: not followed"))
                    except OSError as exc:
                        if on_skip is not None:
                            on_skip(SkippedFile(Path(entry.path), f"unreadable: {exc.strerror}"))
        except OSError as exc:
            if folder == root:
                raise InvalidInput(
                    f"Cannot read the source folder {folder}: {exc.strerror}."
                ) from exc
            if on_skip is not None:
                on_skip(SkippedFile(Path(folder), f"unreadable folder: {exc.strerror}"))
            continue
        # Reverse natural order on a stack: subfolders are visited in natural order.
        subfolders.sort(key=lambda p: natural_key(os.path.basename(p)), reverse=True)
        pending.extend(subfolders)


@dataclass(slots=True)
class _Item:
    info: ImageInfo
    stem: str
    name_ts: float | None
    burst: str | None
    hash: int | None = None


@dataclass(frozen=True, slots=True)
class _Link:
    """Why an item joined the one before it."""

    seconds: float | None = None  # set when within the time gap
    stem: str | None = None  # set when both share this burst stem
    distance: int | None = None  # set in similarity mode


class _Rules:
    """How items link and how a chunk of a run is described, for one grouping mode."""

    def __init__(self, group_by: str, max_size: int, gap_seconds: float, threshold: int) -> None:
        self.group_by = group_by
        self.max_size = max_size
        self.gap = gap_seconds
        self.threshold = threshold

    def link(self, prev: _Item, cur: _Item) -> _Link | None:
        if self.group_by == "similarity":
            assert prev.hash is not None and cur.hash is not None
            distance = hamming(prev.hash, cur.hash)
            return _Link(distance=distance) if distance <= self.threshold else None
        seconds = abs(_time_of(cur, prev) - _time_of(prev, cur))
        in_time = seconds <= self.gap
        same_stem = (
            cur.burst is not None
            and prev.burst is not None
            and prev.burst.casefold() == cur.burst.casefold()
        )
        if not (in_time or same_stem):
            return None
        return _Link(seconds=seconds if in_time else None, stem=prev.burst if same_stem else None)

    def describe(self, items: list[_Item], links: list[_Link], run_len: int | None) -> str:
        """The group's reason; run_len is the whole run's length, None while still growing."""
        n, most = len(items), self.max_size
        if n == 1 and run_len == 1:
            if self.group_by == "similarity":
                return f"single image: no similar neighbour (dHash distance > {self.threshold})"
            return f"single image: no neighbour within {self.gap:g} s"
        if n == 1:
            return f"single image: left over from a run of {run_len} split into groups of at most {most}"
        of_run = f"a run of {run_len}" if run_len is not None else "a longer run"
        tail = f"; part of {of_run} split into groups of at most {most}" if run_len != n else ""
        if self.group_by == "similarity":
            return f"similar: dHash distances {', '.join(str(k.distance) for k in links)}{tail}"
        first, last = items[0], items[-1]
        names = f"({first.stem} ... {last.stem})"
        if all(k.seconds is not None for k in links):
            span = abs(_time_of(last, first) - _time_of(first, last))
            return f"sequence: {n} files within {span:.1f} s {names}{tail}"
        stems = ", ".join(f"'{s}'" for s in dict.fromkeys(k.stem for k in links if k.stem))
        return f"burst stem {stems}: {n} files {names}{tail}"


def _time_of(item: _Item, other: _Item) -> float:
    # Name timestamps are local clock readings and mtimes are UTC epoch seconds; compare
    # like with like: name time only when both names carry one.
    if item.name_ts is not None and other.name_ts is not None:
        return item.name_ts
    return item.info.mtime_ns / 1e9


class _RunSplitter:
    """Collects a run of linked items and cuts it into groups of at most max_size.

    Streams: once a run holds more than 2 * max_size items the first max_size leave as a
    group, so a folder of 100,000 near-identical mtimes never waits for its end. The
    last max_size+1 .. 2*max_size items become two balanced groups (5 -> 3 + 2).
    """

    def __init__(self, rules: _Rules) -> None:
        self.rules = rules
        self.items: list[_Item] = []
        self.links: list[_Link] = []
        self.run_len = 0

    def add(self, item: _Item, link: _Link | None) -> list[FormedGroup]:
        out = self.finish() if link is None else []
        if self.items:
            assert link is not None
            self.links.append(link)
        self.items.append(item)
        self.run_len += 1
        if len(self.items) > 2 * self.rules.max_size:
            out.append(self._emit(self.rules.max_size, run_len=None))
        return out

    def finish(self) -> list[FormedGroup]:
        out: list[FormedGroup] = []
        if len(self.items) > self.rules.max_size:
            out.append(self._emit((len(self.items) + 1) // 2, run_len=self.run_len))
        if self.items:
            out.append(self._emit(len(self.items), run_len=self.run_len))
        self.run_len = 0
        return out

    def _emit(self, count: int, *, run_len: int | None) -> FormedGroup:
        chunk, links = self.items[:count], self.links[: count - 1]
        del self.items[:count]
        del self.links[:count]  # also drops the link from this chunk to the next one
        return FormedGroup([it.info for it in chunk], self.rules.describe(chunk, links, run_len))


def _check_options(group_by: str, max_size: int, gap_seconds: float, threshold: int) -> None:
    if group_by not in GROUP_BY:
        raise InvalidInput(f"group_by must be one of {', '.join(GROUP_BY)}, not {group_by!r}.")
    if not 2 <= max_size <= 4:
        raise InvalidInput(f"The largest group size must be 2 to 4, not {max_size}.")
    if not gap_seconds >= 0:
        raise InvalidInput(f"The sequence gap must be zero or more seconds, not {gap_seconds}.")
    if not 0 <= threshold <= 64:
        raise InvalidInput(f"The similarity threshold must be 0 to 64, not {threshold}.")


def _ordered(entries: list[FileEntry]) -> list[FileEntry]:
    """The entries in sequence order; equal keys are ordered by natural name, then mtime."""
    keys = [order_key(e.name) for e in entries]
    order = sorted(range(len(entries)), key=keys.__getitem__)
    keys = [keys[i] for i in order]
    out = [entries[i] for i in order]
    if not any(map(eq, keys, itertools.islice(keys, 1, None))):
        return out  # the usual case, checked at C speed
    i = 0
    while i < len(keys):
        j = i + 1
        while j < len(keys) and keys[j] == keys[i]:
            j += 1
        if j - i > 1:  # same timestamp (a burst within one second) or same natural name
            out[i:j] = sorted(out[i:j], key=lambda e: (name_key(e.name), _mtime(e)))
        i = j
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off while a folder's entries are listed and keyed.

    Building ~100,000 small tuples triggers collections that rescan all of them again
    and again (measured: first group after 1.0 s instead of 0.5 s). Reference counting
    still frees everything; collection resumes as soon as the folder is ordered.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _mtime(entry: FileEntry) -> int:
    if entry.mtime_ns is not None:
        return entry.mtime_ns
    try:
        return os.stat(entry.path).st_mtime_ns
    except OSError:
        return 0  # vanished; the probe will report it


def iter_groups(
    source: Path | str,
    *,
    group_by: str = "sequence",
    max_size: int = DEFAULT_MAX_SIZE,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    threshold: int = DEFAULT_THRESHOLD,
    known_paths: Iterable[str] = frozenset(),
) -> Iterator[GroupingEvent]:
    """FormedGroup and SkippedFile events, in folder and sequence order, as they are found.

    Images are probed one by one while groups form, so the first group comes after
    listing the folder and probing a few files. Paths in `known_paths` (absolute, as
    strings: the images an earlier scan already grouped) are left out, so a rescan
    yields only new files.
    """
    _check_options(group_by, max_size, gap_seconds, threshold)
    if not os.path.isdir(source):  # checked now, not at the first next()
        raise InvalidInput(f"Source folder {source} does not exist or is not a folder.")
    known = known_paths if isinstance(known_paths, set | frozenset) else set(known_paths)
    return _iter_groups(source, _Rules(group_by, max_size, gap_seconds, threshold), known)


def _iter_groups(
    source: Path | str, rules: _Rules, known: set[str] | frozenset[str]
) -> Iterator[GroupingEvent]:
    listing_skips: list[SkippedFile] = []
    entries = scan_folder(source, stat=False, on_skip=listing_skips.append)
    for _folder, folder_entries in itertools.groupby(entries, key=lambda e: e.folder):
        with _gc_paused():  # no yield inside: the caller's code never runs with it paused
            todo = _ordered([e for e in folder_entries if e.path not in known])
        yield from listing_skips
        listing_skips.clear()
        yield from _group_folder(todo, rules)
    yield from listing_skips


def _group_folder(entries: list[FileEntry], rules: _Rules) -> Iterator[GroupingEvent]:
    """Events for one folder's sorted entries; a new folder always starts a new run."""
    splitter = _RunSplitter(rules)
    prev: _Item | None = None
    for entry in entries:
        probed = probe_image(entry.path)  # its fstat gives size and mtime: no stat in the listing
        if isinstance(probed, SkippedFile):
            yield probed
            continue
        stem = os.path.splitext(entry.name)[0]
        item = _Item(probed, stem, name_timestamp(stem), burst_stem(stem))
        if rules.group_by == "similarity":
            try:
                item.hash = dhash(entry.path)
            except UnreadableImage as exc:
                # The header was fine but the pixels are not: report it like a probe would.
                yield SkippedFile(probed.path, exc.reason)
                continue
        link = rules.link(prev, item) if prev is not None else None
        yield from splitter.add(item, link)
        prev = item
    yield from splitter.finish()


# --- Storing groups in the project database -------------------------------------------


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
