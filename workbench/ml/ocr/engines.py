"""Which OCR engine reads the plates, loaded once per process and picked by name.

Engines (`--engine`):
  crnn       the project's trained CRNN champion, when one exists (see below)
  rapidocr   rapidocr-onnxruntime's PP-OCRv4 recognizer, shipped in its wheel
  paddleocr  a PaddleOCR recognition model the user keeps locally: project.toml
             `[plates] paddleocr_dir = "..."`, a folder holding the model as ONNX
             (`*.onnx`, e.g. from paddle2onnx) and its character dictionary (`*dict*.txt`)
  auto       crnn when a champion loads, else rapidocr

A trained CRNN champion follows the predictor's layout (predict.py):

    <models_dir>/ocr/champion.json   {"version": "v2", "alphabet": "0123...XYZ",
                                      "input_shape": [1, 32, 128], "mean": 0.5, "std": 0.5}
    <models_dir>/ocr/v2/model.onnx   input float32 [n, C, H, W]; output [n, T, 1 + len(alphabet)]
                                     probabilities or logits, class 0 the CTC blank

C is 1 (grey) or 3 (RGB); pixels are scaled (x / 255 - mean) / std; crops are resized
to H x W. The pointer is looked at at most once a second, so a new champion is served
without a restart. `OcrEngines.read` never raises for one bad crop: its result carries
an `error` and the others are still read.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.images import load_image
from workbench.ml import opencv
from workbench.ml.ocr.rapid import (
    CtcDecoder,
    CtcRecognizer,
    EngineUnavailable,
    Reading,
    as_probabilities,
    default_threads,
    onnx_session,
    rapidocr_recognizer,
    rapidocr_version,
)
from workbench.ml.predict import PlateReading

log = logging.getLogger(__name__)

ENGINES = ("auto", "crnn", "rapidocr", "paddleocr")
CHAMPION_FILE = "champion.json"
OCR_KIND = "ocr"
MAX_CROP_SIDE = 2048  # a crop is read at 48 px high: no need to decode more
CHECK_INTERVAL_S = 1.0
_VERSION_RE = re.compile(r"^v[1-9][0-9]*$")


@dataclass(frozen=True)
class PlateResult(PlateReading):
    """A PlateReading plus what the CLI reports: the model's raw text, time and any error."""

    image: str = ""
    raw_text: str = ""
    ms: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """One entry of `workbench ocr --json` (ARCHITECTURE.md, Command-line conventions)."""
        d = asdict(self)
        return {"image": d["image"], "text": d["text"], "raw_text": d["raw_text"],
                "confidence": d["confidence"], "char_confidences": d["char_confidences"],
                "engine": d["engine"], "model_version": d["version"], "ms": d["ms"],
                "error": d["error"]}  # fmt: skip


class Recognizer(Protocol):
    def read(self, images: Sequence[np.ndarray]) -> list[Reading]: ...


@dataclass(frozen=True)
class Engine:
    """A loaded engine: its name, model version and recognizer."""

    name: str
    version: str
    recognizer: Recognizer


