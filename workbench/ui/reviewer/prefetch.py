"""Background preparation for the reviewer: pictures, the AI's proposals, loupe originals.

A `Prefetcher` runs a few long-lived worker loops on its own QThreadPool. The view hands
it an ordered wish list (`want`): the current group's pictures first, then the groups
ahead and behind; each request not started yet is replaced by the new list, so the work
follows the user. A worker

- decodes a picture through the ThumbnailCache (memory LRU, then the disk cache keyed by
  content, then the original, EXIF applied) and scales it to the tile's exact size;
- computes the AI's proposal with `Predictor.pick`, which reads the thumbnails just made
  and computes and caches the ranker's features on the way (each worker has its own
  database connection, opened and closed by its loop); the GUI thread never picks;
- decodes an original at full size for the loupe.

Results come back as queued signals, handled on the GUI thread; the GUI thread itself
never decodes. `shutdown()` drops what is queued and waits for the running requests.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QObject, QThread, QThreadPool, Signal

from workbench.core.errors import WorkbenchError
from workbench.core.images import load_image
from workbench.core.project import Project
from workbench.core.thumbs import ThumbnailCache
from workbench.ml.features import FeatureStore
from workbench.ml.predict import Predictor
from workbench.ui.reviewer.geometry import fit
from workbench.ui.reviewer.pictures import Picture, to_qimage
from workbench.ui.thumbnails import failure_reason

log = logging.getLogger(__name__)

# All workers but the first run at a lower priority than the GUI thread: on two cores, the
# GUI and one worker each have a core, and the others use what is left, so the decode of
# the groups ahead never delays the paint of the group on screen.
WORKER_NICE = 10


@dataclass(frozen=True, slots=True)
class PictureRequest:
    """Show `path` in a picture area of `area` device pixels, from a `side` px thumbnail."""

    path: str
    area: tuple[int, int]
    side: int
    dpr: float = 1.0

    @property
    def key(self) -> tuple[Any, ...]:
        return ("picture", self.path, self.area)


@dataclass(frozen=True, slots=True)
class PickRequest:
    """The AI's proposal for one group; `sides` are its pictures' thumbnail sides."""

    group_pk: int
    paths: tuple[str, ...]
    sides: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        return ("pick", self.group_pk)


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The full-size image, for the 100% loupe."""

    path: str

    @property
    def key(self) -> tuple[Any, ...]:
        return ("original", self.path)


Request = PictureRequest | PickRequest | OriginalRequest


def lower_priority() -> None:
    """Lower the calling thread's scheduling priority (nice on Linux, Qt's elsewhere)."""
    if sys.platform.startswith("linux"):  # Qt's LowPriority has no effect there
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except OSError:
            pass
    else:
        thread = QThread.currentThread()
        if thread is not None:
            thread.setPriority(QThread.Priority.LowPriority)


class ProposalPending(Exception):
    """Raised by the session's provider when the AI has not seen a group's images yet."""


