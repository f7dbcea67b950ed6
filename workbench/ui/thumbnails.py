"""Thumbnails decoded off the GUI thread, with a small cache and stale-result protection.

`ThumbnailLoader.request(path)` answers from the cache at once or queues a decode on the
loader's own thread pool; either way the answer comes as `loaded(path, image, width,
height)` or `failed(path, reason)`. The GUI never decodes an image itself.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from workbench.core.errors import WorkbenchError
from workbench.core.images import ImageInfo, load_image, probe_image
from workbench.ui.workers import Runner

THUMB_SIDE = 640


def decode_thumbnail(path: str, max_side: int) -> tuple[QImage, int, int]:
    """The image as displayed, at most `max_side` px, with its full displayed size.

    Runs on a pool thread (QImage may be built off the GUI thread; QPixmap may not).
    """
    info = probe_image(path)
    image = load_image(path, max_side=max_side)
    data = image.tobytes()
    qimage = QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888)
    qimage = qimage.copy()  # owns its pixels once `data` is gone
    if isinstance(info, ImageInfo):
        return qimage, info.width, info.height
    return qimage, image.width, image.height


def failure_reason(path: str, exc: BaseException) -> str:
    """A short sentence for a placeholder: the loader's message without the long path."""
    if isinstance(exc, WorkbenchError):
        text = exc.message
        prefix = f"Cannot load {path}: "
        if text.startswith(prefix):
            text = text[len(prefix) :]
        return f"Cannot show this image: {text}"
    return f"Cannot show this image: {exc}"


class ThumbnailLoader(QObject):
    """Decodes thumbnails on its own small pool; call `shutdown()` before it goes away."""

    loaded = Signal(str, QImage, int, int)
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, max_side: int = THUMB_SIDE,
                 cache_size: int = 64) -> None:  # fmt: skip
        super().__init__(parent)
        self.max_side = max_side
        self._cache: OrderedDict[str, tuple[QImage, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self._errors: dict[str, str] = {}
        self._pending: set[str] = set()
        self._runner = Runner(self, threads=max(1, min(4, (os.cpu_count() or 2) - 1)))

    def request(self, path: str | Path, *, priority: int = 0) -> None:
        """Emit `loaded` or `failed` now when the answer is known, else queue one decode."""
        key = str(path)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.loaded.emit(key, *hit)
            return
        if key in self._errors:
            self.failed.emit(key, self._errors[key])
            return
        if key in self._pending:
            return
        self._pending.add(key)
        self._runner.submit(
            decode_thumbnail, key, self.max_side, priority=priority,
            on_done=lambda result: self._done(key, result),
            on_failed=lambda exc: self._failed(key, exc),
        )  # fmt: skip

    def prefetch(self, path: str | Path) -> None:
        """Decode into the cache at low priority (for the groups next to the shown one)."""
        key = str(path)
        if key not in self._cache and key not in self._errors and key not in self._pending:
            self.request(key, priority=-1)

    def forget(self) -> None:
        """Drop cached results (after files moved or changed)."""
        self._cache.clear()
        self._errors.clear()

    def busy(self) -> bool:
        return bool(self._pending)

    def shutdown(self) -> None:
        """Drop queued decodes and wait for running ones; no worker outlives this call."""
        self._runner.shutdown()
        self._pending.clear()

    def _done(self, key: str, result: tuple[QImage, int, int]) -> None:
        self._pending.discard(key)
        self._cache[key] = result
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self.loaded.emit(key, *result)

    def _failed(self, key: str, exc: BaseException) -> None:
        self._pending.discard(key)
        self._errors[key] = failure_reason(key, exc)
        self.failed.emit(key, self._errors[key])
