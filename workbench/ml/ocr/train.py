"""Trains the CRNN plate reader: `run(config, progress, should_stop) -> JobResult` (jobs.py).

1. Labels: the project's `plate_labels` (ocr/dataset.py), split by the frozen held-out
   split; NotReady when there are too few (`[training] min_ocr_labels`, `min_ocr_held_out`).
2. Pretrain (stage "pretrain"): a base model learns from synthetic plates (synth.py).
   It is built once per machine and recipe and cached under
   `<models root>/.cache/ocr-base/<recipe hash>/` (written to a temporary folder, then
   renamed), so a retrain starts from it at once. `extra["synthetic"]` sets how many
   plates (0: no pretraining, which collapses to blanks on a few hundred labels).
3. Fine-tune (stage "training"): the base model learns the labels, with augmentation and
   synthetic plates mixed in, CER and exact match on the held-out labels after every
   epoch (progress metrics loss, cer, exact), early stopping with patience.
4. Evaluate (stage "evaluating"), all on the same held-out crops through onnxruntime:
   the new version, the current champion, and rapidocr's recognizer as a baseline. A
   model that reads nothing (CTC blank collapse) fails here with a sentence and keeps
   nothing.
5. Register (weights.pt, model.onnx, metrics.json, config.json, data.json, serving.json)
   and promote when it beats the champion: higher exact match, then lower CER. With no
   champion, the pre-labels come from rapidocr, so the first version is promoted when it
   reads at least as many held-out crops exactly as rapidocr does (ties broken by CER),
   or when rapidocr cannot run here. `config.promote` False never promotes.

`config.extra` keys: `synthetic` (plates, default 20000), `pretrain_epochs`,
`exclude_fonts`, `exclude_styles` (synth.py names, kept out of pretraining; a test
measures the reader on them), `patience`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.timeutil import iso_utc
from workbench.ml.jobs import (
    JobConfig,
    JobResult,
    NotReady,
    Progress,
    ProgressFn,
    StopFn,
    check_stop,
    seed_everything,
)
from workbench.ml.ocr import crnn
from workbench.ml.ocr.dataset import (
    OCR_KIND,
    PlateSample,
    better,
    collapsed,
    ocr_readiness,
    plate_samples,
    score,
)
from workbench.ml.ocr.engines import crnn_pixels, crnn_recognizer, load_crop
from workbench.ml.ocr.rapid import EngineUnavailable, rapidocr_recognizer, rapidocr_version
from workbench.ml.ocr.synth import SYNTH_VERSION, PlateSynth
from workbench.ml.registry import Registry, data_hash

log = logging.getLogger(__name__)

DEFAULT_SYNTHETIC = 20_000
MAX_SYNTHETIC = 500_000
DEFAULT_EPOCHS = 40  # fine-tuning, at most: early stopping ends it sooner
PATIENCE = 6
PRETRAIN_PATIENCE = 4
SYNTH_VALIDATION = 256  # synthetic plates that pick the best pretraining epoch
REPLAY = 2048  # synthetic plates kept with the base model, mixed into fine-tuning
BASE_CACHE = Path(".cache") / "ocr-base"
MAX_THREADS = 8
DRAW_CHUNK = 256  # synthetic plates drawn between two looks at the stop flag


@dataclass
class Crops:
    """Labeled crops loaded for training: the samples, their BGR images and CRNN pixels."""

    samples: list[PlateSample]
    images: list[np.ndarray]
    pixels: np.ndarray

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]


def run(config: JobConfig, progress: ProgressFn, should_stop: StopFn) -> JobResult:
    """Trains, measures and registers a plate reader version (see the module docstring)."""
    began = time.monotonic()
    device = _device(config.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(MAX_THREADS, os.cpu_count() or 1)))
    try:
        seed_everything(config.seed)
        return _run(config, progress, should_stop, device, began)
    finally:
        torch.set_num_threads(threads)


def _run(config: JobConfig, progress: ProgressFn, should_stop: StopFn, device: str,
         began: float) -> JobResult:  # fmt: skip
    def stop() -> None:
        check_stop(should_stop)

    project = config.open_project()
    registry = Registry(project.models_dir, db_path=project.db_path)
    conn = project.connect()
    try:
        ready = ocr_readiness(project, conn, registry)
        if not ready.ready:
            raise NotReady(f"The plate reader cannot be trained yet: it {ready.reason}. "
                           "Label more plate crops in the plates view.")  # fmt: skip
        data = plate_samples(project, conn, registry.split())
    finally:
        conn.close()
    crnn.require_exporter()  # before an hour of training, not after
    progress(Progress("loading", 0, len(data.samples), message="reading the labeled crops"))
    train = _load(data.train(), progress, stop)
    held = _load(data.held_out(), progress, stop)
    skipped = {k: v for k, v in data.skipped.items() if v}
    unreadable = len(data.samples) - len(train.samples) - len(held.samples)
    if unreadable:
        skipped["unreadable"] = unreadable
    if not held.samples or len(train.samples) < 2:
        raise NotReady("The plate reader cannot be trained yet: too few of the labeled crops "
                       "can be read from disk. Check that the crop folders are still there.")  # fmt: skip
    samples = {"train": len(train.samples), "held_out": len(held.samples)}

    base, recipe, replay = pretrained_base(config, device, progress, stop)
    model = copy.deepcopy(base)
    fit_settings = crnn.FitSettings(
        epochs=int(config.epochs or DEFAULT_EPOCHS), batch_size=32, lr=5e-4,
        patience=int(config.extra.get("patience", PATIENCE)), device=device, seed=config.seed,
        replay_per_epoch=max(256, len(train.samples)) if replay is not None else 0,
    )  # fmt: skip
    if replay is None:  # from scratch: the learning rate of pretraining
        fit_settings.lr = 3e-3

    def on_epoch(epoch: int, epochs: int, m: dict[str, float]) -> None:
        progress(Progress("training", epoch, epochs, _curve(m), f"fine-tuning, epoch {epoch}"))

    progress(Progress("training", 0, fit_settings.epochs, message="fine-tuning on your labels"))
    fitted = crnn.fit(model, train.pixels, train.texts, held.pixels, held.texts, fit_settings,
                      on_epoch=on_epoch, on_step=stop, replay=replay)  # fmt: skip
    stop()
    quick = score([r.text for r in crnn.predict(model, held.pixels)], held.texts)
    if collapsed(quick):
        raise WorkbenchError(_collapse_message(quick, recipe), code="collapsed")

    progress(Progress("evaluating", 0, 3, message="measuring on the held-out crops"))
    champion = registry.champion_info(OCR_KIND)
    with registry.stage(OCR_KIND) as staged:
        crnn.save_weights(model, staged.path / "weights.pt")
        parity = crnn.export_onnx(model, staged.path / "model.onnx", held.pixels[:16])
        stop()
        serving = crnn.serving_fields()
        metrics = _evaluate(staged.path / "model.onnx", serving, held)
        progress(Progress("evaluating", 1, 3, message="measuring the champion"))
        champion_metrics = _evaluate_champion(champion, held)
        stop()
        progress(Progress("evaluating", 2, 3, message="measuring rapidocr"))
        baselines = {"rapidocr": _evaluate_rapidocr(held)}
        stop()
        decision, reason = _decide(config, metrics, champion, champion_metrics, baselines)
        all_metrics = {
            **metrics, "held_out": metrics, "champion": champion_metrics,
            "baselines": baselines, "best_epoch": fitted.best_epoch,
            "stopped_early": fitted.stopped_early, "history": fitted.history,
            "onnx_max_abs_diff": parity, "pretrain": recipe.get("metrics", {}),
            "seconds": round(time.monotonic() - began, 3),
        }  # fmt: skip
        records = [s.record() for s in train.samples + held.samples]
        info = registry.commit(
            staged, metrics=all_metrics,
            data={"data_hash": data_hash(records), "samples": samples, "skipped": skipped,
                  "base": {"hash": recipe["hash"], "recipe": recipe["recipe"]},
                  "created_at": iso_utc()},
            config={**config.to_dict(), "fit": fit_settings.__dict__, "base": recipe["recipe"]},
            serving=serving,
        )  # fmt: skip
    previous = champion.version if champion else None
    if decision:
        registry.promote(OCR_KIND, info.version, reason=reason)
    progress(Progress("done", 3, 3, message=reason))
    now = registry.champion(OCR_KIND)
    return JobResult(
        kind=OCR_KIND, status="promoted" if decision else "kept",
        message=_summary(info.version, decision, reason, metrics, previous),
        version=info.version, champion=now, previous_champion=previous,
        metrics={k: metrics[k] for k in ("cer", "exact_match", "empty", "n")},
        champion_metrics=champion_metrics, baselines=baselines, samples=samples,
    )  # fmt: skip


def _device(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise WorkbenchError(
            f"Training on the GPU (cuda) was asked for, but torch {torch.__version__} finds no "
            "usable CUDA GPU here; train with --device cpu, or install a CUDA build of torch.",
            code="unavailable",
        )
    return name


def _curve(m: dict[str, float]) -> dict[str, float]:
    """An epoch's metrics as the training panel plots them."""
    out = {"loss": m["loss"]}
    if "cer" in m:
        out.update(cer=m["cer"], exact=m["exact_match"])
    return out


