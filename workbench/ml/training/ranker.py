"""Trains the ranker (seed 002): which image of a group the user keeps.

Each image of a decided group gets a score from its features; a softmax over the group
gives the probability of being kept; the loss is the cross-entropy of the user's
choice, weighted double where the AI had picked another image. Rejected groups and
groups of one image are left out. Measured on the frozen held-out groups: top-1 (the
kept image scores highest) and pairwise accuracy (the kept image outscores each other
one), beside the heuristic and chance. Exported to ONNX and served by predict.py.
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
from workbench.ml.training import common
from workbench.ml.training.data import (
    Dataset,
    GroupSample,
    ranker_groups,
)

log = logging.getLogger(__name__)

LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-3


def pack(
    ds: Dataset, samples: list[GroupSample]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Groups padded to 4: features [G, 4, F], mask [G, 4], user index [G], weight [G]."""
    width = len(next(iter(ds.vectors.values())))
    x = np.zeros((len(samples), 4, width), dtype=np.float32)
    mask = np.zeros((len(samples), 4), dtype=bool)
    for g, s in enumerate(samples):
        for i, p in enumerate(s.paths):
            x[g, i] = ds.vectors[p]
            mask[g, i] = True
    y = np.array([s.user_index for s in samples], dtype=np.int64)
    w = np.array([s.weight for s in samples], dtype=np.float32)
    return x, mask, y, w


def score_metrics(scores: list[np.ndarray], samples: list[GroupSample]) -> dict[str, float]:
    """Top-1 and pairwise accuracy of per-group scores (ties count against)."""
    if not samples:
        return {"top1": 0.0, "pairwise": 0.0, "n": 0}
    top1, pairs, won = 0, 0, 0
    for s, sc in zip(samples, scores, strict=True):
        kept = sc[s.user_index]
        others = np.delete(sc, s.user_index)
        top1 += int(np.all(kept > others))
        pairs += len(others)
        won += int(np.sum(kept > others))
    return {"top1": round(top1 / len(samples), 4), "pairwise": round(won / max(pairs, 1), 4),
            "n": len(samples)}  # fmt: skip


def chance(samples: list[GroupSample]) -> dict[str, float]:
    return {"top1": round(float(np.mean([1 / len(s.paths) for s in samples])), 4) if samples else 0.0,
            "pairwise": 0.5, "n": len(samples)}  # fmt: skip


def run(config: JobConfig, progress: ProgressFn, should_stop: StopFn) -> JobResult:
    """Trains, measures and registers a ranker (the job protocol, jobs.py)."""
    import torch

    from workbench.ml.training import nets

    device, epochs = nets.start(config, "ranker")
    with common.open_context(config) as ctx:
        progress(Progress("data", message="reading decisions"))
        ds = common.load_dataset(ctx, "ranker", ranker_groups(ctx.conn, ctx.split),
                                 lambda g: g.paths, "decided groups of 2+ images",
                                 progress, should_stop)  # fmt: skip
        train, held = ds.train(), ds.held_out()

        x, mask, y, w = pack(ds, train)
        flat = x[mask]
        model = nets.RankerNet(flat).to(device)
        tx, tm, ty, tw = (torch.tensor(a, device=device) for a in (x, mask, y, w))
        hx, hm, _, _ = (torch.tensor(a, device=device) for a in pack(ds, held))

        def loss_fn() -> torch.Tensor:
            per_group = torch.nn.functional.cross_entropy(model.batch(tx, tm), ty, reduction="none")
            return (per_group * tw).sum() / tw.sum()

        def measure() -> dict[str, float]:
            held_scores = model.batch(hx, hm).cpu().numpy()
            trained = float((model.batch(tx, tm).argmax(1) == ty).float().mean())
            rows = [r[: len(s.paths)] for r, s in zip(held_scores, held, strict=True)]
            return {
                "train_top1": round(trained, 4),
                "held_out_top1": score_metrics(rows, held)["top1"],
            }

        curves = nets.fit(model, loss_fn, measure, epochs=epochs, lr=LEARNING_RATE,
                          weight_decay=WEIGHT_DECAY, progress=progress, should_stop=should_stop)  # fmt: skip

        progress(Progress("evaluating", message="measuring on held-out groups"))
        model = model.to("cpu").eval()
        with torch.no_grad():
            new_scores = [model(torch.tensor(np.stack([ds.vectors[p] for p in s.paths]))).numpy()
                          for s in held]  # fmt: skip
        metrics = score_metrics(new_scores, held)
        heuristic = score_metrics(
            [np.array([heuristics.quality_score(ds.vectors[p]) for p in s.paths]) for s in held],
            held,
        )
        baselines = {"heuristic": heuristic, "random": chance(held)}
        champion_metrics = _champion_metrics(ctx, ds, held)
        check_stop(should_stop)
        sample = np.stack([ds.vectors[p] for p in (held or train)[0].paths])
        return nets.register_trained(
            ctx, config, model, sample, "logits", progress, should_stop,
            metrics=metrics, champion_metrics=champion_metrics, baselines=baselines,
            dataset=ds, records=common.ranker_records(ds), key="top1", tie_break="pairwise",
            to_beat=heuristic, curves=curves,
            summary={"epochs": epochs, "final_loss": curves[-1]["loss"]},
        )  # fmt: skip


def _champion_metrics(ctx: common.Context, ds: Dataset, held: list[GroupSample]) -> dict[str, Any]:
    """The current champion's metrics on today's held-out groups ({} when none/unusable)."""
    from workbench.ml.training import nets

    champ = ctx.registry.champion_info("ranker")
    if champ is None:
        return {}
    try:
        session = nets.onnx_session(champ.path / "model.onnx")
        scores = [nets.onnx_run(session, np.stack([ds.vectors[p] for p in s.paths])).reshape(-1)
                  for s in held]  # fmt: skip
        return score_metrics(scores, held)
    except Exception as exc:  # a broken champion file: the new version competes with the heuristic
        log.warning("cannot evaluate ranker champion %s (%s)", champ.version, exc)
        return {}
