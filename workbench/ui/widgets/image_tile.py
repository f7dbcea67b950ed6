"""One image of a group: the picture (or a placeholder saying why not), name, size, pixels."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget


class ImageView(QWidget):
    """Paints an image scaled to fit, centred; or a placeholder text in a dashed box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._text = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 90)

    def set_image(self, image: QImage | None, text: str = "") -> None:
        self._image, self._text = image, text
        self.update()

    @property
    def text(self) -> str:
        """The placeholder's text ("" while an image is shown)."""
        return self._text

    def sizeHint(self) -> QSize:
        return QSize(320, 240)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        area = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        if self._image is not None and not self._image.isNull():
            size = self._image.size().scaled(
                area.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio
            )
            target = QRectF(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, self._image)
            return
        p.setPen(QPen(QColor(120, 126, 138), 1, Qt.PenStyle.DashLine))
        p.drawRoundedRect(area, 6, 6)
        p.setPen(QColor(170, 176, 188))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        p.drawText(area.adjusted(12, 12, -12, -12), int(flags), self._text)


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" instead of widening its parent."""

    def __init__(self, parent: QWidget | None = None, *, object_name: str = "") -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self._full = ""
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    @property
    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._fit()

    def minimumSizeHint(self) -> QSize:
        return QSize(10, super().minimumSizeHint().height())

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit()

    def _fit(self) -> None:
        width = max(10, self.contentsRect().width())
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, width))


class ImageTile(QFrame):
    """A group member as the overview shows it; `state` is "empty", "loading", "image" or "error"."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageTile")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.index = index
        self.state = "empty"
        self.badge = QLabel(str(index + 1), self)
        self.badge.setObjectName("tileBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setFixedSize(26, 26)
        self.view = ImageView(self)
        self.name_label = ElidedLabel(self, object_name=f"tileName{index}")
        self.detail_label = ElidedLabel(self, object_name="tileDetail")
        self.tag_label = ElidedLabel(self, object_name="tileTag")
        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.name_label)
        layout.addWidget(self.detail_label)
        layout.addWidget(self.tag_label)

    @property
    def message(self) -> str:
        """What the placeholder says ("Loading…", or why the image cannot be shown)."""
        return self.view.text

    @property
    def file_name(self) -> str:
        """The file name this tile shows (not elided)."""
        return self.name_label.full_text

    def show_file(self, name: str, detail: str, tag: str = "", *, chosen: bool = False) -> None:
        """Name and details at once; the picture follows with `show_image` or `show_error`.

        `chosen` marks the image the user kept (a highlighted frame and tag).
        """
        for widget in (self, self.tag_label):
            if widget.property("chosen") != chosen:
                widget.setProperty("chosen", chosen)
                widget.style().unpolish(widget)
                widget.style().polish(widget)
        self.name_label.set_full_text(name)
        self.detail_label.set_full_text(detail)
        self.tag_label.set_full_text(tag)
        self.tag_label.setVisible(bool(tag))
        self.state = "loading"
        self.view.set_image(None, "Loading…")

    def show_image(self, image: QImage, detail: str | None = None) -> None:
        self.state = "image"
        if detail is not None:
            self.detail_label.set_full_text(detail)
        self.view.set_image(image)

    def show_error(self, reason: str) -> None:
        self.state = "error"
        self.view.set_image(None, reason)

    def caption_height(self) -> int:
        """Height of everything but the picture: badge, name, details, tag, margins."""
        layout = self._layout
        parts = [self.badge, self.name_label, self.detail_label, self.tag_label]
        margins = layout.contentsMargins()
        return (
            sum(w.sizeHint().height() for w in parts)
            + layout.spacing() * len(parts)
            + margins.top()
            + margins.bottom()
            + 8  # the picture's own inset
        )
