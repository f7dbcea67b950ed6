"""Lazy folder scan and grouping of images into review groups of 1-4.

Pipeline: `scan_folder` lists files (cheap, no image is opened) -> `iter_groups` sorts
each folder's files, probes them one at a time in that order and yields groups as soon
as they are known -> `scan_store.store_scan` writes groups into the project database in batches.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import eq
from pathlib import Path
from typing import NamedTuple

from workbench.core.errors import InvalidInput
from workbench.core.images import (
    IMAGE_EXTENSIONS,
    UNDECODABLE_IMAGE_EXTENSIONS,
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

DEFAULT_MAX_SIZE = 4
DEFAULT_GAP_SECONDS = 10.0
DEFAULT_THRESHOLD = 10

_EXTENSIONS = frozenset(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
_UNDECODABLE = frozenset(ext.lstrip(".") for ext in UNDECODABLE_IMAGE_EXTENSIONS)


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
        # Camera files we cannot decode (RAW, HEIC): companions of a same-stem image we can,
        # else reported as skipped so no image silently drops out of the review.
        undecodable: list[str] = []
        stems: set[str] = set()
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
                            ext = name[dot + 1 :].lower() if dot > 0 else ""
                            if ext not in _EXTENSIONS:
                                if ext in _UNDECODABLE:
                                    undecodable.append(name)
                                continue
                            stems.add(name[:dot].lower())
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
        if on_skip is not None:
            for name in undecodable:
                stem, ext = os.path.splitext(name)
                if stem.lower() not in stems:
                    reason = f"unsupported image format ({ext.lower()}): no same-named image to travel with"
                    on_skip(SkippedFile(Path(folder) / name, reason))
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