def crnn_pixels(images: Sequence[np.ndarray], shape: Sequence[int]) -> np.ndarray:
    """BGR uint8 crops as the CRNN sees them: uint8 [n, C, H, W], each crop resized to
    H x W (area interpolation), grey when C is 1, else RGB.

    Training prepares its crops with this same function, so a model is served exactly
    as it was trained.
    """
    cv2 = opencv.cv2()
    channels, height, width = (int(v) for v in shape)
    batch = np.empty((len(images), channels, height, width), np.uint8)
    for n, img in enumerate(images):
        small = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        if channels == 1:
            batch[n, 0] = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        else:
            batch[n] = small[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB, CHW
    return batch


class CrnnRecognizer:
    """The trained CRNN champion (contract in the module docstring).

    Thread-safe: onnxruntime's session is, and nothing else is shared. `read` takes any
    number of crops and runs them `batch_size` at a time; every reading carries
    per-character confidences from the CTC output (rapid.CtcDecoder).
    """

    def __init__(self, session: Any, alphabet: str, shape: Sequence[int], mean: float,
                 std: float, *, batch_size: int = 64) -> None:  # fmt: skip
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.shape = tuple(int(v) for v in shape)
        self.channels, self.height, self.width = self.shape
        self.mean, self.std = mean, std
        self.batch_size = max(1, batch_size)
        self.decoder = CtcDecoder(list(alphabet))

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The model's per-time-step class probabilities [n, T, 1 + len(alphabet)]."""
        scale = np.float32(1.0 / (255.0 * self.std))
        outs = []
        for start in range(0, len(images), self.batch_size):
            pixels = crnn_pixels(images[start : start + self.batch_size], self.shape)
            batch = pixels.astype(np.float32) * scale - np.float32(self.mean / self.std)
            outs.append(np.asarray(self.session.run(None, {self.input_name: batch})[0], np.float32))
        if not outs:
            return np.zeros((0, 1, len(self.decoder.characters)), np.float32)
        return as_probabilities(np.concatenate(outs))

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        """Readings in input order; images are H x W x 3 BGR uint8 arrays."""
        if not images:
            return []
        return self.decoder.decode(self.probabilities(images))


def load_crnn(models_dir: Path | None, threads: int | None) -> Engine:
    """The project's CRNN champion; EngineUnavailable says why there is none."""
    folder = None if models_dir is None else models_dir / OCR_KIND
    pointer = None if folder is None else folder / CHAMPION_FILE
    if pointer is None or not pointer.is_file():
        raise EngineUnavailable(
            "This project has no trained plate OCR model yet (no "
            f"{pointer or 'models/<project>/ocr/champion.json'}). Label plates, train the "
            "CRNN from the training panel, or use --engine rapidocr."
        )
    try:
        info = json.loads(pointer.read_text(encoding="utf-8"))
        version = str(info["version"])
        if not _VERSION_RE.match(version):
            raise ValueError(f"version {version!r} is not v<N>")
        model = (folder / version / "model.onnx").resolve()  # type: ignore[operator]
        if not model.is_relative_to(folder.resolve()) or not model.is_file():  # type: ignore[union-attr]
            raise FileNotFoundError(f"{model} is missing")
        return Engine("crnn", version, crnn_recognizer(model, info, threads))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineUnavailable(
            f"The plate OCR champion in {folder} cannot be used: {exc}."
        ) from exc


def crnn_recognizer(model: Path, serving: dict[str, Any], threads: int | None) -> CrnnRecognizer:
    """A CrnnRecognizer for `model` (an ONNX file) with its serving fields (alphabet,
    input_shape, mean, std: the champion pointer's, or a version's serving.json).

    ValueError / KeyError / TypeError when the fields are not usable; EngineUnavailable
    when the model does not load.
    """
    alphabet = str(serving["alphabet"])
    shape = [int(v) for v in serving.get("input_shape", [1, 32, 128])]
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1 or not alphabet:
        raise ValueError(f"input_shape {shape} / alphabet {alphabet!r} not usable")
    mean, std = float(serving.get("mean", 0.5)), float(serving.get("std", 0.5))
    if not std > 0:
        raise ValueError(f"std {std} is not positive")
    return CrnnRecognizer(onnx_session(model, threads), alphabet, shape, mean, std)


def load_paddleocr(folder: Path | None, threads: int | None) -> Engine:
    """A local PaddleOCR recognition model (ONNX + dictionary) served by onnxruntime."""
    if folder is None:
        raise EngineUnavailable(
            "PaddleOCR is not set up for this project. Put a PaddleOCR recognition model "
            "(exported to ONNX, with its dictionary .txt) in a folder and add "
            '[plates] paddleocr_dir = "/path/to/folder" to the project\'s project.toml.'
        )
    if not folder.is_dir():
        raise EngineUnavailable(
            f"The PaddleOCR model folder {folder} (project.toml) does not exist."
        )
    models = sorted(folder.glob("*.onnx"))
    if not models:
        native = any(folder.glob("*.pdmodel")) or any(folder.glob("*.pdiparams"))
        hint = (" It holds a Paddle inference model; convert it with paddle2onnx "
                "(paddle2onnx --model_dir DIR --save_file DIR/model.onnx).") if native else ""  # fmt: skip
        raise EngineUnavailable(f"No ONNX recognition model (*.onnx) in {folder}.{hint}")
    session = onnx_session(models[0], threads)
    dicts = sorted(p for p in folder.glob("*.txt") if "dict" in p.name.lower())
    meta = session.get_modelmeta().custom_metadata_map
    if dicts:
        characters = dicts[0].read_text(encoding="utf-8").splitlines()
    elif "character" in meta:
        characters = meta["character"].splitlines()
    else:
        raise EngineUnavailable(f"No character dictionary (*dict*.txt) beside {models[0]}.")
    k = session.get_outputs()[0].shape[-1]
    if isinstance(k, int) and k == len(characters) + 2:
        characters = [*characters, " "]  # trained with use_space_char
    dims = session.get_inputs()[0].shape
    height = dims[2] if len(dims) == 4 and isinstance(dims[2], int) else 48
    return Engine("paddleocr", f"{models[0].parent.name}/{models[0].name}",
                  CtcRecognizer(session, characters, height=height))  # fmt: skip


class OcrEngines:
    """Loads engines on first use (thread-safe) and reads crops with the one asked for."""

    def __init__(self, models_dir: Path | None, *, paddleocr_dir: Path | None = None,
                 threads: int | None = None) -> None:  # fmt: skip
        self.models_dir = models_dir
        self.paddleocr_dir = paddleocr_dir
        self.threads = threads
        self._lock = threading.Lock()
        self._loaded: dict[str, Engine] = {}
        self._crnn_stamp: tuple[int, int] | None = None
        self._crnn_broken: tuple[int, int] | None = None  # the stamp whose champion failed
        self._next_check = 0.0

    def get(self, name: str = "auto") -> Engine:
        """The engine `name` (auto: crnn when a champion loads, else rapidocr), loaded."""
        if name not in ENGINES:
            raise WorkbenchError(f"Unknown OCR engine {name!r}; use one of {', '.join(ENGINES)}.",
                                 code="invalid_input")  # fmt: skip
        with self._lock:
            self._check_champion()
            if name == "auto":
                if self._crnn_stamp is not None and self._crnn_broken != self._crnn_stamp:
                    try:
                        return self._load("crnn")
                    except EngineUnavailable as exc:
                        self._crnn_broken = self._crnn_stamp
                        log.warning("%s Using rapidocr.", exc.message)
                name = "rapidocr"
            return self._load(name)

    def reload(self) -> None:
        """Look at the CRNN champion pointer on the next call (not waiting a second)."""
        with self._lock:
            self._next_check = 0.0

    def available(self) -> list[str]:
        """The engines (not auto) that load here."""
        out = []
        for name in ENGINES[1:]:
            try:
                self.get(name)
                out.append(name)
            except EngineUnavailable:
                continue
        return out

    def read(self, paths: Sequence[Path | str], engine: str = "auto", *,
             batch_size: int = 64) -> list[PlateResult]:  # fmt: skip
        """One result per path, input order; `ms` is decode + inference, loading excluded."""
        loaded = self.get(engine)
        results: list[PlateResult | None] = [None] * len(paths)
        for start in range(0, len(paths), max(1, batch_size)):
            images: dict[int, np.ndarray] = {}
            spent: dict[int, float] = {}
            for i in range(start, min(len(paths), start + batch_size)):
                began = time.perf_counter()
                try:
                    images[i] = load_crop(paths[i])
                except WorkbenchError as exc:
                    results[i] = _failed(paths[i], loaded, exc.message, began)
                spent[i] = (time.perf_counter() - began) * 1000
            for i, reading, ms in _recognize(loaded, images):
                results[i] = PlateResult(reading.text, reading.confidence,
                                         reading.char_confidences, loaded.name, loaded.version,
                                         image=str(paths[i]), raw_text=reading.raw_text,
                                         ms=round(spent[i] + ms, 3))  # fmt: skip
            for i, message in _errors_of(images, results):
                results[i] = _failed(paths[i], loaded, message, time.perf_counter())
        return [r for r in results if r is not None]

    def _check_champion(self) -> None:
        now = time.monotonic()
        if now < self._next_check or self.models_dir is None:
            return
        self._next_check = now + CHECK_INTERVAL_S
        try:
            st = (self.models_dir / OCR_KIND / CHAMPION_FILE).stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._crnn_stamp:
            self._crnn_stamp = stamp
            self._loaded.pop("crnn", None)  # a new champion: load it on next use

    def _load(self, name: str) -> Engine:
        if name not in self._loaded:
            if name == "rapidocr":
                rec = rapidocr_recognizer(threads=self.threads)
                self._loaded[name] = Engine("rapidocr", rapidocr_version(), rec)
            elif name == "crnn":
                self._loaded[name] = load_crnn(self.models_dir, self.threads)
            else:
                self._loaded[name] = load_paddleocr(self.paddleocr_dir, self.threads)
            # The first run of a session plans its graph: do it now, not on the user's crop.
            self._loaded[name].recognizer.read([np.full((48, 160, 3), 255, np.uint8)])
            log.info("plate OCR engine %s %s loaded", name, self._loaded[name].version)
        return self._loaded[name]


def load_crop(path: Path | str) -> np.ndarray:
    """A crop as a BGR uint8 array (EXIF applied); UnreadableImage (a sentence) if it cannot be."""
    image = load_image(path, max_side=MAX_CROP_SIDE)
    if min(image.size) < 2:
        raise WorkbenchError(f"Cannot read {path}: {image.width}x{image.height} px is too small "
                             "to hold a plate.", code="unreadable_image")  # fmt: skip
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _recognize(engine: Engine, images: dict[int, np.ndarray]) -> list[tuple[int, Reading, float]]:
    """(index, reading, ms share) for the images; a failing batch is retried crop by crop."""
    if not images:
        return []
    keys = list(images)
    began = time.perf_counter()
    try:
        readings = engine.recognizer.read([images[i] for i in keys])
    except Exception as exc:  # one odd crop must not cost the batch
        if len(keys) == 1:
            log.warning("OCR failed on one crop: %s", exc)
            return []
        return [r for i in keys for r in _recognize(engine, {i: images[i]})]
    share = (time.perf_counter() - began) * 1000 / len(keys)
    return [(i, r, share) for i, r in zip(keys, readings, strict=True)]


def _errors_of(
    images: dict[int, np.ndarray], results: list[PlateResult | None]
) -> list[tuple[int, str]]:
    return [(i, "The OCR engine failed on this crop; see the log for the details.")
            for i in images if results[i] is None]  # fmt: skip


def _failed(path: Path | str, engine: Engine, message: str, began: float) -> PlateResult:
    ms = round((time.perf_counter() - began) * 1000, 3)
    return PlateResult("", 0.0, [], engine.name, engine.version, image=str(path), ms=ms,
                       error=message)  # fmt: skip


_shared: dict[tuple[Path | None, Path | None], OcrEngines] = {}
_shared_lock = threading.Lock()


def shared_engines(models_dir: Path | None, paddleocr_dir: Path | None = None) -> OcrEngines:
    """The process's OcrEngines for a project (models are loaded once per process)."""
    key = (models_dir, paddleocr_dir)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = OcrEngines(models_dir, paddleocr_dir=paddleocr_dir,
                                      threads=default_threads())  # fmt: skip
        return _shared[key]
