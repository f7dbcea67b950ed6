"""The reviewer's status line: where the user is, the AI's agreement, and the last message.

Painted rather than laid out from labels, so a key press that changes its text repaints
two lines and never triggers a relayout of the view.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor(35, 39, 46)
TEXT = QColor(236, 239, 244)
MUTED = QColor(154, 163, 178)
INFO = QColor(108, 195, 138)
WARNING = QColor(240, 184, 72)
MESSAGE_MS = 15_000  # a message stays this long unless another replaces it


class StatusLine(QWidget):
    """Two painted rows: progress and message, then the group's reason and models."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewStatus")
        self.progress = ""
        self.detail = ""
        self.message = ""
        self.warning = False
        self._bold = QFont(self.font())
        self._bold.setBold(True)
        line = self.fontMetrics().height()
        self.setFixedHeight(2 * line + 22)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clear_message)

    def set_text(self, progress: str, detail: str) -> None:
        if (progress, detail) != (self.progress, self.detail):
            self.progress, self.detail = progress, detail
            self.update()

    def show_message(self, text: str, *, warning: bool = False) -> None:
        self.message, self.warning = text, warning
        self._timer.start(MESSAGE_MS)
        self.update()

    def clear_message(self) -> None:
        self._timer.stop()
        if self.message:
            self.message = ""
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        p.setPen(QColor(48, 53, 62))
        p.drawLine(0, self.height() - 1, self.width(), self.height() - 1)
        line = self.fontMetrics().height()
        left, width = 12.0, self.width() - 24.0
        top = QRectF(left, 8, width, line + 2)
        p.setFont(self._bold)
        p.setPen(TEXT)
        fm_bold = p.fontMetrics()
        progress_w = int(width)
        if self.message:
            progress_w = min(fm_bold.horizontalAdvance(self.progress) + 4, int(width * 0.62))
        p.drawText(top, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                   fm_bold.elidedText(self.progress, Qt.TextElideMode.ElideRight, progress_w))  # fmt: skip
        if self.message:
            room = int(width - min(progress_w, width) - 24)
            p.setPen(WARNING if self.warning else INFO)
            text = fm_bold.elidedText(self.message, Qt.TextElideMode.ElideRight, max(room, 10))
            p.drawText(top, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        p.setFont(self.font())
        p.setPen(MUTED)
        second = QRectF(left, 8 + line + 4, width, line + 2)
        elided = self.fontMetrics().elidedText(self.detail, Qt.TextElideMode.ElideRight, int(width))
        p.drawText(second, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), elided)
