"""Downscaled images: the one source of thumbnails, with a memory LRU and a disk cache.

Every view and the predictor ask `ThumbnailCache.get(path, max_side)`. A request is
served from memory (an LRU bounded in bytes), else from the disk cache (a JPEG per
content key and size under `<project>/cache/thumbs/`), else by decoding the original
with `images.load_image` (EXIF orientation applied) and writing the disk copy for next
time. Decoding a 3072 px PNG takes about 0.2 s; reading its 1024 px disk copy a few
milliseconds; a memory hit nothing (see benchmarks/bench_predict.py).

Thread-safe: prefetch threads call it at once. No lock is held while decoding; two
threads asking for the same thumbnail share one decode.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from workbench.core.content_key import content_key
from workbench.core.errors import InvalidInput
from workbench.core.images import load_image

if TYPE_CHECKING:
    from workbench.core.project import Project

log = logging.getLogger(__name__)

MEMORY_BYTES = 256 * 1024 * 1024
DISK_BYTES = 2 * 1024 * 1024 * 1024
JPEG_QUALITY = 90
# The disk folder is re-measured after this share of its bound has been written, so the
# bound costs one directory walk per ~100 MB of new thumbnails, not a stat per write.
_RECHECK_SHARE = 0.05
# Pruning goes below the bound, so that the next few writes do not prune again.
_PRUNE_TO_SHARE = 0.9

_MemoryKey = tuple[str, int]


def thumbs_dir(project: Project) -> Path:
    """The project's disk thumbnail cache folder: `<project>/cache/thumbs` (not created)."""
    return project.root / "cache" / "thumbs"


@dataclass(slots=True)
class _Entry:
    size: int
    mtime_ns: int
    image: Image.Image
    nbytes: int