def _load(samples: Sequence[PlateSample], progress: ProgressFn, stop: Any) -> Crops:
    kept, images = [], []
    for i, sample in enumerate(samples):
        if i % 32 == 0:
            stop()
            progress(Progress("loading", i, len(samples), message="reading the labeled crops"))
        try:
            images.append(load_crop(sample.path))
            kept.append(sample)
        except WorkbenchError as exc:
            log.info("left out %s: %s", sample.path, exc.message)
    return Crops(kept, images, crnn_pixels(images, crnn.INPUT_SHAPE))


# -- the pretrained base ------------------------------------------------------------------


def base_recipe(config: JobConfig) -> dict[str, Any]:
    """What decides the pretrained base model: two runs with the same recipe share it."""
    synthetic = int(config.extra.get("synthetic", DEFAULT_SYNTHETIC))
    if not 0 <= synthetic <= MAX_SYNTHETIC:
        raise WorkbenchError(f"The number of synthetic plates must be between 0 and "
                             f"{MAX_SYNTHETIC:,} (4 KB of memory each).",
                             code="invalid_input")  # fmt: skip
    epochs = config.extra.get("pretrain_epochs")
    if epochs is None:  # about 1,000 steps of 64 plates at least; more for large sets
        epochs = max(8, min(30, round(60_000 / max(1, synthetic))))
    return {
        "arch": crnn.ARCH, "synth_version": SYNTH_VERSION, "synthetic": synthetic,
        "epochs": int(epochs), "seed": int(config.seed), "batch_size": 64, "lr": 3e-3,
        "exclude_fonts": sorted(config.extra.get("exclude_fonts", [])),
        "exclude_styles": sorted(config.extra.get("exclude_styles", [])),
        "input_shape": list(crnn.INPUT_SHAPE), "alphabet": crnn.ALPHABET,
    }  # fmt: skip


