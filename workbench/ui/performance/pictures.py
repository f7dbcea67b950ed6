"""A mistake's picture: the AI's pick beside the user's, or the crop the AI got wrong (no Qt).

Made on a worker thread from the project's thumbnail cache (the same one the reviewer
fills), so listing mistakes decodes nothing the reviewer has already seen.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from workbench.core.crops import CropBox
from workbench.core.errors import WorkbenchError
from workbench.core.thumbs import ThumbnailCache
from workbench.ui.performance.data import Mistake

AI_COLOUR = (232, 110, 96)
USER_COLOUR = (108, 195, 138)
GAP = 4


def _thumb(cache: ThumbnailCache, path: object, height: int) -> Image.Image:
    try:
        image = cache.get(path, height * 2).copy()  # type: ignore[arg-type]
    except (WorkbenchError, OSError):
        return Image.new("RGB", (height, height), (60, 64, 72))  # moved away or unreadable
    scale = height / image.height
    return image.resize((max(1, round(image.width * scale)), height), Image.Resampling.BILINEAR)


def _frame(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    ImageDraw.Draw(image).rectangle((0, 0, image.width - 1, image.height - 1), outline=colour, width=3)
    return image


def _box(image: Image.Image, box: CropBox | None, colour: tuple[int, int, int]) -> None:
    if box is None:
        return
    w, h = image.size
    ImageDraw.Draw(image).rectangle((box.x1 * w, box.y1 * h, box.x2 * w - 1, box.y2 * h - 1),
                                    outline=colour, width=2)  # fmt: skip


def mistake_picture(cache: ThumbnailCache, m: Mistake, height: int = 72) -> Image.Image:
    """The AI's pick (red frame) beside the kept image (green frame), and on the kept image
    the AI's crop (red) and the final crop (green) when the crop was wrong."""
    kept = _thumb(cache, m.user_path, height)
    if m.crop_wrong:
        _box(kept, m.ai_crop, AI_COLOUR)
        _box(kept, m.final_crop, USER_COLOUR)
    parts = [_frame(kept, USER_COLOUR)]
    if m.selection_wrong and m.ai_path is not None:
        parts.insert(0, _frame(_thumb(cache, m.ai_path, height), AI_COLOUR))
    width = sum(p.width for p in parts) + GAP * (len(parts) - 1)
    out = Image.new("RGB", (width, height), (29, 32, 38))
    x = 0
    for part in parts:
        out.paste(part, (x, 0))
        x += part.width + GAP
    return out
