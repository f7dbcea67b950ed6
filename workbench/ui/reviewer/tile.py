"""One image of the group under review, painted in layers: frame, picture, AI crop, marks.

The tile keeps only what it paints: the TileModel (texts and marks from the state
machine), the prepared picture and, while the loupe is held, the original and the point
it is centred on. Its `state`, `placeholder_text` and `model` say what is on screen.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from workbench.ui.reviewer import paint
from workbench.ui.reviewer.geometry import fit, loupe_source
from workbench.ui.reviewer.presentation import Mark, TileModel

BACKGROUND = QColor(29, 32, 38)
PAD = 8
CAPTION_LINES = 3


def header_height(fm: QFontMetrics) -> int:
    """Height of the row above the picture: the image's keys and the AI's pick."""
    return fm.height() + 12


def caption_height(fm: QFontMetrics) -> int:
    """Height of the three caption lines under the picture (name, details, choice)."""
    return CAPTION_LINES * (fm.height() + 3) + 6


def picture_size(tile_w: float, tile_h: float, fm: QFontMetrics) -> tuple[int, int]:
    """The picture area (logical pixels) of a tile of that size."""
    return (
        max(1, int(tile_w - 2 * PAD)),
        max(1, int(tile_h - 2 * PAD - header_height(fm) - caption_height(fm))),
    )


def problem_text(problem: str) -> str:
    """The placeholder's sentence for an image that cannot be shown, and what to do."""
    text = problem if problem.startswith("Cannot show") else f"Cannot show this image: {problem}"
    return f"{text}\n\nChoose another image, or reject the group (X)."


