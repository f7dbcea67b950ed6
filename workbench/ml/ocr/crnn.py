"""The CRNN plate reader: a small conv net, a BiLSTM and CTC, trained with torch.

Input is grey [n, 1, 32, 128], pixels scaled (x / 255 - 0.5) / 0.5 (engines.crnn_pixels
prepares crops the same way for training and serving). Five 3x3 conv blocks and four
poolings leave 2 x 32 cells; each of the 32 columns is one time step of a bidirectional
LSTM (hidden 64), whose output is one class per step: the CTC blank (0) or a character of
ALPHABET. About 0.25 M weights: on a CPU, onnxruntime reads a plate in well under
0.5 ms at batch 64 (benchmarks/bench_ocr.py).

`fit` trains a model on crops prepared as uint8 arrays, with light augmentation done on
the batch (affine warp, contrast, blur, noise), Adam with a one-cycle learning rate,
CER and exact match on a validation set after each epoch, and early stopping with
patience. `export_onnx` writes the model with softmax outputs, the engine contract of
engines.py, and checks onnxruntime against torch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.ml.ocr.dataset import score
from workbench.ml.ocr.rapid import PLATE_ALPHABET, CtcDecoder, Reading

log = logging.getLogger(__name__)

ALPHABET = PLATE_ALPHABET
INPUT_SHAPE = (1, 32, 128)
MEAN, STD = 0.5, 0.5
ARCH = "crnn-s1"  # the layer recipe below; part of a cached base model's key
ONNX_OPSET = 17


class Crnn(nn.Module):
    """Conv features -> BiLSTM -> per-time-step class logits [n, T, 1 + len(ALPHABET)]."""

    def __init__(self, classes: int = 1 + len(ALPHABET), hidden: int = 64) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]  # fmt: skip

        # A strided first conv instead of conv + pool: a third less training time, same reads.
        self.features = nn.Sequential(
            *block(1, 16, stride=2),  # 16 x 64
            *block(16, 32), nn.MaxPool2d(2),  # 8 x 32
            *block(32, 64), *block(64, 64), nn.MaxPool2d((2, 1)),  # 4 x 32
            *block(64, 96), nn.MaxPool2d((2, 1)),  # 2 x 32
        )  # fmt: skip
        self.project = nn.Linear(96 * 2, 2 * hidden)
        self.rnn = nn.LSTM(2 * hidden, hidden, bidirectional=True, batch_first=True)
        self.classify = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        n, c, h, w = f.shape
        steps = f.permute(0, 3, 1, 2).reshape(n, w, c * h)
        local = F.relu(self.project(steps))
        context, _ = self.rnn(local)
        # The residual lets the conv features reach the classes directly: CTC then leaves
        # its all-blank plateau in a few hundred steps instead of thousands.
        return self.classify(context + local)


class _Probabilities(nn.Module):
    """What is exported: softmax over classes, so the served output is probabilities."""

    def __init__(self, model: Crnn) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=-1)


def new_model(seed: int = 0) -> Crnn:
    """A freshly initialised CRNN (weights drawn from `seed`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Crnn()


# -- weights ------------------------------------------------------------------------------


def save_weights(model: nn.Module, path: Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Loads a state dict saved by save_weights (weights_only: no code runs from the file)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise WorkbenchError(f"Cannot load the plate reader weights {path}: {exc}",
                             code="damaged") from exc  # fmt: skip
    return model


# -- data ---------------------------------------------------------------------------------


def encode(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets: the concatenated class indexes (1-based) and each text's length."""
    index = {ch: i + 1 for i, ch in enumerate(ALPHABET)}
    flat = [index[ch] for t in texts for ch in t]
    return (torch.tensor(flat, dtype=torch.long),
            torch.tensor([len(t) for t in texts], dtype=torch.long))  # fmt: skip


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [n, C, H, W] -> float input, (x / 255 - MEAN) / STD."""
    return (pixels.float() / 255.0 - MEAN) / STD


def augment(x: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random small warps and photometric changes of a float batch in [0, 1] [n, 1, H, W]."""
    n = x.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, generator=gen) * (hi - lo) + lo

    s = strength
    angle = u(-0.06 * s, 0.06 * s)
    scale = u(1 - 0.1 * s, 1 + 0.1 * s)
    sx = scale * u(1 - 0.06 * s, 1 + 0.06 * s)
    shear = u(-0.15 * s, 0.15 * s)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = (-sin + shear) / sx * 0.25  # x is 4x wider than y: keep angles true
    theta[:, 1, 0] = sin / scale * 4.0
    theta[:, 1, 1] = cos / scale
    theta[:, 0, 2] = u(-0.05 * s, 0.05 * s)
    theta[:, 1, 2] = u(-0.1 * s, 0.1 * s)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    blur = (torch.rand(n, generator=gen) < 0.3 * s).to(x.device)
    if blur.any():
        kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        soft = F.conv2d(
            F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.view(1, 1, 3, 3).to(x.device)
        )
        x = torch.where(blur.view(n, 1, 1, 1), soft, x)
    contrast = u(1 - 0.35 * s, 1 + 0.2 * s, 1, 1, 1).to(x.device)
    bright = u(-0.15 * s, 0.15 * s, 1, 1, 1).to(x.device)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + bright
    noise = torch.randn(x.shape, generator=gen).to(x.device) * u(0, 0.04 * s, 1, 1, 1).to(x.device)
    return (x + noise).clamp(0, 1)


# -- training -----------------------------------------------------------------------------


@dataclass
class FitSettings:
    """How `fit` trains: epochs at most, batch, learning rate, patience (epochs without a
    better validation score before it stops), augmentation strength."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6
    augment: float = 1.0
    device: str = "cpu"
    seed: int = 0
    replay_per_epoch: int = 0  # synthetic plates mixed into each epoch (fine-tuning)


@dataclass
class FitResult:
    """The best epoch's weights are in the model; the history holds every epoch's metrics."""

    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0


EpochFn = Callable[[int, int, dict[str, float]], None]  # (epoch, epochs, metrics)
StepFn = Callable[[], None]  # called before every batch: raises Cancelled to stop


def fit(
    model: Crnn,
    train_x: np.ndarray,
    train_y: Sequence[str],
    val_x: np.ndarray,
    val_y: Sequence[str],
    settings: FitSettings,
    *,
    on_epoch: EpochFn | None = None,
    on_step: StepFn | None = None,
    replay: tuple[np.ndarray, Sequence[str]] | None = None,
) -> FitResult:
    """Trains `model` in place and leaves it holding its best epoch's weights, on the CPU.

    `train_x`/`val_x` are uint8 [n, 1, H, W] (engines.crnn_pixels). With `replay` (pixels,
    texts), each epoch also trains on `settings.replay_per_epoch` of those drawn at random:
    synthetic plates mixed into a fine-tune keep what pretraining taught. The best epoch
    has the highest validation exact match, then the lowest CER; with no validation set,
    the lowest training loss. `on_step` is called before every batch (it may raise
    Cancelled); `on_epoch` after every epoch with its metrics.
    """
    began = time.monotonic()
    device = torch.device(settings.device)
    # channels_last: a quarter faster for these convs and poolings on a CPU (oneDNN).
    model.to(device)
    model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(settings.seed)
    epochs = max(1, settings.epochs)
    n_replay = 0 if replay is None else min(len(replay[1]), settings.replay_per_epoch)
    steps = math.ceil((len(train_y) + n_replay) / settings.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)  # fmt: skip
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=epochs * steps, pct_start=0.15
    )
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    result = FitResult(best_epoch=0, best={})
    best_state: dict[str, torch.Tensor] | None = None
    best_key: tuple[float, float] | None = None
    for epoch in range(1, epochs + 1):
        xs, ys = train_x, list(train_y)
        if replay is not None and n_replay:
            pick = torch.randperm(len(replay[1]), generator=gen)[:n_replay].numpy()
            xs = np.concatenate([xs, replay[0][pick]])
            ys += [replay[1][i] for i in pick.tolist()]
        model.train()
        order = torch.randperm(len(ys), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(ys), settings.batch_size):
            if on_step is not None:
                on_step()
            idx = order[start : start + settings.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            pixels = torch.from_numpy(xs[idx.numpy()])
            x = pixels.float() / 255.0
            if settings.augment > 0:
                x = augment(x, gen, settings.augment)
            x = ((x - MEAN) / STD).to(device).contiguous(memory_format=torch.channels_last)
            targets, lengths = encode([ys[i] for i in idx.tolist()])
            log_probs = F.log_softmax(model(x), dim=-1).permute(1, 0, 2)  # [T, n, K]
            steps_in = torch.full((len(idx),), log_probs.shape[0], dtype=torch.long)
            loss = ctc(log_probs.cpu(), targets, steps_in, lengths)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            if schedule.last_epoch + 1 < schedule.total_steps:
                schedule.step()
            total += float(loss.detach())
            batches += 1
        metrics = {"loss": round(total / max(1, batches), 5)}
        if len(val_y):
            readings = predict(model, val_x, on_step=on_step)
            metrics.update(score([r.text for r in readings], val_y))
            key = (-metrics["exact_match"], metrics["cer"])
        else:
            key = (0.0, metrics["loss"])
        result.history.append({"epoch": epoch, **metrics})
        if on_epoch is not None:
            on_epoch(epoch, epochs, metrics)
        if best_key is None or key < best_key:
            best_key, result.best_epoch, result.best = key, epoch, dict(metrics)
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - result.best_epoch >= settings.patience:
            log.info("early stop after epoch %d (best %d)", epoch, result.best_epoch)
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")  # saved, exported and measured on the CPU
    model.to(memory_format=torch.contiguous_format).eval()
    result.seconds = round(time.monotonic() - began, 3)
    return result


def probabilities(model: Crnn, pixels: np.ndarray, *, batch_size: int = 256,
                  on_step: StepFn | None = None) -> np.ndarray:  # fmt: skip
    """Softmax outputs [n, T, K] of `model` on uint8 crops [n, C, H, W] (eval mode, on the
    model's device)."""
    device = next(model.parameters()).device
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            if on_step is not None:
                on_step()
            x = normalize(torch.from_numpy(pixels[start : start + batch_size])).to(device)
            outs.append(torch.softmax(model(x), dim=-1).cpu().numpy())
    if not outs:
        return np.zeros((0, INPUT_SHAPE[2] // 4, 1 + len(ALPHABET)), np.float32)
    return np.concatenate(outs)


def predict(model: Crnn, pixels: np.ndarray, *, on_step: StepFn | None = None) -> list[Reading]:
    """Readings of uint8 crops, decoded as the served model's are (rapid.CtcDecoder)."""
    probs = probabilities(model, pixels, on_step=on_step)
    return CtcDecoder(list(ALPHABET)).decode(probs) if len(probs) else []


# -- export -------------------------------------------------------------------------------


def serving_fields() -> dict[str, Any]:
    """The engine contract fields a version carries (serving.json, champion.json)."""
    return {"alphabet": ALPHABET, "input_shape": list(INPUT_SHAPE), "mean": MEAN, "std": STD,
            "output": "probabilities", "arch": ARCH}  # fmt: skip


def require_exporter() -> None:
    """Raises a sentence when the ONNX export cannot run here (checked before training)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:  # torch's exporter writes through it
        raise WorkbenchError("Exporting the plate reader needs the onnx package; reinstall "
                             "Workbench (pip install -e .) or pip install onnx.",
                             code="missing_dependency")  # fmt: skip


def export_onnx(model: Crnn, path: Path, sample: np.ndarray | None = None) -> float:
    """Writes `model` as ONNX (input [n, 1, 32, 128], output probabilities [n, T, K]) and
    returns the largest difference between onnxruntime's and torch's outputs on `sample`
    (uint8 crops; random pixels when None). Raises when it exceeds 1e-4."""
    import onnxruntime

    require_exporter()
    model = copy.deepcopy(model).cpu().eval()
    wrapped = _Probabilities(model).eval()
    if sample is None or not len(sample):
        sample = np.random.default_rng(0).integers(0, 256, (4, *INPUT_SHAPE), dtype=np.uint8)
    x = normalize(torch.from_numpy(np.ascontiguousarray(sample[:16])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter warns about LSTM batch sizes
        torch.onnx.export(
            wrapped, (x,), str(path), dynamo=False, opset_version=ONNX_OPSET,
            input_names=["input"], output_names=["probs"],
            dynamic_axes={"input": {0: "n"}, "probs": {0: "n"}},
        )  # fmt: skip
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = wrapped(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= 1e-4:
        raise WorkbenchError(
            f"The exported plate reader disagrees with the trained one (by {diff:.2g}); "
            "the version was not kept. Report this with the training log.",
            code="export_failed",
        )
    return diff
