"""Trains the crop proposer (seed 002): the crop the user would draw on the kept image.

Learns [x1, y1, x2, y2] from the selected image's features with a generalized-IoU
loss, on every final crop (an AI crop the user accepted counts too). Measured on the
frozen held-out crops: mean IoU and the crop_match rate (every corner within 5%),
beside the smart-crop baseline (statistics fitted on the same training crops, applied
to the heuristic proposal, as served without a trained crop model), the heuristic and
the whole image. Exported to ONNX and served by predict.py.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from workbench.ml import heuristics
from workbench.ml.jobs import (
    JobConfig,
    JobResult,
    Progress,
    ProgressFn,
    StopFn,
    check_stop,
)
from workbench.ml.training import common, smartcrop
from workbench.ml.training.data import (
    crop_samples,
)

log = logging.getLogger(__name__)

LEARNING_RATE = 0.005
WEIGHT_DECAY = 1e-4


def run(config: JobConfig, progress: ProgressFn, should_stop: StopFn) -> JobResult:
    """Trains, measures and registers a crop proposer (the job protocol, jobs.py)."""
    import torch

    from workbench.ml.training import nets

    device, epochs = nets.start(config, "crop")
    with common.open_context(config) as ctx:
        progress(Progress("data", message="reading crops"))
        ds = common.load_dataset(ctx, "crop", crop_samples(ctx.conn, ctx.split),
                                 lambda s: [s.path], "final crops", progress, should_stop)  # fmt: skip
        train, held = ds.train(), ds.held_out()

        x = np.stack([ds.vectors[s.path] for s in train])
        t = np.array([s.box.to_list() for s in train], dtype=np.float32)
        hx = np.stack([ds.vectors[s.path] for s in held])
        truth = [s.box for s in held]
        model = nets.CropNet(x).to(device)
        tx, tt = torch.tensor(x, device=device), torch.tensor(t, device=device)
        thx = torch.tensor(hx, device=device)
        curves = nets.fit(
            model, lambda: nets.giou_loss(model(tx), tt).mean(),
            lambda: {"held_out_iou": _evaluate(model(thx).cpu().numpy(), truth)["mean_iou"]},
            epochs=epochs, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, progress=progress,
            should_stop=should_stop,
        )  # fmt: skip

        progress(Progress("evaluating", message="measuring on held-out crops"))
        model = model.to("cpu").eval()
        with torch.no_grad():
            metrics = _evaluate(model(torch.tensor(hx)).numpy(), truth)
        stats = smartcrop.fit([s.box for s in train], [(s.width, s.height) for s in train])
        proposals = [heuristics.propose_crop(ds.vectors[s.path])[0] for s in held]
        baselines = {
            "smartcrop": smartcrop.evaluate(
                [smartcrop.suggest(stats, p)[0] for p in proposals], truth
            ),
            "heuristic": smartcrop.evaluate(proposals, truth),
            "whole_image": smartcrop.evaluate([None] * len(truth), truth),
        }
        to_beat = max(baselines["smartcrop"], baselines["heuristic"], key=lambda m: m["mean_iou"])
        champion_metrics = _champion_metrics(ctx, hx, truth)
        check_stop(should_stop)
        return nets.register_trained(
            ctx, config, model, hx[:2], "box", progress, should_stop,
            metrics=metrics, champion_metrics=champion_metrics, baselines=baselines,
            dataset=ds, records=common.crop_records(ds), key="mean_iou",
            tie_break="crop_match", to_beat=to_beat, curves=curves,
            summary={"epochs": epochs, "final_loss": curves[-1]["loss"]},
        )  # fmt: skip


def _evaluate(boxes: np.ndarray, truth: list[Any]) -> dict[str, float]:
    from workbench.core.crops import CropBox

    proposals = []
    for b in np.clip(boxes, 0.0, 1.0):
        x1, y1, x2, y2 = (round(float(v), 4) for v in b)
        proposals.append(CropBox(x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None)
    return smartcrop.evaluate(proposals, truth)


def _champion_metrics(ctx: common.Context, hx: np.ndarray, truth: list[Any]) -> dict[str, Any]:
    from workbench.ml.training import nets

    champ = ctx.registry.champion_info("crop")
    if champ is None:
        return {}
    try:
        out = nets.onnx_run(champ.path / "model.onnx", hx).reshape(len(truth), 4)
        return _evaluate(out, truth)
    except Exception as exc:  # a broken champion file: the new version competes with the baseline
        log.warning("cannot evaluate crop champion %s (%s)", champ.version, exc)
        return {}
