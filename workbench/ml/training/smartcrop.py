"""Smart-crop statistics (seed 000): what the user's crops look like, as a small JSON model.

From the final crops it learns two patterns: the crop's size (mean, standard deviation,
coefficient of variation of width and height, typical aspect, ranges; normalized and
in pixels) and its position (mean and spread of the top-left corner and the centre).
Served beside the heuristic crop (predict.py): when a proposal's width or height
deviates more than DEVIATION (10%) from the learned mean, the suggestion is the learned
size around the proposal's centre; with no proposal at all, the mean box.

Pure numpy: the GUI may import it (the predictor serves it without torch).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.crops import CropBox, corners_match, iou
from workbench.core.errors import WorkbenchError
from workbench.ml.jobs import (
    JobConfig,
    JobResult,
    Progress,
    ProgressFn,
    StopFn,
    check_stop,
)

log = logging.getLogger(__name__)

FORMAT = "workbench-smartcrop-1"
MODEL_FILE = "model.json"
DEVIATION = 0.10
WHOLE = CropBox(0.0, 0.0, 1.0, 1.0)


def fit(boxes: list[CropBox], sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """The statistics of crops (normalized boxes) on images of the given pixel sizes."""
    if not boxes:
        raise WorkbenchError("Smart crop needs at least one crop to learn from.", code="not_ready")
    b = np.array([c.to_list() for c in boxes], dtype=np.float64)
    px = np.array(sizes, dtype=np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    wpx, hpx = w * px[:, 0], h * px[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2

    def stats(v: np.ndarray) -> tuple[float, float]:
        return float(v.mean()), float(v.std())

    out: dict[str, Any] = {"format": FORMAT, "samples": len(boxes), "patterns_learned": 2,
                           "deviation_threshold": DEVIATION}  # fmt: skip
    for name, v in (("width", w), ("height", h), ("x", b[:, 0]), ("y", b[:, 1]),
                    ("cx", cx), ("cy", cy), ("width_px", wpx), ("height_px", hpx)):  # fmt: skip
        mean, std = stats(v)
        out[f"avg_{name}"], out[f"std_{name}"] = round(mean, 6), round(std, 6)
    out["cv_width"] = round(out["std_width"] / out["avg_width"], 6) if out["avg_width"] else 0.0
    out["cv_height"] = round(out["std_height"] / out["avg_height"], 6) if out["avg_height"] else 0.0
    out["typical_aspect_ratio"] = round(float(np.median(wpx / np.maximum(hpx, 1e-9))), 6)
    out["width_range"] = [round(float(w.min()), 6), round(float(w.max()), 6)]
    out["height_range"] = [round(float(h.min()), 6), round(float(h.max()), 6)]
    out["x_range"] = [round(float(b[:, 0].min()), 6), round(float(b[:, 0].max()), 6)]
    out["y_range"] = [round(float(b[:, 1].min()), 6), round(float(b[:, 1].max()), 6)]
    out["consistency"] = describe_cv(max(out["cv_width"], out["cv_height"]))
    return out


def describe_cv(cv: float) -> str:
    """Seed 000's reading of a coefficient of variation."""
    if cv < 0.1:
        return "very consistent crop sizes"
    if cv <= 0.2:
        return "moderately consistent crop sizes"
    return "crop sizes vary a lot"


def mean_box(model: dict[str, Any]) -> CropBox:
    """The average crop: mean size at the mean top-left corner, kept inside the image."""
    w, h = _clip_size(model["avg_width"]), _clip_size(model["avg_height"])
    x1 = min(max(float(model["avg_x"]), 0.0), 1.0 - w)
    y1 = min(max(float(model["avg_y"]), 0.0), 1.0 - h)
    return CropBox(round(x1, 4), round(y1, 4), round(x1 + w, 4), round(y1 + h, 4))


