"""Painting helpers for the reviewer's tiles: the AI crop overlay, pills, placeholders.

Plain functions over a QPainter, so the tile's paintEvent reads as a list of layers.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

from workbench.core.crops import CropBox
from workbench.ui.reviewer.presentation import Mark

PANEL = QColor(37, 41, 48)
PANEL_BORDER = QColor(48, 53, 62)
AI = QColor(240, 184, 72)  # the AI's pick and its crop
KEEP = QColor(108, 195, 138)
CROP = QColor(110, 168, 255)
REJECT = QColor(230, 110, 100)
AWAY = QColor(150, 156, 168)
TEXT = QColor(236, 239, 244)
MUTED = QColor(154, 163, 178)
SHADE = QColor(0, 0, 0, 150)  # outside the AI's crop
DIM = QColor(20, 22, 26, 120)  # over an image leaving for delete_staging/

MARK_COLOURS = {Mark.KEEP: KEEP, Mark.CROP: CROP, Mark.REJECT: REJECT, Mark.AWAY: AWAY}


def crop_rect(image_rect: QRectF, box: CropBox) -> QRectF:
    """The crop box in widget coordinates, over a picture drawn in `image_rect`."""
    x, y, w, h = image_rect.x(), image_rect.y(), image_rect.width(), image_rect.height()
    return QRectF(x + box.x1 * w, y + box.y1 * h, (box.x2 - box.x1) * w, (box.y2 - box.y1) * h)


def paint_crop(p: QPainter, image_rect: QRectF, box: CropBox, font: QFont) -> QRectF:
    """Shade the picture outside the AI's crop and outline the crop; returns the crop rect."""
    r = crop_rect(image_rect, box)
    i = image_rect
    for band in (
        QRectF(i.left(), i.top(), i.width(), r.top() - i.top()),  # above
        QRectF(i.left(), r.bottom(), i.width(), i.bottom() - r.bottom()),  # below
        QRectF(i.left(), r.top(), r.left() - i.left(), r.height()),  # left
        QRectF(r.right(), r.top(), i.right() - r.right(), r.height()),  # right
    ):
        if band.width() > 0 and band.height() > 0:
            p.fillRect(band, SHADE)
    p.setPen(QPen(AI, 2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(r.adjusted(1, 1, -1, -1))
    tick = min(18.0, r.width() / 4, r.height() / 4)
    p.setPen(QPen(AI, 4))
    for corner, dx, dy in (
        (r.topLeft(), 1, 1),
        (r.topRight(), -1, 1),
        (r.bottomLeft(), 1, -1),
        (r.bottomRight(), -1, -1),
    ):
        p.drawLine(corner, QPointF(corner.x() + dx * tick, corner.y()))
        p.drawLine(corner, QPointF(corner.x(), corner.y() + dy * tick))
    fm = QFontMetricsF(font)
    if r.height() > 3 * fm.height() and r.width() > fm.horizontalAdvance("AI crop") + 40:
        label_at = QPointF(r.left() + 8, r.bottom() - fm.height() - 14)
        paint_pill(p, label_at, "AI crop", font, fill=QColor(20, 22, 26, 200), text=AI)
    return r


def paint_pill(
    p: QPainter,
    top_left: QPointF,
    label: str,
    font: QFont,
    *,
    fill: QColor,
    text: QColor,
    align_right: bool = False,
) -> QRectF:
    """A rounded label at `top_left` (or ending there with `align_right`); returns its rect."""
    fm = QFontMetricsF(font)
    w, h = fm.horizontalAdvance(label) + 14, fm.height() + 6
    x = top_left.x() - w if align_right else top_left.x()
    rect = QRectF(x, top_left.y(), w, h)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(fill)
    p.drawRoundedRect(rect, h / 2, h / 2)
    p.setFont(font)
    p.setPen(text)
    p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), label)
    return rect


def paint_placeholder(p: QPainter, rect: QRectF, label: str, *, problem: bool) -> None:
    """A dashed box with a sentence: why the picture is missing, or that it is coming."""
    colour = REJECT if problem else AWAY
    p.setPen(QPen(colour, 1, Qt.PenStyle.DashLine))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(rect.adjusted(2, 2, -2, -2), 6, 6)
    p.setPen(colour.lighter(115) if problem else MUTED)
    flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
    p.drawText(rect.adjusted(16, 16, -16, -16), int(flags), label)


def paint_frame(p: QPainter, rect: QRectF, colour: QColor | None, width: float) -> None:
    """The tile's panel, with a coloured border for the AI's pick or the chosen image."""
    p.setPen(QPen(colour or PANEL_BORDER, width if colour is not None else 1))
    p.setBrush(PANEL)
    inset = (width if colour is not None else 1) / 2
    p.drawRoundedRect(rect.adjusted(inset, inset, -inset, -inset), 8, 8)
