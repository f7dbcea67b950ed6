"""Box math on normalized crops [x1, y1, x2, y2] in [0, 1] of the displayed image."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.core.errors import InvalidInput

CROP_MATCH_TOLERANCE = 0.05
# Floating-point slack so that 0.1 vs 0.15 counts as "within 5%".
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class CropBox:
    """A normalized crop; x1 < x2 and y1 < y2, all in [0, 1]."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def from_seq(cls, values: Sequence[object]) -> CropBox:
        """A validated box from four numbers, or InvalidInput saying what is wrong."""
        if isinstance(values, str | bytes) or len(values) != 4:
            raise InvalidInput("a crop needs exactly four numbers [x1, y1, x2, y2]")
        nums: list[float] = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InvalidInput(f"crop value {v!r} is not a number")
            f = float(v)
            if not math.isfinite(f):
                raise InvalidInput(f"crop value {v!r} is not finite")
            if f < -_EPS or f > 1 + _EPS:
                raise InvalidInput(f"crop value {f} is outside [0, 1]")
            nums.append(min(1.0, max(0.0, f)))
        x1, y1, x2, y2 = nums
        if not (x1 < x2 and y1 < y2):
            raise InvalidInput(f"crop {nums} is empty or inverted (needs x1 < x2 and y1 < y2)")
        return cls(x1, y1, x2, y2)

    @classmethod
    def from_json(cls, text: str) -> CropBox:
        try:
            values = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"crop {text!r} is not a JSON array") from exc
        if not isinstance(values, list):
            raise InvalidInput(f"crop {text!r} is not a JSON array")
        return cls.from_seq(values)

    def to_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def to_json(self) -> str:
        # Unrounded: json writes floats exactly, so the stored box is the box the flags used.
        return json.dumps(self.to_list())

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel box (left, top, right, bottom) for an image of that size, at least 1x1."""
        left = min(width - 1, max(0, round(self.x1 * width)))
        top = min(height - 1, max(0, round(self.y1 * height)))
        right = max(left + 1, min(width, round(self.x2 * width)))
        bottom = max(top + 1, min(height, round(self.y2 * height)))
        return left, top, right, bottom


def iou(a: CropBox, b: CropBox) -> float:
    """Intersection over union of two boxes, 0.0 to 1.0."""
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.area + b.area - inter
    return 0.0 if union <= 0 else inter / union


def corners_match(ai: CropBox, user: CropBox, tolerance: float = CROP_MATCH_TOLERANCE) -> bool:
    """Seed 002's crop_match: every coordinate within `tolerance` of the other's."""
    return all(
        abs(a - u) <= tolerance + _EPS for a, u in zip(ai.to_list(), user.to_list(), strict=True)
    )