def suggest(model: dict[str, Any], proposal: CropBox | None) -> tuple[CropBox, bool]:
    """The smart-crop suggestion for a proposal, and whether it changed it.

    No proposal: the mean box. A proposal whose width or height deviates more than the
    threshold from the learned mean: the learned size, centred on the proposal, moved
    inside the image. Otherwise the proposal itself.
    """
    if proposal is None:
        return mean_box(model), True
    aw, ah = float(model["avg_width"]), float(model["avg_height"])
    pw, ph = proposal.x2 - proposal.x1, proposal.y2 - proposal.y1
    threshold = float(model.get("deviation_threshold", DEVIATION))
    if aw <= 0 or ah <= 0 or (abs(pw - aw) / aw <= threshold and abs(ph - ah) / ah <= threshold):
        return proposal, False
    w, h = _clip_size(aw), _clip_size(ah)
    cx, cy = (proposal.x1 + proposal.x2) / 2, (proposal.y1 + proposal.y2) / 2
    x1 = min(max(cx - w / 2, 0.0), 1.0 - w)
    y1 = min(max(cy - h / 2, 0.0), 1.0 - h)
    return CropBox(round(x1, 4), round(y1, 4), round(x1 + w, 4), round(y1 + h, 4)), True


def _clip_size(v: float) -> float:
    return float(min(max(v, 0.01), 1.0))


def load_model(path: Path) -> dict[str, Any]:
    """A model.json, validated (raises ValueError when it is not a smart-crop model)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a smart-crop model")
    for key in ("avg_width", "avg_height", "avg_x", "avg_y"):
        value = data.get(key)
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{path}: {key} must be a number from 0 to 1")
    threshold = data.get("deviation_threshold", DEVIATION)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(f"{path}: deviation_threshold must be a number from 0 to 1")
    return data


def evaluate(boxes: list[CropBox | None], truth: list[CropBox]) -> dict[str, float]:
    """Mean IoU and crop_match rate of proposals (None counts as the whole image)."""
    if not truth:
        return {"mean_iou": 0.0, "crop_match": 0.0, "n": 0}
    ious = [iou(b or WHOLE, t) for b, t in zip(boxes, truth, strict=True)]
    matches = [corners_match(b or WHOLE, t) for b, t in zip(boxes, truth, strict=True)]
    return {"mean_iou": round(float(np.mean(ious)), 4),
            "crop_match": round(float(np.mean(matches)), 4), "n": len(truth)}  # fmt: skip


def run(config: JobConfig, progress: ProgressFn, should_stop: StopFn) -> JobResult:
    """Trains the smart-crop statistics and registers them (the job protocol, jobs.py)."""
    from workbench.ml import heuristics
    from workbench.ml.training import common
    from workbench.ml.training.data import crop_samples

    with common.open_context(config) as ctx:
        progress(Progress("data", message="reading crops"))
        ds = common.load_dataset(ctx, "smartcrop", crop_samples(ctx.conn, ctx.split),
                                 lambda s: [s.path], "final crops", progress, should_stop)  # fmt: skip
        train, held = ds.train(), ds.held_out()
        check_stop(should_stop)
        progress(Progress("training", 0, 1, message="learning crop statistics"))
        model = fit([s.box for s in train], [(s.width, s.height) for s in train])
        progress(Progress("training", 1, 1, {"samples": float(len(train))}))

        truth = [s.box for s in held]
        proposals = [heuristics.propose_crop(ds.vectors[s.path])[0] for s in held]
        metrics = evaluate([suggest(model, p)[0] for p in proposals], truth)
        baselines = {
            "heuristic": evaluate(proposals, truth),
            "whole_image": evaluate([None] * len(truth), truth),
            "mean_box": evaluate([mean_box(model)] * len(truth), truth),
        }
        champion_metrics: dict[str, Any] = {}
        champ = ctx.registry.champion_info("smartcrop")
        if champ is not None:
            try:
                old = load_model(champ.path / MODEL_FILE)
                champion_metrics = evaluate([suggest(old, p)[0] for p in proposals], truth)
            except (OSError, ValueError) as exc:
                log.warning("cannot evaluate the smartcrop champion %s (%s)", champ.version, exc)
        check_stop(should_stop)
        with ctx.registry.stage("smartcrop") as staged:
            (staged.path / MODEL_FILE).write_text(json.dumps(model, indent=2) + "\n", "utf-8")
            return common.register(
                ctx, config, staged, metrics=metrics, champion_metrics=champion_metrics,
                baselines=baselines, dataset=ds, records=common.crop_records(ds),
                serving={"format": FORMAT}, key="mean_iou",
                to_beat=baselines["heuristic"], summary=model,
            )  # fmt: skip
