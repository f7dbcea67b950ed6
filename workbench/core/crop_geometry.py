"""Box geometry of the crop canvas, in an image's own pixel units (pure functions).

A box is `(x1, y1, x2, y2)` in pixels of the image as displayed. Ratios are pixel
width / height, so a locked shape is the same on screen and in the written file.
Every function keeps boxes inside `[0, width] x [0, height]` and at least MIN_SIDE_PX
on each side.
"""

from __future__ import annotations

MIN_SIDE_PX = 4.0

Px = tuple[float, float, float, float]  # x1, y1, x2, y2


def clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def min_size(px: Px, width: int, height: int) -> Px:
    """The box grown about its centre to at least MIN_SIDE_PX a side (within the image)."""
    x1, y1, x2, y2 = px
    out = []
    for lo, hi, size in ((x1, x2, width), (y1, y2, height)):
        side = min(float(size), max(hi - lo, MIN_SIDE_PX))
        start = clamp((lo + hi) / 2 - side / 2, 0.0, size - side)
        out.append((start, start + side))
    (nx1, nx2), (ny1, ny2) = out
    return nx1, ny1, nx2, ny2


def fit(w: float, h: float, ratio: float, max_w: float, max_h: float) -> tuple[float, float]:
    """The largest (w, h) of `ratio` inside w x h, at least MIN_SIDE_PX, within the limits."""
    if w > h * ratio:
        w = h * ratio
    else:
        h = w / ratio
    if w < MIN_SIDE_PX:
        w, h = MIN_SIDE_PX, MIN_SIDE_PX / ratio
    if h < MIN_SIDE_PX:
        w, h = MIN_SIDE_PX * ratio, MIN_SIDE_PX
    if w > max_w:
        w, h = max_w, max_w / ratio
    if h > max_h:
        w, h = max_h * ratio, max_h
    return w, h


def with_ratio(px: Px, ratio: float, width: int, height: int) -> Px:
    """The box reshaped to `ratio` about its centre, keeping its area where the image allows."""
    x1, y1, x2, y2 = px
    area = (x2 - x1) * (y2 - y1)
    w, h = fit((area * ratio) ** 0.5, (area / ratio) ** 0.5, ratio, float(width), float(height))
    cx = clamp((x1 + x2) / 2, w / 2, width - w / 2)
    cy = clamp((y1 + y2) / 2, h / 2, height - h / 2)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def moved(start: Px, offset: tuple[float, float], px: float, py: float, width: int,
          height: int) -> Px:  # fmt: skip
    """The box moved so that the grabbed point (`offset` into it) is at (px, py), inside."""
    x1, y1, x2, y2 = start
    w, h = x2 - x1, y2 - y1
    nx = clamp(px - offset[0], 0.0, width - w)
    ny = clamp(py - offset[1], 0.0, height - h)
    return nx, ny, nx + w, ny + h


def drawn(anchor: tuple[float, float], px: float, py: float, ratio: float | None) -> Px | None:
    """The box drawn from the press point to (px, py), or None while it is degenerate."""
    ax, ay = anchor
    w, h = abs(px - ax), abs(py - ay)
    if ratio is not None:
        w, h = (h * ratio, h) if w > h * ratio else (w, w / ratio)
    if w < MIN_SIDE_PX or h < MIN_SIDE_PX:
        return None  # a click, or a line
    sx = 1.0 if px >= ax else -1.0
    sy = 1.0 if py >= ay else -1.0
    xs, ys = sorted((ax, ax + sx * w)), sorted((ay, ay + sy * h))
    return xs[0], ys[0], xs[1], ys[1]


def corner_dragged(handle: str, start: Px, px: float, py: float, ratio: float | None,
                   width: int, height: int) -> Px:  # fmt: skip
    """The box with corner `handle` ("nw", "ne", "sw", "se") at (px, py); the opposite stays."""
    x1, y1, x2, y2 = start
    west, north = "w" in handle, "n" in handle
    ax, sx = (x2, -1.0) if west else (x1, 1.0)
    ay, sy = (y2, -1.0) if north else (y1, 1.0)
    max_w = ax if west else width - ax
    max_h = ay if north else height - ay
    # The box never turns inside out: past the opposite corner it stays MIN_SIDE_PX wide.
    w = clamp(sx * (px - ax), MIN_SIDE_PX, max(max_w, MIN_SIDE_PX))
    h = clamp(sy * (py - ay), MIN_SIDE_PX, max(max_h, MIN_SIDE_PX))
    if ratio is not None:
        w, h = fit(w, h, ratio, max_w, max_h)
    xs, ys = sorted((ax, ax + sx * w)), sorted((ay, ay + sy * h))
    return xs[0], ys[0], xs[1], ys[1]


def edge_dragged(handle: str, start: Px, px: float, py: float, ratio: float | None,
                 width: int, height: int) -> Px:  # fmt: skip
    """The box with edge `handle` ("n", "e", "s", "w") at the pointer.

    With a ratio the other side follows, centred on the box, shifted to stay inside.
    """
    x1, y1, x2, y2 = start
    horizontal = handle in ("e", "w")
    if horizontal:
        lo, hi, p, size, o_lo, o_hi, o_size = x1, x2, px, width, y1, y2, height
    else:
        lo, hi, p, size, o_lo, o_hi, o_size = y1, y2, py, height, x1, x2, width
    grows_up = handle in ("e", "s")  # the far edge moves
    if grows_up:
        hi = clamp(p, lo + MIN_SIDE_PX, max(float(size), lo + MIN_SIDE_PX))
    else:
        lo = clamp(p, min(0.0, hi - MIN_SIDE_PX), hi - MIN_SIDE_PX)
    if ratio is not None:
        r = ratio if horizontal else 1.0 / ratio  # this side / the other side
        other = (hi - lo) / r
        if other > o_size:  # the other side would leave the image: shorten this one
            other = float(o_size)
            if grows_up:
                hi = lo + other * r
            else:
                lo = hi - other * r
        mid = clamp((o_lo + o_hi) / 2, other / 2, o_size - other / 2)
        o_lo, o_hi = mid - other / 2, mid + other / 2
    if horizontal:
        return lo, o_lo, hi, o_hi
    return o_lo, lo, o_hi, hi


def nudged(px: Px, dx: int, dy: int, step: float, ratio: float | None, width: int, height: int,
           *, resize: bool) -> Px:  # fmt: skip
    """The box moved by (dx, dy) steps, or with `resize` its right/bottom edges moved."""
    x1, y1, x2, y2 = px
    if not resize:
        return moved(px, (0.0, 0.0), x1 + dx * step, y1 + dy * step, width, height)
    w = clamp(x2 - x1 + dx * step, MIN_SIDE_PX, width - x1)
    h = clamp(y2 - y1 + dy * step, MIN_SIDE_PX, height - y1)
    if ratio is not None:
        # The arrow's own axis leads; the other follows the locked shape.
        w, h = (w, w / ratio) if dx else (h * ratio, h)
        w, h = fit(w, h, ratio, width - x1, height - y1)
    return x1, y1, x1 + w, y1 + h
