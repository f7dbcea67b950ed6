"""A PP-OCR style CTC text recognizer on onnxruntime, and rapidocr's packaged one.

`rapidocr_recognizer()` serves the PP-OCRv4 recognition model that the
rapidocr-onnxruntime wheel ships (its config.yaml's `Rec` section names the file and the
input shape; the character list is in the model's metadata). Only the recognizer runs,
on the whole plate crop: no text detector, no angle classifier, so a crop costs a few
milliseconds. rapidocr's own package is never imported (that would load its detector
stack too); its folder is only located and read.

Decoding is greedy CTC over the model's full character set, with two plate-specific
changes: upper and lower case of a letter count as one character (their probabilities
added), and the reading keeps per-character confidences (the highest probability over
the time steps a character spans). `text` holds A-Z and 0-9 only; `raw_text` is what
the model read, every character included. A `CtcRecognizer` is thread-safe: the
onnxruntime session is, and nothing else is shared.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.ml import opencv

PLATE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RAPIDOCR_PACKAGE = "rapidocr_onnxruntime"
RAPIDOCR_DIST = "rapidocr-onnxruntime"
MAX_WIDTH_RATIO = 32.0  # wider crops are squeezed: bounds the memory of one batch
# Crops per onnxruntime call. PP-OCRv4's recognizer is memory-bound on a CPU: 64 crops in
# one call cost about 2.5x more per crop than calls of 8 (benchmarks/bench_ocr.py), so a
# request of any size is run as calls of this many crops of similar width.
MICRO_BATCH = 8


@dataclass(frozen=True)
class Reading:
    """One crop read: A-Z0-9 text, what the model saw, and how sure it is (0-1)."""

    text: str
    raw_text: str
    confidence: float
    char_confidences: list[float]


class EngineUnavailable(WorkbenchError):
    """An OCR engine that cannot run here, with a sentence saying what to do."""

    code = "engine_unavailable"


class CtcDecoder:
    """Greedy CTC decoding of [n, T, K] probabilities; class 0 is the blank.

    `characters[i]` is the character of class i + 1. Letters of either case fold into
    one upper-case plate character; classes that are not A-Z/0-9 still win time steps
    (so they separate characters) but are left out of `text`.
    """

    def __init__(self, characters: Sequence[str]) -> None:
        self.characters = ["", *characters]
        upper = np.full(len(PLATE_ALPHABET), -1)
        lower = np.full(len(PLATE_ALPHABET), -1)
        for k, ch in enumerate(self.characters):
            if ch and ch in PLATE_ALPHABET:
                upper[PLATE_ALPHABET.index(ch)] = k
            elif ch and ch.isascii() and ch.upper() in PLATE_ALPHABET and ch.isalpha():
                lower[PLATE_ALPHABET.index(ch.upper())] = k
        self._has = upper >= 0
        self._upper, self._lower = np.maximum(upper, 0), np.maximum(lower, 0)
        self._lower_mask = (lower >= 0).astype(np.float32)
        plate_classes = np.zeros(len(self.characters), dtype=bool)
        plate_classes[0] = True
        plate_classes[upper[upper >= 0]] = True
        plate_classes[lower[lower >= 0]] = True
        self._plate_class = plate_classes

    def decode(self, probs: np.ndarray) -> list[Reading]:
        """Readings of a batch of per-time-step class probabilities [n, T, K]."""
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 3 or probs.shape[2] < len(self.characters):
            raise ValueError(
                f"recognizer output {probs.shape} does not fit {len(self.characters)} classes"
            )
        raw_idx = probs.argmax(axis=2)  # [n, T]
        raw_p = np.take_along_axis(probs, raw_idx[..., None], axis=2)[..., 0]
        folded = probs[..., self._upper] + probs[..., self._lower] * self._lower_mask
        folded = np.where(self._has, folded, 0.0)  # [n, T, 36]
        other_idx = raw_idx >= len(self.characters)
        other = ~self._plate_class[np.minimum(raw_idx, len(self.characters) - 1)] | other_idx
        # Candidates per time step: blank, the 36 plate characters, the best other class.
        scores = np.concatenate(
            [probs[..., :1], folded, np.where(other, raw_p, -1.0)[..., None]], axis=2
        )
        labels = scores.argmax(axis=2)  # 0 blank, 1..36 plate character, 37 other
        return [self._reading(labels[i], folded[i], raw_idx[i]) for i in range(len(probs))]

    def _reading(self, labels: np.ndarray, folded: np.ndarray, raw_idx: np.ndarray) -> Reading:
        chars: list[str] = []
        confs: list[float] = []
        previous = -1
        for t, label in enumerate(labels.tolist()):
            if 1 <= label <= len(PLATE_ALPHABET):
                p = float(folded[t, label - 1])
                if label == previous:
                    confs[-1] = max(confs[-1], p)
                else:
                    chars.append(PLATE_ALPHABET[label - 1])
                    confs.append(p)
            previous = label
        raw: list[str] = []
        previous = -1
        for k in raw_idx.tolist():
            if k != previous and 0 < k < len(self.characters):
                raw.append(self.characters[k])
            previous = k
        confs = [round(min(1.0, c), 4) for c in confs]
        confidence = round(float(np.mean(confs)), 4) if confs else 0.0
        return Reading("".join(chars), "".join(raw), confidence, confs)


def as_probabilities(out: np.ndarray) -> np.ndarray:
    """`out` when its last axis already holds probabilities, else its softmax."""
    sums = out.sum(axis=-1)
    if out.min() >= 0 and np.allclose(sums, 1.0, atol=1e-2):
        return out
    shifted = out - out.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def onnx_session(model: Path, threads: int | None) -> Any:
    """An onnxruntime CPU session for `model` (EngineUnavailable when it cannot load)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise EngineUnavailable(
            "onnxruntime is not installed; reinstall Workbench (pip install onnxruntime)."
        ) from exc
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False  # batches vary in width: an arena only grows
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # a damaged or foreign model file
        raise EngineUnavailable(f"Cannot load the OCR model {model}: {exc}") from exc


