"""The key-map overlay: every key of the current view and of the window, over the view."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

Section = tuple[str, Sequence[tuple[str, str]]]  # (title, [(keys, what they do)])


class KeyMapOverlay(QWidget):
    """A translucent panel drawn over its parent; any key or click closes it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._host = parent
        self.setObjectName("keyMapOverlay")
        self._sections: list[Section] = []
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        parent.installEventFilter(self)
        self.hide()

    def set_sections(self, sections: Sequence[Section]) -> None:
        self._sections = list(sections)
        self.update()

    def lines(self) -> list[str]:
        """The overlay's text, one line per key (what a screen reader or a test reads)."""
        return [f"{keys}: {what}" for _, rows in self._sections for keys, what in rows]

    def toggle(self) -> None:
        self.setVisible(not self.isVisible())
        if self.isVisible():
            self.setGeometry(self._host.rect())
            self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._host and event.type() == QEvent.Type.Resize:
            self.setGeometry(self._host.rect())
        return False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(10, 12, 16, 200))
        title_font, key_font, text_font = QFont(self.font()), QFont(self.font()), QFont(self.font())
        title_font.setPointSizeF(self.font().pointSizeF() * 1.25)
        title_font.setBold(True)
        key_font.setBold(True)
        line_h = QFontMetrics(text_font).height() + 8
        rows = sum(len(r) + 2 for _, r in self._sections) + 2
        box_w = min(self.width() - 40, 640)
        box_h = min(self.height() - 40, rows * line_h + 20)
        box = QRectF((self.width() - box_w) / 2, (self.height() - box_h) / 2, box_w, box_h)
        p.setPen(QColor(90, 100, 120))
        p.setBrush(QColor(32, 36, 44, 240))
        p.drawRoundedRect(box, 10, 10)
        x_key, x_text = box.left() + 28, box.left() + 28 + box_w * 0.34
        y = box.top() + 18
        p.setPen(QColor(235, 238, 245))
        p.setFont(title_font)
        p.drawText(QRectF(box.left(), y, box_w, line_h), Qt.AlignmentFlag.AlignHCenter, "Keys")
        y += line_h * 1.3
        for title, rows_ in self._sections:
            p.setFont(key_font)
            p.setPen(QColor(140, 180, 255))
            p.drawText(QRectF(x_key, y, box_w, line_h), Qt.AlignmentFlag.AlignLeft, title)
            y += line_h
            for keys, what in rows_:
                p.setPen(QColor(255, 214, 120))
                p.setFont(key_font)
                p.drawText(
                    QRectF(x_key + 12, y, x_text - x_key, line_h), Qt.AlignmentFlag.AlignLeft, keys
                )
                p.setPen(QColor(225, 228, 235))
                p.setFont(text_font)
                p.drawText(
                    QRectF(x_text, y, box.right() - x_text - 20, line_h),
                    Qt.AlignmentFlag.AlignLeft,
                    what,
                )
                y += line_h
            y += line_h * 0.5
        p.setPen(QColor(150, 155, 165))
        p.setFont(text_font)
        p.drawText(QRectF(box.left(), box.bottom() - line_h - 6, box_w, line_h),
                   Qt.AlignmentFlag.AlignHCenter, "Press any key to close")  # fmt: skip