class Prefetcher(QObject):
    """Prepares pictures and proposals ahead of the user; call `shutdown()` before it goes."""

    pictureReady = Signal(object)  # Picture
    pictureFailed = Signal(str, str)  # path, the sentence for the placeholder
    proposalReady = Signal(int, object)  # group pk, AIProposal
    proposalFailed = Signal(int, str)  # group pk, a sentence
    originalReady = Signal(str, object)  # path, QImage (None when it cannot be decoded)

    def __init__(
        self,
        project: Project,
        thumbs: ThumbnailCache,
        predictor: Predictor,
        *,
        threads: int = 2,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.thumbs, self.predictor = project, thumbs, predictor
        self._propose = predictor.as_proposal_provider()
        self._cond = threading.Condition()
        self._queue: deque[Request] = deque()
        self._running: set[tuple[Any, ...]] = set()
        self._stopping = False
        self._failed: dict[str, str] = {}
        self._tls = threading.local()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._pool.setExpiryTimeout(-1)
        for i in range(max(1, threads)):
            self._pool.start(lambda low=i > 0: self._loop(low))

    # -- GUI thread ----------------------------------------------------------------------

    def want(self, requests: Iterable[Request]) -> None:
        """Replace the queue with `requests`, most wanted first (originals stay in front)."""
        with self._cond:
            if self._stopping:
                return
            seen = set(self._running)
            queue: deque[Request] = deque()
            for r in [q for q in self._queue if isinstance(q, OriginalRequest)] + list(requests):
                if r.key not in seen:
                    seen.add(r.key)
                    queue.append(r)
            self._queue = queue
            self._cond.notify_all()

    def urgent(self, requests: Sequence[Request]) -> None:
        """Put `requests` at the front of the queue (the loupe's originals)."""
        with self._cond:
            if self._stopping:
                return
            keys = {r.key for r in requests}
            rest = [r for r in self._queue if r.key not in keys]
            fresh = [r for r in requests if r.key not in self._running]
            self._queue = deque(fresh + rest)
            self._cond.notify_all()

    def failure(self, path: str) -> str | None:
        """Why `path` could not be shown, once a worker found out; else None."""
        return self._failed.get(path)

    def provider(self) -> Callable[[list[Path]], Any]:
        """The session's ProposalProvider, asked only when the user chose before the
        prefetched proposal arrived: it never computes one on the GUI thread (that could
        mean decoding and analysing the images while a key waits), so the choice is
        recorded without an AI proposal, which is what the user saw; the state machine
        says so in its message."""

        def propose(paths: list[Path]) -> Any:
            raise ProposalPending("the AI had not finished looking at these images")

        return propose

    def busy(self) -> bool:
        """True while requests are queued or running."""
        with self._cond:
            return bool(self._queue or self._running)

    def active_threads(self) -> int:
        """Worker threads still running (0 once `shutdown()` has returned)."""
        return self._pool.activeThreadCount()

    def shutdown(self) -> None:
        """Drop queued requests and wait for the running ones; no worker outlives the call."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
        self._pool.waitForDone()

    # -- worker threads ------------------------------------------------------------------

    def feature_store(self) -> FeatureStore:
        """The calling worker's FeatureStore (its loop's own connection)."""
        conn = getattr(self._tls, "conn", None)
        if conn is None:
            raise WorkbenchError("No database connection on this thread for the feature cache.")
        return FeatureStore(conn)

    def _loop(self, low_priority: bool) -> None:
        if low_priority:
            lower_priority()
        conn: sqlite3.Connection | None = None
        try:
            conn = self.project.connect()
        except WorkbenchError as exc:  # features are then computed but not cached
            log.warning("prefetch worker without a database: %s", exc.message)
        self._tls.conn = conn
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    request = self._queue.popleft()
                    self._running.add(request.key)
                try:
                    self._run(request)
                except Exception:  # a bug in one request must not end the worker
                    log.exception("prefetch request %s failed", request)
                finally:
                    with self._cond:
                        self._running.discard(request.key)
        finally:
            self._tls.conn = None
            if conn is not None:
                conn.close()

    def _run(self, request: Request) -> None:
        if isinstance(request, PictureRequest):
            self._picture(request)
        elif isinstance(request, PickRequest):
            for path, side in zip(request.paths, request.sides, strict=False):
                # The display thumbnail first (or a wait for the worker decoding it): the
                # feature-size one is then scaled from it, not decoded a second time.
                try:
                    self.thumbs.get(path, side)
                except (WorkbenchError, OSError):
                    pass  # the pick names the image as unreadable
            try:
                proposal = self._propose([Path(p) for p in request.paths])
            except Exception as exc:  # a broken model or a bug: the user decides without it
                log.exception("no proposal for group %s", request.group_pk)
                text = exc.message if isinstance(exc, WorkbenchError) else f"{exc}"
                self.proposalFailed.emit(request.group_pk, f"The AI failed on this group: {text}")
                return
            self.proposalReady.emit(request.group_pk, proposal)
        else:
            self._original(request)

    def _picture(self, request: PictureRequest) -> None:
        try:
            thumb = self.thumbs.get(request.path, request.side)
        except (WorkbenchError, OSError) as exc:
            reason = failure_reason(request.path, exc)
            self._failed[request.path] = reason
            self.pictureFailed.emit(request.path, reason)
            return
        size = fit(request.area, thumb.size)
        if size != thumb.size:
            thumb = thumb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        image = to_qimage(thumb, request.dpr)
        self.pictureReady.emit(Picture(request.path, request.area, image))

    def _original(self, request: OriginalRequest) -> None:
        try:
            image = to_qimage(load_image(request.path), fast_format=False)
        except (WorkbenchError, OSError):
            image = None
        self.originalReady.emit(request.path, image)