def pretrained_base(config: JobConfig, device: str, progress: ProgressFn, stop: Any) -> tuple[
        crnn.Crnn, dict[str, Any], tuple[np.ndarray, list[str]] | None]:  # fmt: skip
    """The base model for `config` (cached per machine), its recipe entry and replay plates.

    With `synthetic` 0 the base is a freshly initialised model and there is no replay.
    """
    recipe = base_recipe(config)
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    entry: dict[str, Any] = {"hash": key, "recipe": recipe}
    if recipe["synthetic"] == 0:
        return crnn.new_model(config.seed), entry, None
    cache = Path(config.models_dir) / BASE_CACHE / key
    if not (cache / "weights.pt").is_file():
        _build_base(cache, recipe, device, progress, stop)
    else:
        progress(Progress("pretrain", 1, 1, message="using the cached pretrained plate reader"))
    model = crnn.load_weights(crnn.new_model(config.seed), cache / "weights.pt")
    with contextlib.suppress(OSError, ValueError):
        entry["metrics"] = json.loads((cache / "metrics.json").read_text(encoding="utf-8"))
    try:
        with np.load(cache / "replay.npz", allow_pickle=False) as z:
            replay = (np.asarray(z["pixels"]), [str(t) for t in z["texts"]])
    except (OSError, KeyError, ValueError) as exc:
        log.warning("no synthetic replay plates in %s (%s)", cache, exc)
        replay = None
    return model, entry, replay  # type: ignore[return-value]


