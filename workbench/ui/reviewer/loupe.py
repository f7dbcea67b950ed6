"""The 100% loupe: while Space is held, every image of the group at full size, panned together.

`Loupe` holds the loupe's state (on or off, the relative point it is centred on) and the
current group's originals, decoded on prefetch threads at the front of the queue; it
forgets them when the group changes, so at most one group's originals are in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from workbench.ui.reviewer.prefetch import OriginalRequest, Prefetcher

CENTRE = (0.5, 0.5)


class Loupe(QObject):
    """Loupe state for the view; `changed` fires when the tiles must repaint."""

    changed = Signal()

    def __init__(self, prefetcher: Prefetcher, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._prefetcher = prefetcher
        self.active = False
        self.point = CENTRE
        self._paths: tuple[str, ...] = ()
        self._originals: dict[str, QImage | None] = {}
        prefetcher.originalReady.connect(self._on_original)

    def original(self, path: str) -> QImage | None:
        return self._originals.get(path)

    def set_group(self, paths: Sequence[str]) -> None:
        """The group on screen; originals of other groups are dropped."""
        paths = tuple(paths)
        if paths == self._paths:
            return
        self._paths = paths
        self._originals = {p: im for p, im in self._originals.items() if p in paths}
        if self.active:
            self._request()

    def start(self, point: tuple[float, float] | None) -> None:
        self.active = True
        self.point = point or CENTRE
        self._request()
        self.changed.emit()

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.changed.emit()

    def move(self, point: tuple[float, float]) -> None:
        """Centre every image on the same relative point (the mouse over any tile)."""
        self.point = point
        if self.active:
            self.changed.emit()

    def _request(self) -> None:
        missing = [OriginalRequest(p) for p in self._paths if p not in self._originals]
        if missing:
            self._prefetcher.urgent(missing)

    def _on_original(self, path: str, image: QImage | None) -> None:
        if path in self._paths:
            self._originals[path] = image
            if self.active:
                self.changed.emit()
