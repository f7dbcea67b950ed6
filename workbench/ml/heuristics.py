"""The transparent defaults: a quality score for the pick and a saliency box for the crop.

Both read only the feature vector (features.py), so a pick over cached features decodes
nothing. They serve until a trained champion exists and stay the baseline the trained
models are measured against (issue 6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workbench.core.crops import CropBox
from workbench.ml.features import INDEX

HEURISTIC_VERSION = "heuristic"

# Quality score weights (see quality_score).
CLIP_WEIGHT = 4.0
EXPOSURE_WEIGHT = 3.0
NOISE_LEVELS_PER_POINT = 4.0
# Softmax temperature: a score lead of 0.5 (about 3x the relative detail energy) gives a
# pair 0.80 / 0.20; equal scores give 1/n each.
TEMPERATURE = 0.36

# Crop proposal.
CROP_MARGIN = 0.08  # of the subject box's size, on each side
CROP_MIN_SIDE = 0.30  # of the image side
CROP_MAX_AREA = 0.90  # a proposal covering more than this is no crop at all


def quality_score(vec: np.ndarray) -> float:
    """The heuristic quality of one image from its features; higher is better.

        score = sharpness - 2 log10(contrast)          detail, independent of exposure gain
                - 4 (clipped_dark + clipped_bright)     share of crushed or blown pixels
                - 3 |brightness - 0.5|                  exposure away from mid-grey
                - noise / 4                             noise sigma in 8-bit grey levels

    `sharpness` is log10 of the noise-corrected Laplacian energy, so +1 means ten times
    the fine detail; dividing by contrast squared makes a brighter copy of the same
    frame no "sharper". Only differences within a group matter (softmax).
    """
    contrast = max(float(vec[INDEX["contrast"]]), 0.01)
    detail = float(vec[INDEX["sharpness"]]) - 2.0 * math.log10(contrast)
    clipped = float(vec[INDEX["clipped_dark"]] + vec[INDEX["clipped_bright"]])
    exposure = abs(float(vec[INDEX["brightness"]]) - 0.5)
    noise = float(vec[INDEX["noise"]])
    return (
        detail - CLIP_WEIGHT * clipped - EXPOSURE_WEIGHT * exposure - noise / NOISE_LEVELS_PER_POINT
    )


def softmax(scores: Sequence[float] | np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """Probabilities over a group from raw scores (float64, sums to 1)."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = np.exp(z - z.max())
    return z / z.sum()


def rank(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Softmax probabilities of being the keeper, one per feature vector, in order."""
    return softmax([quality_score(v) for v in vectors])


def propose_crop(vec: np.ndarray) -> tuple[CropBox | None, float]:
    """A crop around the image's main salient mass, and its confidence 0-1.

    The subject box (the central 92% of the mass of the saliency above half its peak,
    from features.py) grows by CROP_MARGIN of its size on each side, then to at least
    CROP_MIN_SIDE of each image side, shifted back inside the frame. Confidence is the
    saliency concentration: how much more of the saliency the box holds than its share
    of the area (0 for a uniform map, 1 when everything salient is inside a small box).
    None when the box would cover more than CROP_MAX_AREA of the image: nothing to cut.
    """
    x1, y1, x2, y2 = (float(vec[INDEX[f"subject_{c}"]]) for c in ("x1", "y1", "x2", "y2"))
    confidence = float(np.clip(vec[INDEX["saliency_concentration"]], 0.0, 1.0))
    x1, x2 = _fit_side(x1, x2)
    y1, y2 = _fit_side(y1, y2)
    if (x2 - x1) * (y2 - y1) > CROP_MAX_AREA:
        return None, confidence
    return CropBox.from_seq([round(v, 4) for v in (x1, y1, x2, y2)]), confidence


def _fit_side(lo: float, hi: float) -> tuple[float, float]:
    """One axis of the crop: margin, minimum size, then shifted to lie inside [0, 1]."""
    size = max(hi - lo, 0.0)
    lo, hi = lo - CROP_MARGIN * size, hi + CROP_MARGIN * size
    if hi - lo < CROP_MIN_SIDE:
        centre = (lo + hi) / 2
        lo, hi = centre - CROP_MIN_SIDE / 2, centre + CROP_MIN_SIDE / 2
    if lo < 0:
        lo, hi = 0.0, hi - lo
    if hi > 1:
        lo, hi = lo - (hi - 1), 1.0
    return max(0.0, lo), min(1.0, hi)
