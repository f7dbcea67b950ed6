"""What the plates view paints: the crop, the plate text with its confidences, recent crops."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.core.errors import WorkbenchError
from workbench.core.images import load_image
from workbench.core.plates import PlateLabel

DISPLAY_SIDE = 1024  # crops are small; a stray photo is decoded no larger than this
GOOD, FAIR, POOR = QColor(108, 195, 138), QColor(230, 180, 70), QColor(235, 95, 85)
TEXT, DIM = QColor(240, 242, 246), QColor(150, 156, 168)


def confidence_colour(confidence: float) -> QColor:
    """Green from 0.9, amber from 0.6, red below: how far to trust a read character."""
    return GOOD if confidence >= 0.9 else FAIR if confidence >= 0.6 else POOR


class CropImages:
    """Decoded crops as QImages, the most recent few kept in memory."""

    def __init__(self, keep: int = 64) -> None:
        self._cache: OrderedDict[str, QImage | str] = OrderedDict()
        self.keep = keep

    def get(self, path: Path) -> QImage | str:
        """The crop as a QImage, or a sentence saying why it cannot be shown."""
        key = str(path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            image = load_image(path, max_side=DISPLAY_SIDE)
            data = image.tobytes()
            value: QImage | str = QImage(data, image.width, image.height, 3 * image.width,
                                         QImage.Format.Format_RGB888).copy()  # fmt: skip
        except WorkbenchError as exc:
            value = exc.message
        self._cache[key] = value
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return value


class CropView(QWidget):
    """The crop, scaled up to fill the space: pixel-sharp (nearest) or smooth."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plateCrop")
        self.image: QImage | None = None
        self.message = ""
        self.nearest = True
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 100)

    def show_crop(self, value: QImage | str | None) -> None:
        self.image = value if isinstance(value, QImage) else None
        self.message = value if isinstance(value, str) else ""
        self.update()

    def set_nearest(self, nearest: bool) -> None:
        self.nearest = nearest
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(720, 260)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        area = QRectF(self.rect()).adjusted(8, 8, -8, -8)
        if self.image is not None and not self.image.isNull():
            size = self.image.size().scaled(
                area.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio
            )
            target = QRectF(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not self.nearest)
            p.drawImage(target, self.image)
            return
        p.setPen(QPen(DIM, 1, Qt.PenStyle.DashLine))
        p.drawRoundedRect(area, 6, 6)
        p.setPen(TEXT if self.message else DIM)
        flags = int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap)
        p.drawText(area.adjusted(16, 16, -16, -16), flags, self.message or "No crop")


class PlateTextField(QWidget):
    """The plate text in large letters, like an input field the view types into.

    An untouched pre-label is drawn on a highlight (typing replaces it), each character
    coloured by the OCR's confidence in it; typed text is drawn plain, with a caret.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plateText")
        self.text = ""
        self.char_confidences: list[float] = []
        self.replaceable = False
        self.flagged = False
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPixelSize(44)
        font.setBold(True)
        self.setFont(font)
        self.setMinimumHeight(72)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_state(self, text: str, char_confidences: Sequence[float], *, replaceable: bool,
                  flagged: bool) -> None:  # fmt: skip
        self.text, self.replaceable, self.flagged = text, replaceable, flagged
        fits = replaceable and len(char_confidences) == len(text)
        self.char_confidences = list(char_confidences) if fits else []
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(520, 72)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        box = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        p.setPen(QPen(POOR if self.flagged else QColor(70, 78, 92), 2))
        p.setBrush(QColor(24, 27, 32))
        p.drawRoundedRect(box, 8, 8)
        metrics = QFontMetricsF(self.font())
        x = box.left() + 16
        baseline = box.center().y() + (metrics.ascent() - metrics.descent()) / 2
        if self.replaceable and self.text:
            width = metrics.horizontalAdvance(self.text)
            p.fillRect(
                QRectF(x - 4, box.top() + 8, width + 8, box.height() - 16), QColor(52, 80, 122)
            )
        for i, ch in enumerate(self.text):
            colour = confidence_colour(self.char_confidences[i]) if self.char_confidences else TEXT
            p.setPen(colour)
            p.drawText(x, baseline, ch)
            x += metrics.horizontalAdvance(ch)
        if not self.replaceable:
            p.fillRect(QRectF(x + 2, box.top() + 12, 3, box.height() - 24), TEXT)


class RecentStrip(QWidget):
    """The last few crops before the current one, each with the label it got."""

    def __init__(
        self, images: CropImages, parent: QWidget | None = None, *, count: int = 6
    ) -> None:
        super().__init__(parent)
        self.setObjectName("recentStrip")
        self.images = images
        self.count = count
        self._cells: list[tuple[QLabel, QLabel]] = []
        self._shown: object = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        for i in range(count):
            cell = QWidget(self)
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            picture, caption = QLabel(cell), QLabel(cell)
            picture.setFixedSize(120, 44)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setObjectName(f"recentLabel{i}")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(picture)
            column.addWidget(caption)
            row.addWidget(cell)
            self._cells.append((picture, caption))
        row.addStretch(1)

    def set_items(self, items: Sequence[tuple[Path, PlateLabel | None]], flagged: set[str]) -> None:
        """Show `items` (oldest first); `flagged` names the paths whose labels look like signs."""
        items = list(items)[-self.count :]
        if (items, flagged) == self._shown:
            return  # typing repaints often; the strip changes only when a crop does
        self._shown = (items, set(flagged))
        for i, (picture, caption) in enumerate(self._cells):
            if i >= len(items):
                picture.clear()
                caption.setText("")
                continue
            path, label = items[i]
            value = self.images.get(path)
            if isinstance(value, QImage):
                picture.setPixmap(QPixmap.fromImage(value).scaled(
                    picture.size(), Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))  # fmt: skip
            else:
                picture.setText("unreadable")
            text = "—" if label is None else ("skipped" if label.skipped else label.text)
            caption.setText(text)
            bad = str(path) in flagged
            caption.setStyleSheet(f"color: {POOR.name() if bad else DIM.name()};")
