"""Sizes for the reviewer's pictures: which thumbnail to decode and how large to show it.

Thumbnails are cached at a few fixed sides (so a window resized by a few pixels reuses
the disk cache), then scaled once, off the GUI thread, to the exact size of the tile's
picture area; painting is then a plain copy.
"""

from __future__ import annotations

# Longest sides the thumbnail cache keeps for display (the feature size, 512, is derived).
DISPLAY_SIDES = (768, 1024, 1536, 2048, 3072)


def fit(area: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled to fill `area` keeping its aspect (up or down), at least 1 x 1."""
    aw, ah = area
    w, h = size
    if w <= 0 or h <= 0 or aw <= 0 or ah <= 0:
        return max(1, aw), max(1, ah)
    scale = min(aw / w, ah / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def thumbnail_side(area: tuple[int, int], size: tuple[int | None, int | None]) -> int:
    """The cached thumbnail side to decode for a picture shown in `area` (device pixels)."""
    w, h = size
    if w and h:
        fw, fh = fit(area, (w, h))
        needed = max(fw, fh)
    else:
        needed = max(area)
    for side in DISPLAY_SIDES:
        if side >= needed:
            return side
    return DISPLAY_SIDES[-1]


def centred(
    outer: tuple[float, float, float, float], size: tuple[float, float]
) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a `size` box centred in the `outer` (x, y, w, h) box."""
    x, y, w, h = outer
    sw, sh = size
    return x + (w - sw) / 2, y + (h - sh) / 2, sw, sh


def loupe_source(
    point: tuple[float, float], image: tuple[int, int], view: tuple[float, float]
) -> tuple[float, float]:
    """Top-left (x, y) in image pixels of a `view`-sized window at 100% around `point`.

    `point` is relative (0-1) to the image; the window stays inside the image where it
    can, so the edges are reachable and nothing outside the picture is shown.
    """
    iw, ih = image
    vw, vh = view
    x = point[0] * iw - vw / 2
    y = point[1] * ih - vh / 2
    x = min(max(x, 0.0), max(iw - vw, 0.0)) if iw > vw else (iw - vw) / 2
    y = min(max(y, 0.0), max(ih - vh, 0.0)) if ih > vh else (ih - vh) / 2
    return x, y
