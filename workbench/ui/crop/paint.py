"""Painting one crop tile: the dimmed surround, the box, its handles, the AI proposal, captions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen

from workbench.core.cropping import ImageCrop
from workbench.core.crops import CropBox

if TYPE_CHECKING:
    from workbench.ui.crop.canvas import Tile

ACCENT = QColor("#5aa9ff")
PROPOSAL = QColor("#e0b35a")
WARNING = QColor("#e0b35a")
MUTED = QColor("#9aa3b2")
HANDLE_PX = 9


def box_rect(rect: QRectF, box: CropBox) -> QRectF:
    """The widget rectangle of a normalized box on an image painted in `rect`."""
    return QRectF(
        QPointF(rect.x() + box.x1 * rect.width(), rect.y() + box.y1 * rect.height()),
        QPointF(rect.x() + box.x2 * rect.width(), rect.y() + box.y2 * rect.height()),
    )


def paint_box(p: QPainter, rect: QRectF, box: CropBox, proposal: CropBox, *, focused: bool,
              dragging: bool) -> None:  # fmt: skip
    crop = box_rect(rect, box)
    outside = QPainterPath()
    outside.addRect(rect)
    inner = QPainterPath()
    inner.addRect(crop)
    p.fillPath(outside.subtracted(inner), QColor(8, 10, 14, 150))
    if proposal != box:  # where the AI's box was, for comparison
        p.setPen(QPen(PROPOSAL, 1.5, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(box_rect(rect, proposal))
    if dragging:  # rule-of-thirds guides while the box changes
        p.setPen(QPen(QColor(255, 255, 255, 90), 1))
        for k in (1, 2):
            x = crop.x() + crop.width() * k / 3
            y = crop.y() + crop.height() * k / 3
            p.drawLine(QPointF(x, crop.top()), QPointF(x, crop.bottom()))
            p.drawLine(QPointF(crop.left(), y), QPointF(crop.right(), y))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(QColor(0, 0, 0, 170), 4))
    p.drawRect(crop)
    p.setPen(QPen(ACCENT if focused else QColor("#f2f4f8"), 2))
    p.drawRect(crop)
    size = HANDLE_PX if focused else 6
    p.setPen(QPen(QColor(0, 0, 0, 200), 1))
    p.setBrush(QColor("#ffffff") if focused else QColor("#c9ced8"))
    xs = (crop.left(), crop.center().x(), crop.right())
    ys = (crop.top(), crop.center().y(), crop.bottom())
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            if i == 1 and j == 1:
                continue
            if not focused and (i == 1 or j == 1):
                continue  # only the corners on the images without focus
            p.drawRect(QRectF(x - size / 2, y - size / 2, size, size))


def paint_caption(p: QPainter, fm: QFontMetrics, cell: QRectF, index: int, tile: Tile,
                  im: ImageCrop, *, focused: bool, header_h: int, footer_h: int) -> None:  # fmt: skip
    # Header: number badge, file name, where the starting box came from.
    badge = QRectF(cell.x() + 10, cell.y() + 7, 22, 22)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(ACCENT if focused else QColor("#3a4250"))
    p.drawEllipse(badge)
    bold = QFont(p.font())
    bold.setBold(True)
    p.setFont(bold)
    p.setPen(QColor("#ffffff"))
    p.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), str(index + 1))
    tag = tile.tag
    if tag and not tile.error and im.box != im.proposal:
        tag = "edited · AI box dashed" if tag.startswith("AI") else "edited"
    tag_w = fm.horizontalAdvance(tag) + 12 if tag else 0
    name_rect = QRectF(badge.right() + 8, cell.y() + 4, cell.width() - 58 - tag_w, header_h - 8)
    bold_fm = QFontMetrics(bold)
    name = bold_fm.elidedText(tile.name, Qt.TextElideMode.ElideMiddle, int(name_rect.width()))
    p.drawText(name_rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), name)
    p.setFont(_plain(bold))
    if tag:
        p.setPen(PROPOSAL if "AI" in tag else MUTED)
        tag_rect = QRectF(cell.right() - tag_w - 8, cell.y() + 4, tag_w, header_h - 8)
        p.drawText(tag_rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight),
                   tag)  # fmt: skip
    # Footer: the crop's pixel size, then the warning (the banner shows it in full).
    line_h = fm.height() + 4
    top = cell.bottom() - footer_h + 4
    width = int(cell.width() - 24)
    if not tile.error:
        left, upper, right, lower = im.box.to_pixels(im.width, im.height)
        text = (
            f"crop {right - left} × {lower - upper} px  of  {im.width} × {im.height}"
            f"   ·   x {im.box.x1:.0%}  y {im.box.y1:.0%}  w {im.box.width:.0%}  h {im.box.height:.0%}"
        )
        p.setPen(QColor("#d9dde4"))
        p.drawText(QRectF(cell.x() + 12, top, width, line_h), int(Qt.AlignmentFlag.AlignLeft),
                   fm.elidedText(text, Qt.TextElideMode.ElideRight, width))  # fmt: skip
    # (an error is written across the picture's place already)
    note, color = ("⚠ " + tile.warning, WARNING) if tile.warning else (tile.info, MUTED)
    if note and not tile.error:
        p.setPen(color)
        p.drawText(QRectF(cell.x() + 12, top + line_h, width, line_h),
                   int(Qt.AlignmentFlag.AlignLeft),
                   fm.elidedText(note, Qt.TextElideMode.ElideMiddle, width))  # fmt: skip


def _plain(font: QFont) -> QFont:
    plain = QFont(font)
    plain.setBold(False)
    return plain