class ReviewTile(QWidget):
    """Paints one image; `hovered(index, x, y)` reports the mouse over the picture (0-1)."""

    hovered = Signal(int, float, float)

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"reviewTile{index}")
        self.index = index
        self.model: TileModel | None = None
        self._picture: QImage | None = None
        self._loupe: tuple[float, float] | None = None
        self._original: QImage | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._name_font = QFont(self.font())
        self._name_font.setBold(True)
        self._small_font = QFont(self.font())
        self._small_font.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.9))
        self._small_font.setBold(True)

    # -- what is on screen ---------------------------------------------------------------

    @property
    def state(self) -> str:
        """ "error" (placeholder with a reason), "image", "loading", or "empty"."""
        if self.model is None:
            return "empty"
        if self.model.problem:
            return "error"
        return "image" if self._picture is not None else "loading"

    @property
    def placeholder_text(self) -> str:
        """What the placeholder says ("" while a picture is shown)."""
        if self.model is not None and self.model.problem:
            return problem_text(self.model.problem)
        return "Loading…" if self.state == "loading" else ""

    @property
    def picture(self) -> QImage | None:
        return self._picture

    @property
    def loupe_active(self) -> bool:
        return self._loupe is not None

    @property
    def loupe_point(self) -> tuple[float, float] | None:
        """The relative point the 100% view is centred on (None: the loupe is off)."""
        return self._loupe

    def picture_rect(self) -> QRectF:
        fm = self.fontMetrics()
        w, h = picture_size(self.width(), self.height(), fm)
        return QRectF(PAD, PAD + header_height(fm), w, h)

    def image_rect(self) -> QRectF | None:
        """Where the picture is drawn (it fills the picture area keeping its aspect)."""
        if self._picture is None:
            return None
        area = self.picture_rect()
        size = self._picture.deviceIndependentSize()
        w, h = size.width(), size.height()
        fits = w <= area.width() + 0.5 and h <= area.height() + 0.5
        if not (fits and (area.width() - w < 1.5 or area.height() - h < 1.5)):
            # not prepared for this area (a resize): fill it, keeping the aspect
            w, h = fit((round(area.width()), round(area.height())), (round(w), round(h)))
        r = QRectF(0, 0, w, h)
        r.moveCenter(area.center())
        return QRectF(round(r.x()), round(r.y()), w, h)

    # -- what the view sets --------------------------------------------------------------

    def show_model(self, model: TileModel, picture: QImage | None) -> None:
        self.model = model
        self._picture = picture
        self.update()

    def set_picture(self, picture: QImage | None) -> None:
        self._picture = picture
        self.update()

    def set_loupe(self, point: tuple[float, float] | None, original: QImage | None) -> None:
        """Show the image at 100% around `point` (None: back to the fitted picture)."""
        self._loupe, self._original = point, original
        self.update()

    # -- events --------------------------------------------------------------------------

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        r = self.picture_rect()
        pos = event.position()
        x = min(max((pos.x() - r.left()) / max(r.width(), 1.0), 0.0), 1.0)
        y = min(max((pos.y() - r.top()) / max(r.height(), 1.0), 0.0), 1.0)
        self.hovered.emit(self.index, x, y)
        super().mouseMoveEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        m = self.model
        if m is None:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour, width = self._frame_colour(m)
        paint.paint_frame(p, QRectF(self.rect()), colour, width)
        area = self.picture_rect()
        if m.problem:
            paint.paint_placeholder(p, area, problem_text(m.problem), problem=True)
        elif self._loupe is not None and (self._original or self._picture) is not None:
            self._paint_loupe(p, area)
        elif self._picture is not None:
            self._paint_picture(p, m)
        else:
            paint.paint_placeholder(p, area, "Loading…", problem=False)
        top = QPointF(area.left() + 2, PAD + 2)
        if m.keys:
            paint.paint_pill(p, top, m.keys, self._small_font,
                             fill=QColor(58, 66, 80), text=paint.TEXT)  # fmt: skip
        if m.ai_label:
            paint.paint_pill(p, QPointF(area.right() - 2, PAD + 2), m.ai_label, self._small_font,
                             fill=paint.AI, text=QColor(30, 26, 16), align_right=True)  # fmt: skip
        self._paint_caption(p, m, area)

    # -- layers --------------------------------------------------------------------------

    @staticmethod
    def _frame_colour(m: TileModel) -> tuple[QColor | None, float]:
        if m.mark_kind in (Mark.KEEP, Mark.CROP):
            return paint.MARK_COLOURS[m.mark_kind], 3.0
        if m.mark_kind == Mark.REJECT:
            return paint.REJECT, 2.0
        if m.ai_pick:
            return paint.AI, 2.0
        return None, 1.0

    def _paint_picture(self, p: QPainter, m: TileModel) -> None:
        assert self._picture is not None
        target = self.image_rect()
        assert target is not None
        size = self._picture.deviceIndependentSize()
        if abs(size.width() - target.width()) < 1 and abs(size.height() - target.height()) < 1:
            p.drawImage(target.topLeft(), self._picture)  # prepared at this size: a copy
        else:  # the window was resized: a quick stand-in until the prepared size arrives
            p.drawImage(target, self._picture)
        if m.mark_kind in (Mark.AWAY, Mark.REJECT):
            p.fillRect(target, paint.DIM)
        if m.crop is not None:
            paint.paint_crop(p, target, m.crop, self._small_font)

    def _paint_loupe(self, p: QPainter, area: QRectF) -> None:
        """The image at 100% (one image pixel per device pixel) around the loupe point."""
        assert self._loupe is not None
        m = self.model
        source = self._original if self._original is not None else self._picture
        assert source is not None and m is not None
        full = (
            (self._original.width(), self._original.height())
            if self._original is not None
            else (m.width or source.width(), m.height or source.height())
        )
        dpr = self.devicePixelRatioF()
        view = (area.width() * dpr, area.height() * dpr)  # image pixels seen at 100%
        x, y = loupe_source(self._loupe, full, view)
        scale = source.width() / max(full[0], 1)  # source pixels per image pixel
        visible = QRectF(x, y, view[0], view[1]).intersected(QRectF(0, 0, full[0], full[1]))
        target = QRectF(
            area.left() + (visible.left() - x) / dpr,
            area.top() + (visible.top() - y) / dpr,
            visible.width() / dpr,
            visible.height() / dpr,
        )
        src = QRectF(visible.left() * scale, visible.top() * scale,
                     visible.width() * scale, visible.height() * scale)  # fmt: skip
        p.save()
        p.setClipRect(area)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale != 1.0)
        p.drawImage(target, source, src)
        p.restore()
        label = "100%" if self._original is not None else "100% · loading the original…"
        paint.paint_pill(p, area.bottomRight() + QPointF(-6, -30), label, self._small_font,
                         fill=QColor(20, 22, 26, 210), text=paint.TEXT, align_right=True)  # fmt: skip

    def _paint_caption(self, p: QPainter, m: TileModel, area: QRectF) -> None:
        fm = self.fontMetrics()
        line = fm.height() + 3
        x, w = area.left() + 2, area.width() - 4
        y = area.bottom() + 6
        rows = (
            (m.name, self._name_font, paint.TEXT),
            (m.detail, self.font(), paint.MUTED),
            (m.mark, self._name_font, paint.MARK_COLOURS.get(m.mark_kind, paint.MUTED)),
        )
        for text, font, colour in rows:
            if text:
                p.setFont(font)
                p.setPen(colour)
                elided = QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideMiddle, int(w))
                p.drawText(QRectF(x, y, w, line), int(Qt.AlignmentFlag.AlignHCenter), elided)
            y += line

    def sizeHint(self) -> QSize:
        return QSize(320, 280)