@dataclass(slots=True)
class _InFlight:
    done: threading.Event = field(default_factory=threading.Event)
    image: Image.Image | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Where requests were served from since the cache was made."""

    memory_hits: int
    derived: int
    disk_hits: int
    decodes: int
    memory_bytes: int


def _nbytes(image: Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


class ThumbnailCache:
    """Downscaled RGB images by (file, max side): memory LRU, then disk cache, then decode.

    `cache_dir` None keeps thumbnails in memory only. Returned images are shared between
    callers: treat them as read-only (copy before drawing on one).
    """

    def __init__(
        self,
        cache_dir: Path | None,
        *,
        max_memory_bytes: int = MEMORY_BYTES,
        max_disk_bytes: int = DISK_BYTES,
    ) -> None:
        self.cache_dir = cache_dir
        self.max_memory_bytes = max_memory_bytes
        self.max_disk_bytes = max_disk_bytes
        self._lock = threading.Lock()
        self._memory: OrderedDict[_MemoryKey, _Entry] = OrderedDict()
        self._sides: dict[str, set[int]] = {}
        self._memory_bytes = 0
        self._in_flight: dict[_MemoryKey, _InFlight] = {}
        self._counts = {"memory_hits": 0, "derived": 0, "disk_hits": 0, "decodes": 0}
        self._prune_lock = threading.Lock()
        # None until the first write measures the folder (a cache may be over its bound
        # from an earlier run with a bigger one).
        self._written_since_check: int | None = None

    # -- public ---------------------------------------------------------------------------

    def get(self, path: Path | str, max_side: int) -> Image.Image:
        """The image as displayed (EXIF applied, RGB), longest side <= max_side, never upscaled.

        Raises UnreadableImage (a sentence for the user) when the original cannot be
        decoded; a missing or corrupt disk-cache file is ignored and rewritten.
        """
        if max_side < 1:
            raise InvalidInput(f"max_side must be at least 1, not {max_side}.")
        path = Path(path)
        try:
            st = os.stat(path)
        except OSError:
            return load_image(path, max_side)  # raises the loader's sentence for this file
        mkey = (str(path), max_side)
        with self._lock:
            entry = self._memory.get(mkey)
            if entry is not None and (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
                self._memory.move_to_end(mkey)
                self._counts["memory_hits"] += 1
                return entry.image
            waiting = self._in_flight.get(mkey)
            if waiting is None:
                mine = _InFlight()
                self._in_flight[mkey] = mine
        if waiting is not None:
            waiting.done.wait()
            if waiting.error is not None:
                raise waiting.error
            assert waiting.image is not None
            return waiting.image
        try:
            image = self._produce(path, st, max_side)
            self._remember(mkey, _Entry(st.st_size, st.st_mtime_ns, image, _nbytes(image)))
            mine.image = image
            return image
        except BaseException as exc:
            mine.error = exc
            raise
        finally:
            with self._lock:
                del self._in_flight[mkey]
            mine.done.set()

    def peek(self, path: Path | str, max_side: int) -> Image.Image | None:
        """The thumbnail if it is in memory now, else None; never touches the disk.

        Unlike get(), it does not check whether the file changed since it was read.
        """
        mkey = (str(Path(path)), max_side)
        with self._lock:
            entry = self._memory.get(mkey)
            if entry is None:
                return None
            self._memory.move_to_end(mkey)
            return entry.image

    def stats(self) -> CacheStats:
        """Counts of memory hits, images derived from a larger one, disk hits and decodes."""
        with self._lock:
            return CacheStats(**self._counts, memory_bytes=self._memory_bytes)

    def disk_path(self, key: str, max_side: int) -> Path | None:
        """Where the disk copy for a content key and size lives (None without a disk cache)."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}_{max_side}.jpg"

    # -- producing a thumbnail ------------------------------------------------------------

    def _produce(self, path: Path, st: os.stat_result, max_side: int) -> Image.Image:
        derived = self._derive_from_memory(path, st, max_side)
        if derived is not None:
            self._count("derived")
            return derived
        disk = None
        if self.cache_dir is not None:
            try:
                disk = self.disk_path(content_key(path, st), max_side)
            except OSError:
                return load_image(path, max_side)  # gone or unreadable: the loader's sentence
            image = self._read_disk(disk, max_side) if disk is not None else None
            if image is not None:
                self._count("disk_hits")
                return image
        image = load_image(path, max_side)
        self._count("decodes")
        if disk is not None:
            self._write_disk(disk, image)
        return image

    def _derive_from_memory(
        self, path: Path, st: os.stat_result, max_side: int
    ) -> Image.Image | None:
        """A thumbnail scaled down from a larger one of the same file already in memory."""
        name = str(path)
        with self._lock:
            best: Image.Image | None = None
            for side in sorted(self._sides.get(name, ())):
                entry = self._memory.get((name, side))
                if side > max_side and entry is not None:
                    if (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
                        best = entry.image
                        break
        if best is None:
            return None
        if max(best.size) <= max_side:
            return best  # the original is smaller than both sizes: the same pixels
        out = best.copy()
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return out

    def _read_disk(self, disk: Path, max_side: int) -> Image.Image | None:
        try:
            # Opened from our own file object: closing it leaves the decoded image usable.
            with open(disk, "rb") as fp:
                image = Image.open(fp, formats=("JPEG",))
                image.load()
            if image.mode != "RGB" or max(image.size) > max_side:
                raise ValueError(f"unexpected mode {image.mode} or size {image.size}")
        except FileNotFoundError:
            return None
        except Exception as exc:  # our own file, but truncated by a crash or tampered with
            log.warning("ignoring unreadable thumbnail cache file %s (%s)", disk, exc)
            return None
        try:
            os.utime(disk)  # approximate LRU: eviction removes the least recently used first
        except OSError:
            pass  # read-only cache folder: eviction order is then by age, still correct
        return image

    def _write_disk(self, disk: Path, image: Image.Image) -> None:
        tmp = disk.with_name(f".{disk.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            disk.parent.mkdir(parents=True, exist_ok=True)
            image.save(tmp, "JPEG", quality=JPEG_QUALITY)
            written = tmp.stat().st_size
            os.replace(tmp, disk)
        except OSError as exc:
            # A full or read-only disk costs speed, not correctness.
            log.warning("could not write thumbnail cache file %s (%s)", disk, exc)
            tmp.unlink(missing_ok=True)
            return
        self._after_write(written)

    # -- bounds -----------------------------------------------------------------------------

    def _remember(self, mkey: _MemoryKey, entry: _Entry) -> None:
        if entry.nbytes > self.max_memory_bytes:
            return
        with self._lock:
            old = self._memory.pop(mkey, None)
            if old is not None:
                self._memory_bytes -= old.nbytes
            self._memory[mkey] = entry
            self._sides.setdefault(mkey[0], set()).add(mkey[1])
            self._memory_bytes += entry.nbytes
            while self._memory_bytes > self.max_memory_bytes:
                (name, side), evicted = self._memory.popitem(last=False)
                self._memory_bytes -= evicted.nbytes
                sides = self._sides.get(name)
                if sides is not None:
                    sides.discard(side)
                    if not sides:
                        del self._sides[name]

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _after_write(self, written: int) -> None:
        with self._lock:
            due = (
                self._written_since_check is None
                or self._written_since_check + written > self.max_disk_bytes * _RECHECK_SHARE
            )
            self._written_since_check = (self._written_since_check or 0) + written
        if due and self._prune_lock.acquire(blocking=False):
            try:
                self.prune_disk()
            finally:
                self._prune_lock.release()

    def prune_disk(self) -> int:
        """Removes least recently used disk thumbnails until the folder is under its bound.

        Returns the number of files removed. Called by itself after enough writes.
        """
        with self._lock:
            self._written_since_check = 0
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return 0
        files: list[tuple[int, int, str]] = []
        total = 0
        for sub in os.scandir(self.cache_dir):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(sub.path):
                if item.name.endswith(".jpg") and item.is_file(follow_symlinks=False):
                    st = item.stat(follow_symlinks=False)
                    files.append((st.st_mtime_ns, st.st_size, item.path))
                    total += st.st_size
        if total <= self.max_disk_bytes:
            return 0
        removed = 0
        target = self.max_disk_bytes * _PRUNE_TO_SHARE
        for _mtime, size, name in sorted(files):
            if total <= target:
                break
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass  # another process pruned it first
            total -= size
            removed += 1
        return removed
