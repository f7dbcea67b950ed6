"""The crop canvas's state machine: one box per image on screen, pointer and key events in.

Boxes are normalized `CropBox`es of each image as displayed (after EXIF orientation).
Geometry is done in the image's own pixel units, so an aspect ratio means the same shape
on screen and in the written file even though a normalized unit differs per axis. Every
method returns a `Change` saying what to repaint; the Qt canvas only translates events.

Pointer: a press outside the box starts a new box (kept only once it is at least
MIN_SIDE_PX on both sides, so a click never destroys the box), inside it moves the box,
near an edge or corner (tolerance per image and axis, set by the view) resizes it. Shift
while drawing or resizing with no lock keeps the shape (a square when drawing).
Positions outside the image are clamped to its edge. Keys: nudges (large with Shift,
resizing the bottom-right edges with `resize`), aspect presets (a preset takes the
orientation of the current box; `flip_orientation` turns it), lock, reset to the
starting proposal, focus moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from workbench.core import crop_geometry as geo
from workbench.core.crop_geometry import Px, clamp
from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput

NUDGE_FRACTION = 0.002  # one arrow press moves 0.2% of the image's long side (>= 1 px)
LARGE_NUDGE = 10  # with Shift
DEFAULT_TOLERANCE = 0.02  # normalized, until the view says how large a screen pixel is
PRESETS: dict[str, tuple[int, int] | None] = {
    "free": None, "1:1": (1, 1), "2:3": (2, 3), "3:4": (3, 4), "16:9": (16, 9), "original": None,
}  # fmt: skip
PRESET_ORDER = tuple(PRESETS)
WHOLE_IMAGE = CropBox(0.0, 0.0, 1.0, 1.0)


class Handle(StrEnum):
    """What a pointer position is over: a corner, an edge, the box, or outside it."""

    NW = "nw"
    N = "n"
    NE = "ne"
    E = "e"
    SE = "se"
    S = "s"
    SW = "sw"
    W = "w"
    INSIDE = "inside"
    OUTSIDE = "outside"


@dataclass(frozen=True)
class Mods:
    """Keyboard modifiers held during a pointer event (Qt-free)."""

    shift: bool = False
    ctrl: bool = False
    alt: bool = False


NO_MODS = Mods()


@dataclass(frozen=True)
class Change:
    """What an event changed: the images whose box moved, the focus, the aspect setting."""

    boxes: tuple[int, ...] = ()
    focus: bool = False
    aspect: bool = False

    @property
    def any(self) -> bool:
        return bool(self.boxes) or self.focus or self.aspect

    def __or__(self, other: Change) -> Change:
        boxes = tuple(sorted(set(self.boxes) | set(other.boxes)))
        return Change(boxes, self.focus or other.focus, self.aspect or other.aspect)


@dataclass
class ImageCrop:
    """One image on the canvas: its displayed pixel size, its box and where the box began."""

    width: int
    height: int
    proposal: CropBox = WHOLE_IMAGE
    proposal_source: str = "whole image"
    box: CropBox = field(default=WHOLE_IMAGE)
    ratio: float | None = None  # locked pixel aspect, width / height
    tolerance: tuple[float, float] = (DEFAULT_TOLERANCE, DEFAULT_TOLERANCE)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InvalidInput(
                f"An image of {self.width} x {self.height} pixels cannot be cropped."
            )
        self.proposal = self.from_px(
            geo.min_size(self.to_px(self.proposal), self.width, self.height)
        )
        self.box = self.proposal

    def to_px(self, box: CropBox) -> Px:
        return box.x1 * self.width, box.y1 * self.height, box.x2 * self.width, box.y2 * self.height

    def from_px(self, px: Px) -> CropBox:
        def norm(v: float, size: int) -> float:
            return min(1.0, max(0.0, v / size))

        x1, y1, x2, y2 = px
        return CropBox(
            norm(x1, self.width), norm(y1, self.height), norm(x2, self.width), norm(y2, self.height)
        )

    @property
    def pixel_ratio(self) -> float:
        """The box's shape in pixels, width / height."""
        x1, y1, x2, y2 = self.to_px(self.box)
        return (x2 - x1) / (y2 - y1)