def _draw_chunk(recipe: dict[str, Any], start: int, count: int) -> tuple[np.ndarray, list[str]]:
    """Synthetic plates start..start+count of a recipe, as CRNN pixels and texts."""
    synth = PlateSynth(recipe["seed"], exclude_fonts=recipe["exclude_fonts"],
                       exclude_styles=recipe["exclude_styles"])  # fmt: skip
    plates = synth.many(start, count)
    return crnn_pixels([p.image for p in plates], crnn.INPUT_SHAPE), [p.text for p in plates]


def draw_synthetic(recipe: dict[str, Any], total: int, progress: ProgressFn,
                   stop: Any) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """`total` synthetic plates of the recipe as CRNN pixels and texts, in index order.

    Drawn in this process (about 2.5 ms a plate): worker processes would have to be
    spawned, which breaks callers whose main module is not import-safe, and forking
    after torch has started its threads is not safe.
    """
    pixels = np.empty((total, *crnn.INPUT_SHAPE), np.uint8)
    texts: list[str] = []
    for start in range(0, total, DRAW_CHUNK):
        stop()
        progress(Progress("pretrain", start, total, message="drawing synthetic plates"))
        part, words = _draw_chunk(recipe, start, min(DRAW_CHUNK, total - start))
        pixels[start : start + len(words)] = part
        texts += words
    return pixels, texts


def _build_base(cache: Path, recipe: dict[str, Any], device: str, progress: ProgressFn,
                stop: Any) -> None:  # fmt: skip
    n, epochs = recipe["synthetic"], recipe["epochs"]
    pixels, texts = draw_synthetic(recipe, n + SYNTH_VALIDATION, progress, stop)

    def on_epoch(epoch: int, of: int, m: dict[str, float]) -> None:
        progress(Progress("pretrain", epoch, of, _curve(m), f"pretraining, epoch {epoch}"))

    progress(Progress("pretrain", 0, epochs, message="pretraining on synthetic plates"))
    model = crnn.new_model(recipe["seed"])
    settings = crnn.FitSettings(epochs=epochs, batch_size=recipe["batch_size"], lr=recipe["lr"],
                                patience=PRETRAIN_PATIENCE, device=device, seed=recipe["seed"])  # fmt: skip
    fitted = crnn.fit(model, pixels[:n], texts[:n], pixels[n:], texts[n:], settings,
                      on_epoch=on_epoch, on_step=stop)  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
    try:
        crnn.save_weights(model, tmp / "weights.pt")
        keep = np.random.default_rng(recipe["seed"]).permutation(n)[: min(n, REPLAY)]
        np.savez(tmp / "replay.npz", pixels=pixels[keep], texts=np.array([texts[i] for i in keep]))
        (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True))
        (tmp / "metrics.json").write_text(json.dumps(
            {**fitted.best, "best_epoch": fitted.best_epoch, "seconds": fitted.seconds},
            indent=2, sort_keys=True))  # fmt: skip
        try:
            os.rename(tmp, cache)
        except OSError:
            if not (cache / "weights.pt").is_file():  # not another run that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- evaluation ---------------------------------------------------------------------------


