"""The crop canvas: the page's images side by side, each with its crop box; events in, paint out.

It keeps no crop state: every press, move, release and key becomes a call on the core
`CropSession`, and the canvas repaints what it returns. A pointer position is turned
into normalized coordinates of the image under it (of the pressed image while a drag
lasts, so dragging past an image's edge clamps there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QWidget

from workbench.core.cropping import Change, CropSession, Handle, Mods
from workbench.ui.crop.paint import paint_box, paint_caption

MARGIN = 14
GAP = 14
HEADER_H = 34
FOOTER_H = 46
HANDLE_GRAB_PX = 9  # how near (screen pixels) an edge or corner grabs it

_CURSORS = {
    Handle.NW: Qt.CursorShape.SizeFDiagCursor,
    Handle.SE: Qt.CursorShape.SizeFDiagCursor,
    Handle.NE: Qt.CursorShape.SizeBDiagCursor,
    Handle.SW: Qt.CursorShape.SizeBDiagCursor,
    Handle.N: Qt.CursorShape.SizeVerCursor,
    Handle.S: Qt.CursorShape.SizeVerCursor,
    Handle.E: Qt.CursorShape.SizeHorCursor,
    Handle.W: Qt.CursorShape.SizeHorCursor,
    Handle.INSIDE: Qt.CursorShape.SizeAllCursor,
    Handle.OUTSIDE: Qt.CursorShape.CrossCursor,
}


@dataclass
class Tile:
    """What the canvas shows of one image besides its box: picture and captions."""

    name: str
    image: QImage | None = None
    tag: str = ""  # where the starting box came from
    warning: str = ""
    error: str = ""
    info: str = ""  # shown when there is nothing to warn about (which decision it records)


def mods_of(event: QMouseEvent | QKeyEvent) -> Mods:
    m = event.modifiers()
    return Mods(
        shift=bool(m & Qt.KeyboardModifier.ShiftModifier),
        ctrl=bool(m & Qt.KeyboardModifier.ControlModifier),
        alt=bool(m & Qt.KeyboardModifier.AltModifier),
    )


class CropCanvas(QWidget):
    """Paints the session's images; `changed(Change)` fires after an event changed something."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cropCanvas")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 240)
        self.session: CropSession | None = None
        self.tiles: list[Tile] = []
        self.message = "Nothing to crop."
        # The view's key handler: True when it used the key.
        self.key_handler: Callable[[QKeyEvent], bool] | None = None

    def sizeHint(self) -> QSize:
        return QSize(1200, 700)

    # -- content ---------------------------------------------------------------------------

    def show_page(self, session: CropSession, tiles: list[Tile]) -> None:
        self.session, self.tiles = session, tiles
        self._update_tolerances()
        self.update()

    def show_message(self, text: str) -> None:
        """No images: a sentence in the middle (nothing waiting, loading, ...)."""
        self.session, self.tiles, self.message = None, [], text
        self.update()

    # -- geometry --------------------------------------------------------------------------

    def column_rect(self, index: int) -> QRectF:
        """The full-height column of image `index`: a press anywhere in it is about that image."""
        n = max(1, len(self.tiles))
        width = (self.width() - 2 * MARGIN - (n - 1) * GAP) / n
        return QRectF(MARGIN + index * (width + GAP), MARGIN, width, self.height() - 2 * MARGIN)

    def _fitted(self, index: int) -> tuple[float, float]:
        """The painted size of image `index`: as large as its column allows, aspect kept."""
        if self.session is None:
            return 0.0, 0.0
        col = self.column_rect(index)
        avail_w, avail_h = col.width() - 16, col.height() - HEADER_H - FOOTER_H
        if avail_w <= 0 or avail_h <= 0:
            return 0.0, 0.0
        im = self.session.images[index]
        scale = min(avail_w / im.width, avail_h / im.height)
        return im.width * scale, im.height * scale

    def cell_rect(self, index: int) -> QRectF:
        """The frame of image `index`: caption, picture, caption; one height for the page."""
        col = self.column_rect(index)
        area_h = max((self._fitted(i)[1] for i in range(len(self.tiles))), default=0.0)
        height = HEADER_H + area_h + FOOTER_H
        return QRectF(col.x(), col.y() + (col.height() - height) / 2, col.width(), height)

    def image_rect(self, index: int) -> QRectF:
        """Where image `index` is painted: centred in its frame between the captions."""
        w, h = self._fitted(index)
        if w <= 0 or h <= 0:
            return QRectF()
        cell = self.cell_rect(index)
        area = cell.adjusted(8, HEADER_H, -8, -FOOTER_H)
        rect = QRectF(0, 0, w, h)
        rect.moveCenter(area.center())
        return rect

    def to_normalized(self, index: int, pos: QPointF) -> tuple[float, float]:
        rect = self.image_rect(index)
        if rect.isEmpty():
            return 0.0, 0.0
        return (pos.x() - rect.x()) / rect.width(), (pos.y() - rect.y()) / rect.height()

    def to_widget(self, index: int, x: float, y: float) -> QPointF:
        """The widget point of normalized (x, y) of image `index` (for tests and painting)."""
        rect = self.image_rect(index)
        return QPointF(rect.x() + x * rect.width(), rect.y() + y * rect.height())

    def index_at(self, pos: QPointF) -> int | None:
        for i in range(len(self.tiles)):
            if self.column_rect(i).contains(pos):
                return i
        return None

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tolerances()

    def _update_tolerances(self) -> None:
        if self.session is None:
            return
        for i in range(len(self.session.images)):
            rect = self.image_rect(i)
            if not rect.isEmpty():
                self.session.set_tolerance(
                    i, HANDLE_GRAB_PX / rect.width(), HANDLE_GRAB_PX / rect.height()
                )

    # -- events ----------------------------------------------------------------------------

    def _emit(self, change: Change) -> None:
        if change.any:
            self.update()
            self.changed.emit(change)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        index = self.index_at(event.position())
        if self.session is None or index is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if self.tiles[index].error:
            self._emit(self.session.set_focus(index))
            return
        x, y = self.to_normalized(index, event.position())
        self._emit(self.session.press(index, x, y, mods_of(event)))
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        session = self.session
        if session is None:
            return
        index = session.drag_index
        if index is not None:  # a drag: positions are the pressed image's, clamped by the core
            x, y = self.to_normalized(index, event.position())
            self._emit(session.move(x, y, mods_of(event)))
            return
        hover = self.index_at(event.position())
        if hover is None or self.tiles[hover].error:
            self.unsetCursor()
            return
        handle = session.hit(hover, *self.to_normalized(hover, event.position()))
        self.setCursor(_CURSORS[handle])

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        session = self.session
        if session is None or session.drag_index is None:
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x, y = self.to_normalized(session.drag_index, event.position())
        self._emit(session.release(x, y, mods_of(event)))
        self.update()  # the thirds guides go away

    def event(self, event: QEvent) -> bool:
        # Tab moves between the images here, not between widgets.
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
                self.keyPressEvent(event)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.key_handler is not None and self.key_handler(event):
            event.accept()
            return
        event.ignore()  # the window's keys (?, Ctrl+Q, ...) go on to the window

    # -- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#1d2026"))
        session = self.session
        if session is None or not self.tiles:
            p.setPen(QColor("#9aa3b2"))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            p.drawText(QRectF(self.rect()).adjusted(40, 40, -40, -40), int(flags), self.message)
            return
        fm = QFontMetrics(self.font())
        for i, tile in enumerate(self.tiles):
            focused = i == session.focus
            cell = self.cell_rect(i)
            p.setPen(QPen(QColor("#5aa9ff" if focused else "#30353e"), 2 if focused else 1))
            p.setBrush(QColor("#252930"))
            p.drawRoundedRect(cell.adjusted(1, 1, -1, -1), 8, 8)
            im = session.images[i]
            rect = self.image_rect(i)
            if tile.image is not None and not tile.image.isNull() and not tile.error:
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                p.drawImage(rect, tile.image)
                dragging = session.drag_index == i
                paint_box(p, rect, im.box, im.proposal, focused=focused, dragging=dragging)
            else:
                p.setPen(QPen(QColor("#787e8a"), 1, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRoundedRect(rect, 6, 6)
                p.setPen(QColor("#e07a6a"))
                flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
                p.drawText(rect.adjusted(12, 12, -12, -12), int(flags), tile.error or "Loading…")
            paint_caption(p, fm, cell, i, tile, im, focused=focused, header_h=HEADER_H,
                          footer_h=FOOTER_H)  # fmt: skip