@dataclass
class _Drag:
    index: int
    handle: Handle
    start: Px
    anchor: tuple[float, float]  # press point (draw) or offset into the box (move)
    shift_ratio: float | None  # the shape Shift keeps when no ratio is locked


class CropSession:
    """The boxes of the images on screen, the focused image and the aspect setting."""

    def __init__(self, images: Sequence[ImageCrop]) -> None:
        if not images:
            raise InvalidInput("There are no images to crop.")
        self.images = list(images)
        self.focus = 0
        self.preset = "free"
        self.locked = False
        self._drag: _Drag | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def boxes(self) -> list[CropBox]:
        return [im.box for im in self.images]

    @property
    def dragging(self) -> Handle | None:
        """The kind of drag in progress (OUTSIDE: drawing a new box), or None."""
        return self._drag.handle if self._drag else None

    @property
    def drag_index(self) -> int | None:
        return self._drag.index if self._drag else None

    def set_tolerance(self, index: int, tx: float, ty: float) -> None:
        """How near (normalized, per axis) an edge the pointer must be to grab it."""
        self.images[index].tolerance = (max(tx, 0.0), max(ty, 0.0))

    def hit(self, index: int, x: float, y: float) -> Handle:
        """What the normalized point (x, y) of image `index` is over."""
        im = self.images[index]
        px, py = x * im.width, y * im.height
        x1, y1, x2, y2 = im.to_px(im.box)
        # A small box keeps a grabbable middle: the tolerance never exceeds a third of it.
        tx = min(im.tolerance[0] * im.width, (x2 - x1) / 3)
        ty = min(im.tolerance[1] * im.height, (y2 - y1) / 3)
        if not (x1 - tx <= px <= x2 + tx and y1 - ty <= py <= y2 + ty):
            return Handle.OUTSIDE
        vertical = "n" if abs(py - y1) <= ty else "s" if abs(py - y2) <= ty else ""
        horizontal = "w" if abs(px - x1) <= tx else "e" if abs(px - x2) <= tx else ""
        if vertical or horizontal:
            return Handle(vertical + horizontal)
        return Handle.INSIDE

    # -- pointer ---------------------------------------------------------------------------

    def press(self, index: int, x: float, y: float, mods: Mods = NO_MODS) -> Change:
        """A button press at normalized (x, y) of image `index`: focus it and start a drag."""
        if not 0 <= index < len(self.images):
            return Change()
        change = self._set_focus(index)
        im = self.images[index]
        handle = self.hit(index, x, y)
        px, py = self._point(im, x, y)
        start = im.to_px(im.box)
        if handle is Handle.INSIDE:
            anchor = (px - start[0], py - start[1])
        else:
            anchor = (px, py)
        shift_ratio = 1.0 if handle is Handle.OUTSIDE else im.pixel_ratio
        self._drag = _Drag(index, handle, start, anchor, shift_ratio)
        return change

    def move(self, x: float, y: float, mods: Mods = NO_MODS) -> Change:
        """The pointer moved to normalized (x, y) of the pressed image while held."""
        if self._drag is None:
            return Change()
        return self._apply(self._dragged(x, y, mods))

    def release(self, x: float, y: float, mods: Mods = NO_MODS) -> Change:
        """The button went up: the drag ends where the pointer is."""
        if self._drag is None:
            return Change()
        change = self._apply(self._dragged(x, y, mods))
        self._drag = None
        return change

    def cancel_drag(self) -> Change:
        """Abandon the drag in progress: the box goes back to where it was at the press."""
        if self._drag is None:
            return Change()
        drag, self._drag = self._drag, None
        return self._put(drag.index, drag.start)

    def _point(self, im: ImageCrop, x: float, y: float) -> tuple[float, float]:
        return clamp(x * im.width, 0.0, float(im.width)), clamp(
            y * im.height, 0.0, float(im.height)
        )

    def _dragged(self, x: float, y: float, mods: Mods) -> Px:
        d = self._drag
        assert d is not None
        im = self.images[d.index]
        px, py = self._point(im, x, y)
        ratio = im.ratio if im.ratio is not None else (d.shift_ratio if mods.shift else None)
        if d.handle is Handle.OUTSIDE:
            return geo.drawn(d.anchor, px, py, ratio) or d.start  # degenerate: box as it was
        if d.handle is Handle.INSIDE:
            return geo.moved(d.start, d.anchor, px, py, im.width, im.height)
        if len(d.handle) == 2:
            return geo.corner_dragged(d.handle, d.start, px, py, ratio, im.width, im.height)
        return geo.edge_dragged(d.handle, d.start, px, py, ratio, im.width, im.height)

    def _apply(self, px: Px) -> Change:
        assert self._drag is not None
        return self._put(self._drag.index, px)

    def _put(self, index: int, px: Px) -> Change:
        im = self.images[index]
        box = im.from_px(px)
        if box == im.box:
            return Change()
        im.box = box
        return Change(boxes=(index,))

    # -- keys ------------------------------------------------------------------------------

    def nudge(self, dx: int, dy: int, *, large: bool = False, resize: bool = False) -> Change:
        """Move the focused box (or, with `resize`, its right/bottom edges) by arrow steps."""
        if self._drag is not None:
            return Change()
        im = self.images[self.focus]
        step = max(1.0, round(max(im.width, im.height) * NUDGE_FRACTION)) * (
            LARGE_NUDGE if large else 1
        )
        px = geo.nudged(
            im.to_px(im.box), dx, dy, step, im.ratio, im.width, im.height, resize=resize
        )
        return self._put(self.focus, px)

    def set_aspect(self, preset: str) -> Change:
        """Apply an aspect preset to every image on screen; any but "free" locks it."""
        if preset not in PRESETS:
            raise InvalidInput(f"Unknown aspect {preset!r}; choose one of {', '.join(PRESETS)}.")
        self.preset = preset
        self.locked = preset != "free"
        change = Change(aspect=True)
        for i, im in enumerate(self.images):
            ratio = self._preset_ratio(im, preset)
            im.ratio = ratio
            if ratio is not None:
                change = change | self._put(
                    i, geo.with_ratio(im.to_px(im.box), ratio, im.width, im.height)
                )
        return change

    @staticmethod
    def _preset_ratio(im: ImageCrop, preset: str) -> float | None:
        if preset == "original":
            return im.width / im.height
        parts = PRESETS[preset]
        if parts is None:
            return None
        r = parts[0] / parts[1]
        # The preset takes the orientation of the box it is applied to.
        return max(r, 1 / r) if im.pixel_ratio >= 1 else min(r, 1 / r)

    def next_aspect(self, step: int = 1) -> Change:
        """The next (or previous) preset in PRESET_ORDER."""
        i = PRESET_ORDER.index(self.preset)
        return self.set_aspect(PRESET_ORDER[(i + step) % len(PRESET_ORDER)])

    def toggle_lock(self) -> Change:
        """Unlock the aspect, or lock it: the chosen preset again, else each box's own shape."""
        if self.locked:
            self.locked = False
            for im in self.images:
                im.ratio = None
            return Change(aspect=True)
        if self.preset != "free":
            return self.set_aspect(self.preset)
        self.locked = True
        for im in self.images:
            im.ratio = im.pixel_ratio
        return Change(aspect=True)

    def flip_orientation(self) -> Change:
        """Turn every locked shape between portrait and landscape (2:3 <-> 3:2)."""
        change = Change()
        for i, im in enumerate(self.images):
            if im.ratio is not None and abs(im.ratio - 1.0) > 1e-9:
                im.ratio = 1.0 / im.ratio
                px = geo.with_ratio(im.to_px(im.box), im.ratio, im.width, im.height)
                change = change | self._put(i, px) | Change(aspect=True)
        return change

    def reset(self, index: int | None = None) -> Change:
        """Put the focused (or given) image's box back to its starting proposal, exactly."""
        i = self.focus if index is None else index
        self._drag = None
        im = self.images[i]
        if im.box == im.proposal:
            return Change()
        im.box = im.proposal
        return Change(boxes=(i,))

    def focus_next(self, step: int = 1) -> Change:
        """Move the focus to the next (step 1) or previous (step -1) image, wrapping."""
        return self._set_focus((self.focus + step) % len(self.images))

    def set_focus(self, index: int) -> Change:
        if not 0 <= index < len(self.images):
            return Change()
        return self._set_focus(index)

    def _set_focus(self, index: int) -> Change:
        if index == self.focus:
            return Change()
        self.focus = index
        return Change(focus=True)
