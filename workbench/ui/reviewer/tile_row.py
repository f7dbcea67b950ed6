"""The row of 2-4 tiles, as wide and tall as the view allows, and the notice when it is empty."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from workbench.ui.reviewer.geometry import fit
from workbench.ui.reviewer.paint import MUTED
from workbench.ui.reviewer.tile import BACKGROUND, ReviewTile, picture_size

Size = tuple[int | None, int | None]  # an image's displayed size, when known

MAX_TILES = 4
SPACING = 10
MARGIN = 10


class TileRow(QWidget):
    """Places a group's tiles side by side, equal widths, as tall as the tallest picture needs
    (centred, so short landscape pictures do not float in empty frames); paints `notice`
    when there is no group."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewTiles")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.tiles = [ReviewTile(i, self) for i in range(MAX_TILES)]
        self.count = 0
        self.sizes: list[Size] = []
        self.notice = ""
        for tile in self.tiles:
            tile.hide()

    def visible_tiles(self) -> list[ReviewTile]:
        return self.tiles[: self.count]

    def set_group(self, sizes: list[Size]) -> None:
        """Show one tile per image of a group of these displayed sizes (none: no group)."""
        if sizes != self.sizes:
            self.sizes = list(sizes)
            self.count = len(sizes)
            self._place()
            for i, tile in enumerate(self.tiles):
                tile.setVisible(i < self.count)

    def set_notice(self, text: str) -> None:
        if text != self.notice:
            self.notice = text
            self.update()

    def tile_size(self, sizes: list[Size]) -> tuple[int, int]:
        """The size of each tile (whole pixels) for a group of images of these sizes."""
        count = max(1, len(sizes))
        inner_w = self.width() - 2 * MARGIN - SPACING * (count - 1)
        w, max_h = max(1, inner_w // count), max(1, self.height() - 2 * MARGIN)
        pw, ph = picture_size(w, max_h, self.fontMetrics())
        known = [s for s in sizes if s[0] and s[1]]
        if len(known) < len(sizes) or not known:
            return w, max_h  # an unknown size might need all of it
        need = max(fit((pw, ph), (int(s[0] or 1), int(s[1] or 1)))[1] for s in known)
        return w, min(max_h, max_h - ph + need)

    def picture_area(self, sizes: list[Size], dpr: float) -> tuple[int, int]:
        """A tile's picture area in device pixels, for a group of images of these sizes."""
        w, h = self.tile_size(sizes)
        pw, ph = picture_size(w, h, self.fontMetrics())
        return round(pw * dpr), round(ph * dpr)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self.count == 0 and self.notice:
            p.setPen(MUTED)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            p.drawText(QRectF(self.rect()).adjusted(60, 40, -60, -40), int(flags), self.notice)

    def _place(self) -> None:
        if self.count == 0:
            return
        w, h = self.tile_size(self.sizes)
        left = (self.width() - self.count * w - SPACING * (self.count - 1)) // 2
        top = max(MARGIN, (self.height() - h) // 2)
        for i, tile in enumerate(self.tiles[: self.count]):
            tile.setGeometry(left + i * (w + SPACING), top, w, h)