def _evaluate(model: Path, serving: dict[str, Any], held: Crops) -> dict[str, Any]:
    """Scores of an ONNX CRNN on the held-out crops, served as the engine serves it."""
    recognizer = crnn_recognizer(model, serving, threads=None)
    readings = recognizer.read(held.images)
    return score([r.text for r in readings], held.texts)


def _evaluate_champion(champion: Any, held: Crops) -> dict[str, Any]:
    if champion is None:
        return {}
    try:
        return {"version": champion.version,
                **_evaluate(champion.path / "model.onnx", champion.serving, held)}  # fmt: skip
    except (WorkbenchError, OSError, ValueError, KeyError, TypeError) as exc:
        message = getattr(exc, "message", str(exc))
        log.warning("the champion %s cannot be measured: %s", champion.version, message)
        return {"version": champion.version, "error": message}


def _evaluate_rapidocr(held: Crops) -> dict[str, Any]:
    try:
        recognizer = rapidocr_recognizer()
        readings = recognizer.read(held.images)
        return {"version": rapidocr_version(),
                **score([r.text for r in readings], held.texts)}  # fmt: skip
    except EngineUnavailable as exc:
        return {"error": exc.message}


def _decide(config: JobConfig, metrics: dict[str, Any], champion: Any,
            champion_metrics: dict[str, Any], baselines: dict[str, Any]) -> tuple[bool, str]:  # fmt: skip
    """(promote?, why) by the rule in the module docstring."""
    ours = f"exact {metrics['exact_match']:.3f}, CER {metrics['cer']:.3f}"
    if not config.promote:
        return False, f"was not promoted, as asked ({ours})"
    if champion is not None and "error" not in champion_metrics:
        theirs = f"exact {champion_metrics['exact_match']:.3f}, CER {champion_metrics['cer']:.3f}"
        if better(metrics, champion_metrics):
            return (
                True,
                f"beat the champion {champion.version} on held-out crops ({ours} vs {theirs})",
            )
        return False, f"did not beat the champion {champion.version} ({ours} vs {theirs})"
    rapid = baselines.get("rapidocr", {})
    if "error" in rapid:
        return True, f"is the first plate reader, and rapidocr cannot run here to compare ({ours})"
    theirs = f"exact {rapid['exact_match']:.3f}, CER {rapid['cer']:.3f}"
    if not better(rapid, metrics):
        return True, f"reads held-out crops at least as well as rapidocr ({ours} vs {theirs})"
    return False, (f"reads held-out crops worse than rapidocr, which keeps pre-labeling "
                   f"({ours} vs {theirs})")  # fmt: skip


def _summary(version: str, promoted: bool, reason: str, metrics: dict[str, Any],
             previous: str | None) -> str:  # fmt: skip
    if promoted:
        head = f"Plate reader {version} is now the champion"
    elif previous:
        head = f"Plate reader {version} was registered; the champion {previous} stays"
    else:
        head = f"Plate reader {version} was registered; rapidocr keeps pre-labeling"
    return f"{head}: it {reason}, measured on {metrics.get('n', 0)} held-out crops."


def _collapse_message(m: dict[str, Any], recipe: dict[str, Any]) -> str:
    empty = round(m["empty"] * m["n"])
    hint = ("Keep the synthetic pretraining on (it is off: synthetic 0) or label more plates."
            if recipe["recipe"]["synthetic"] == 0
            else "Label more plates, check the labels for signs and typos, and train again.")  # fmt: skip
    return (
        f"The plate reader collapsed to blanks: after training it reads nothing on {empty} "
        f"of {m['n']} held-out crops (a known failure of CTC models trained on too little "
        f"data). Nothing was registered. {hint}"
    )