class CtcRecognizer:
    """Text-line recognizer: BGR uint8 crops in, Readings out (thread-safe).

    Crops are resized to `height` keeping their aspect ratio, scaled to [-1, 1] and
    right-padded to the widest crop of their batch (at least `min_width`), the way
    PaddleOCR prepares recognition input. `read` takes any number of crops and runs
    them `batch_size` at a time, sorted by aspect ratio so a call pads little.
    """

    def __init__(self, session: Any, characters: Sequence[str], *, height: int = 48,
                 min_width: int = 320, batch_size: int = MICRO_BATCH) -> None:  # fmt: skip
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.decoder = CtcDecoder(characters)
        self.height, self.min_width, self.batch_size = height, min_width, max(1, batch_size)

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        """Readings in input order; images are H x W x 3 BGR uint8 arrays."""
        for img in images:
            if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 2:
                raise ValueError(
                    f"a crop must be an H x W x 3 image of at least 2 px, not {img.shape}"
                )
        ratios = [img.shape[1] / img.shape[0] for img in images]
        order = np.argsort(ratios, kind="stable")  # similar widths share a batch
        out: list[Reading | None] = [None] * len(images)
        for start in range(0, len(images), self.batch_size):
            chunk = [int(i) for i in order[start : start + self.batch_size]]
            batch = self._batch([images[i] for i in chunk], max(ratios[i] for i in chunk))
            probs = self.session.run(None, {self.input_name: batch})[0]
            for i, reading in zip(chunk, self.decoder.decode(as_probabilities(probs)), strict=True):
                out[i] = reading
        return [r for r in out if r is not None]

    def _batch(self, images: list[np.ndarray], max_ratio: float) -> np.ndarray:
        cv2 = opencv.cv2()
        h = self.height
        width = max(self.min_width, int(math.ceil(h * min(max_ratio, MAX_WIDTH_RATIO))))
        batch = np.zeros((len(images), 3, h, width), dtype=np.float32)
        for n, img in enumerate(images):
            w = min(width, int(math.ceil(h * img.shape[1] / img.shape[0])))
            resized = cv2.resize(img, (w, h)).astype(np.float32)
            batch[n, :, :, :w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        return batch


# -- rapidocr's packaged model ---------------------------------------------------------


def rapidocr_folder() -> Path:
    """The installed rapidocr_onnxruntime package folder (the package is not imported)."""
    spec = importlib.util.find_spec(RAPIDOCR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(
            "The rapidocr engine needs the rapidocr-onnxruntime package: "
            "pip install 'rapidocr-onnxruntime>=1.4,<1.5'."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def rapidocr_version() -> str:
    """The model version string: the recognizer's file stem and the wheel's version."""
    try:
        dist = metadata.version(RAPIDOCR_DIST)
    except metadata.PackageNotFoundError:
        dist = "unknown"
    return f"{_rec_config(rapidocr_folder())[0].stem}@rapidocr-onnxruntime-{dist}"


def _rec_config(folder: Path) -> tuple[Path, list[int]]:
    import yaml  # a dependency of rapidocr-onnxruntime

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
        rec = config["Rec"]
        return folder / str(rec["model_path"]), [int(v) for v in rec["rec_img_shape"]]
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise EngineUnavailable(
            f"The rapidocr-onnxruntime installation in {folder} looks damaged ({exc}); "
            "reinstall it."
        ) from exc


def rapidocr_recognizer(
    *, threads: int | None = None, batch_size: int = MICRO_BATCH
) -> CtcRecognizer:
    """rapidocr's PP-OCRv4 recognizer, loaded from the installed wheel (no download)."""
    model, shape = _rec_config(rapidocr_folder())
    if not model.is_file():
        raise EngineUnavailable(f"rapidocr's recognition model {model} is missing; reinstall it.")
    session = onnx_session(model, threads)
    meta = session.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise EngineUnavailable(
            f"{model} carries no character list; reinstall rapidocr-onnxruntime."
        )
    characters = [*meta["character"].splitlines(), " "]  # PaddleOCR appends the space class
    return CtcRecognizer(session, characters, height=shape[1], min_width=shape[2],
                         batch_size=batch_size)  # fmt: skip


def default_threads() -> int:
    """onnxruntime threads for a background reader: the cores but one, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))
