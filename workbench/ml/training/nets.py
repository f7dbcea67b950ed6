"""The ranker and crop proposer networks, their losses, ONNX export and the ONNX check.

Both take the image feature vector (features.py); standardization (the training set's
mean and standard deviation) is part of the network, so the exported ONNX model takes
raw features as predict.py feeds them.

RankerNet scores the images of one group: input [n, F], output [n] logits (softmax
over the group in predict.py). Each image is seen with its features and their
difference from the group's mean, so "the most colourful of these" can be learned.

CropNet proposes [x1, y1, x2, y2] from the features of one image: input [n, F], output
[n, 4]. It starts from the saliency subject box in the features (centre and size in
logit space) and learns corrections, so it is useful after few samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.ml.features import INDEX
from workbench.ml.jobs import (
    JobConfig,
    JobResult,
    Progress,
    ProgressFn,
    StopFn,
    check_stop,
    seed_everything,
)

ONNX_TOLERANCE = 1e-4
_SUBJECT = [INDEX["subject_x1"], INDEX["subject_y1"], INDEX["subject_x2"], INDEX["subject_y2"]]


def device_for(name: str) -> torch.device:
    """The torch device for "cpu" or "cuda" (a sentence when CUDA is not there)."""
    if name == "cuda":
        if not torch.cuda.is_available():
            raise WorkbenchError(
                "CUDA was asked for, but this torch build sees no CUDA GPU; use --device cpu.",
                code="unavailable",
            )
        return torch.device("cuda")
    return torch.device("cpu")


def set_threads() -> None:
    """Small models: two intra-op threads beat more on a laptop and leave the GUI room."""
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _standardizer(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(x.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(np.maximum(x.std(axis=0), 1e-4), dtype=torch.float32)
    return mean, std


class RankerNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, features: np.ndarray, hidden: int = 32) -> None:
        super().__init__()
        mean, std = _standardizer(features)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        width = features.shape[1]
        self.body = nn.Sequential(
            nn.Linear(2 * width, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One group: [n, F] -> [n] logits."""
        z = (x - self.mean) / self.std
        rel = z - z.mean(dim=0, keepdim=True)
        return self.body(torch.cat([z, rel], dim=-1)).squeeze(-1)

    def batch(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Padded groups: [G, 4, F] with mask [G, 4] -> [G, 4] logits, padding at -1e9."""
        z = (x - self.mean) / self.std
        m = mask.unsqueeze(-1).to(z.dtype)
        group_mean = (z * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True)
        logits = self.body(torch.cat([z, z - group_mean], dim=-1)).squeeze(-1)
        return logits.masked_fill(~mask, -1e9)


class CropNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor
    subject: torch.Tensor

    def __init__(self, features: np.ndarray, hidden: int = 64) -> None:
        super().__init__()
        mean, std = _standardizer(features)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("subject", torch.tensor(_SUBJECT, dtype=torch.long))
        width = features.shape[1]
        self.body = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 4),
        )  # fmt: skip
        last = self.body[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)  # start at the subject box
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, F] -> [n, 4] normalized x1, y1, x2, y2 (x1 <= x2, y1 <= y2, inside [0, 1])."""
        z = (x - self.mean) / self.std
        box = x.index_select(1, self.subject)
        centre = ((box[:, :2] + box[:, 2:]) / 2).clamp(0.01, 0.99)
        size = (box[:, 2:] - box[:, :2]).clamp(0.02, 0.99)
        out = self.body(z)
        c = torch.sigmoid(torch.logit(centre) + out[:, :2])
        s = torch.sigmoid(torch.logit(size) + 0.4 + out[:, 2:])
        lo = (c - s / 2).clamp(0.0, 1.0)
        hi = (c + s / 2).clamp(0.0, 1.0)
        return torch.cat([lo, hi], dim=1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - generalized IoU per box ([n, 4] each, x1 y1 x2 y2)."""
    ix1 = torch.maximum(pred[:, 0], target[:, 0])
    iy1 = torch.maximum(pred[:, 1], target[:, 1])
    ix2 = torch.minimum(pred[:, 2], target[:, 2])
    iy2 = torch.minimum(pred[:, 3], target[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - inter + 1e-7
    cx1 = torch.minimum(pred[:, 0], target[:, 0])
    cy1 = torch.minimum(pred[:, 1], target[:, 1])
    cx2 = torch.maximum(pred[:, 2], target[:, 2])
    cy2 = torch.maximum(pred[:, 3], target[:, 3])
    hull = (cx2 - cx1) * (cy2 - cy1) + 1e-7
    return 1.0 - (inter / union - (hull - union) / hull)


def fit(
    model: nn.Module,
    loss_fn: Callable[[], torch.Tensor],
    measure: Callable[[], dict[str, float]],
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    progress: ProgressFn,
    should_stop: StopFn,
    curve_points: int = 60,
) -> list[dict[str, float]]:
    """Full-batch Adam for `epochs`; returns the curve (epoch, loss and `measure()`'s
    held-out figures at about `curve_points` epochs), each point also sent as progress."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    every = max(1, epochs // curve_points)
    curves: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        check_stop(should_stop)
        model.train()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        if epoch % every == 0 or epoch == epochs:
            model.eval()
            with torch.no_grad():
                point = {"epoch": float(epoch), "loss": round(float(loss.detach()), 5), **measure()}
            curves.append(point)
            progress(Progress("training", epoch, epochs, point))
    return curves


def start(config: JobConfig, kind: str) -> tuple[torch.device, int]:
    """Seeds, threads, the device and the epochs of a training job of `kind`."""
    from workbench.ml.training.data import DEFAULT_EPOCHS

    seed_everything(config.seed)
    set_threads()
    return device_for(config.device), config.epochs or DEFAULT_EPOCHS[kind]


def register_trained(
    ctx: Any,
    config: JobConfig,
    model: nn.Module,
    sample: np.ndarray,
    output: str,
    progress: ProgressFn,
    should_stop: StopFn,
    **register: Any,
) -> JobResult:
    """Exports a features model to ONNX beside its weights in a staged version, then
    registers it (training.common.register, with the feature version to serve it by)."""
    from workbench.ml.features import FEATURE_VERSION
    from workbench.ml.training import common

    with ctx.registry.stage(config.kind) as staged:
        progress(Progress("export", message="exporting to ONNX"))
        export_onnx(model, sample, staged.path / "model.onnx", [output])
        save_weights(model, staged.path / "weights.pt")
        check_stop(should_stop)
        return common.register(
            ctx, config, staged, serving={"feature_version": FEATURE_VERSION}, **register
        )


def export_onnx(model: nn.Module, sample: np.ndarray, path: Path, output_names: list[str]) -> None:
    """Exports [n, F] -> outputs with a dynamic n, then checks onnxruntime against torch."""
    model = model.to("cpu").eval()
    x = torch.tensor(sample, dtype=torch.float32)
    axes: dict[str, dict[int, str]] = {"features": {0: "n"}}
    axes.update({name: {0: "n"} for name in output_names})
    with warnings.catch_warnings():  # the TorchScript exporter is the one that needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (x,), str(path), input_names=["features"], output_names=output_names,
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    with torch.no_grad():
        expected = model(x).numpy()
    got = onnx_run(path, sample)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=ONNX_TOLERANCE):
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else -1.0
        raise WorkbenchError(
            f"The exported model does not match the trained one (max diff {diff})."
        )


def onnx_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])  # fmt: skip


def onnx_run(path_or_session: Any, x: np.ndarray) -> np.ndarray:
    session = (
        onnx_session(path_or_session) if isinstance(path_or_session, Path) else path_or_session
    )
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: np.asarray(x, dtype=np.float32)})[0])


def save_weights(model: nn.Module, path: Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
