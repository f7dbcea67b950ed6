"""The one predictor interface the GUI and the CLI use: which image to keep, and its crop.

`Predictor.pick(paths)` scores a group of 1-4 images and proposes a crop for the chosen
one. Each image's features (features.py) come from an in-memory cache, the project
database or, once, from its ThumbnailCache thumbnail. The scores come from the
project's trained ranker when one is champion, else from the transparent heuristics
(heuristics.py); likewise the crop.

Trained champions (written by the model registry, issue 6) live under the project's
model folder:

    <models_dir>/<kind>/champion.json      {"version": "v3", "feature_version": "f1"}
    <models_dir>/<kind>/v3/model.onnx

for kind "ranker" (input float32 [n, F] features of a group, output [n] or [n, 1]
logits, softmax at temperature 1) and "crop" (input [1, F], output [1, 4] normalized
x1, y1, x2, y2; an optional second output [1] or [1, 1] is its confidence). Kind
"smartcrop" is `v<N>/model.json`, crop statistics (training/smartcrop.py): with no crop
champion, it adjusts the heuristic's crop and the crop's version reads "smartcrop". F is
len(FEATURE_NAMES) and the champion's feature_version must equal FEATURE_VERSION.
The pointer's mtime is checked at most once a second, so a new champion is served
without a restart. onnxruntime is imported only when a champion exists: this module
never imports torch, and with no trained model it imports no ML runtime at all.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.content_key import content_key
from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput, WorkbenchError
from workbench.core.thumbs import ThumbnailCache
from workbench.ml import heuristics
from workbench.ml.features import (
    FEATURE_NAMES,
    FEATURE_SIDE,
    FEATURE_VERSION,
    FeatureStore,
    compute_features,
)

log = logging.getLogger(__name__)

MAX_GROUP = 4
KINDS = ("ranker", "crop", "smartcrop")
SMARTCROP_VERSION = "smartcrop"
CHAMPION_FILE = "champion.json"
CHECK_INTERVAL_S = 1.0
_VERSION_RE = re.compile(r"^v[1-9][0-9]*$")
_FEATURE_MEMORY = 8192  # vectors kept in memory (~100 bytes each)
_FORCE = (-1, -1)  # a pointer stamp no file has: the next refresh re-reads the pointer


@dataclass(frozen=True)
class Pick:
    """The AI's choice for a group: per-image scores, the pick, its crop and model versions.

    `scores` are in input order and sum to 1 (all 0 when no image could be read);
    `confidence` is the highest score. `crop` is on the selected image (None when
    the selected image has nothing worth cutting, or nothing could be read).
    `unreadable` maps the index of each image that could not be read to a sentence.
    """

    selected_index: int
    scores: list[float]
    confidence: float
    crop: CropBox | None
    versions: dict[str, str]
    crop_confidence: float | None = None
    unreadable: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The `workbench predict --json` document (ARCHITECTURE.md, Command-line conventions)."""
        return {
            "selected_index": self.selected_index,
            "scores": list(self.scores),
            "confidence": self.confidence,
            "crop": None if self.crop is None else self.crop.to_list(),
            "models": {"ranker": self.versions["ranker"], "crop": self.versions["crop"]},
        }

    def to_json(self) -> str:
        """to_dict() as a JSON string."""
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class PlateReading:
    """One plate crop read by OCR: text A-Z0-9, confidences, and which engine read it."""

    text: str
    confidence: float
    char_confidences: list[float]
    engine: str
    version: str


@dataclass
class _Champion:
    """A loaded ONNX champion of one kind."""

    version: str
    session: Any
    input_name: str


@dataclass
class _Slot:
    """What is known about one kind's champion pointer."""

    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of champion.json when last read
    champion: _Champion | None = None


FeatureStoreFactory = Callable[[], FeatureStore]


class Predictor:
    """Picks the keeper of a group and proposes its crop; thread-safe, never raises per file.

    `models_dir` is the project's model folder (Project.models_dir), or None for the
    heuristics alone. `thumbs` supplies the feature-size thumbnails (a memory-only cache
    when omitted). `feature_store_factory` makes a FeatureStore on a connection of the
    calling thread; it is called once per thread that picks (omitted: no database cache).
    The champion pointers are looked at at most every `check_interval_s` seconds.
    """

    def __init__(
        self,
        models_dir: Path | None,
        *,
        thumbs: ThumbnailCache | None = None,
        feature_store_factory: FeatureStoreFactory | None = None,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self.models_dir = models_dir
        self.check_interval_s = check_interval_s
        self.thumbs = thumbs if thumbs is not None else ThumbnailCache(None)
        self._store_factory = feature_store_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._slots = {kind: _Slot() for kind in KINDS}
        self._next_check = 0.0
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()

    # -- public ---------------------------------------------------------------------------

    def pick(self, paths: Sequence[Path | str]) -> Pick:
        """The pick for a group of 1-4 images in group order (one image: its crop, index 0).

        An image that cannot be read scores 0 and is named in Pick.unreadable; it is
        picked only when none can be read (index 0, no crop). Raises InvalidInput only
        for a group of the wrong size.
        """
        if not 1 <= len(paths) <= MAX_GROUP:
            raise InvalidInput(f"A group has 1 to {MAX_GROUP} images, not {len(paths)}.")
        self._maybe_refresh()
        with self._lock:  # one consistent set of models for the whole pick
            ranker, cropper, smart = (self._slots[kind].champion for kind in KINDS)
            versions = self._versions_locked()
        vectors: dict[int, np.ndarray] = {}
        unreadable: dict[int, str] = {}
        for i, path in enumerate(paths):
            try:
                vectors[i] = self.features(Path(path))
            except WorkbenchError as exc:
                unreadable[i] = exc.message
            except OSError as exc:
                unreadable[i] = _os_reason(path, exc)
            except MemoryError:
                raise
            except Exception as exc:  # a decoder or numpy failure on one odd file
                log.exception("could not analyse %s", path)
                unreadable[i] = f"Cannot analyse {path}: {exc}."
        scores = [0.0] * len(paths)
        if not vectors:
            return Pick(0, scores, 0.0, None, versions, None, unreadable)
        order = sorted(vectors)
        for i, p in zip(order, _rank(ranker, [vectors[i] for i in order]), strict=True):
            scores[i] = float(p)
        selected = max(order, key=lambda i: scores[i])
        crop, crop_confidence = _crop(cropper, smart, vectors[selected])
        return Pick(selected, scores, scores[selected], crop, versions, crop_confidence, unreadable)

    def versions(self) -> dict[str, str]:
        """The model versions pick() uses now: {"ranker": "v3" | "heuristic", "crop": ...}."""
        with self._lock:
            return self._versions_locked()

    def _versions_locked(self) -> dict[str, str]:
        ranker, cropper, smart = (self._slots[kind].champion for kind in KINDS)
        crop = (
            cropper.version if cropper else SMARTCROP_VERSION if smart
            else heuristics.HEURISTIC_VERSION
        )  # fmt: skip
        return {"ranker": ranker.version if ranker else heuristics.HEURISTIC_VERSION, "crop": crop}

    def reload(self) -> dict[str, str]:
        """Re-reads the champion pointers now (not waiting for the next check); the versions."""
        with self._lock:
            for slot in self._slots.values():
                slot.stamp = _FORCE
            self._next_check = 0.0
        self._maybe_refresh()
        return self.versions()

    def features(self, path: Path) -> np.ndarray:
        """The image's feature vector (read-only): from memory, the database, or computed.

        Raises UnreadableImage (or OSError) when the image cannot be read.
        """
        key = content_key(path)
        with self._lock:
            vec = self._memory.get(key)
            if vec is not None:
                self._memory.move_to_end(key)
                return vec
        store = self._store()
        vec = None
        if store is not None:
            try:
                vec = store.get(key)
            except sqlite3.Error as exc:
                log.warning("feature cache read failed for %s (%s)", path, exc)
        if vec is None:
            vec = compute_features(self.thumbs.get(path, FEATURE_SIDE))
            if store is not None:
                try:
                    store.put(key, vec)
                except sqlite3.Error as exc:  # e.g. busy: costs a recompute later, nothing else
                    log.warning("feature cache write failed for %s (%s)", path, exc)
        vec.flags.writeable = False  # shared by every later pick of this image
        with self._lock:
            self._memory[key] = vec
            if len(self._memory) > _FEATURE_MEMORY:
                self._memory.popitem(last=False)
        return vec

    def as_proposal_provider(self) -> Callable[[Sequence[Path | str]], Any]:
        """A function paths -> review.AIProposal, for core.review.ReviewSession.

        A group none of whose images can be read gets no pick (selected_index and
        confidence None) rather than a made-up one.
        """
        from workbench.core.review import AIProposal

        def propose(paths: Sequence[Path | str]) -> Any:
            p = self.pick(paths)
            readable = len(p.unreadable) < len(p.scores)
            return AIProposal(
                selected_index=p.selected_index if readable else None,
                scores=list(p.scores),
                confidence=p.confidence if readable else None,
                crop=p.crop,
                ranker_version=p.versions["ranker"],
                crop_version=p.versions["crop"],
            )

        return propose

    def read_plates(
        self,
        paths: Sequence[Path | str],
        engine: str = "auto",
        *,
        paddleocr_dir: Path | None = None,
    ) -> list[PlateReading]:
        """One PlateReading per plate crop, in input order (never raises for one bad crop).

        `engine` is auto | crnn | rapidocr | paddleocr (workbench/ml/ocr/engines.py); the
        readings are engines.PlateResult, which adds raw_text, ms and, for a crop that
        could not be read, error. An engine that cannot run here raises EngineUnavailable.
        """
        from workbench.ml.ocr.engines import shared_engines

        return list(shared_engines(self.models_dir, paddleocr_dir).read(paths, engine))

    def _store(self) -> FeatureStore | None:
        if self._store_factory is None:
            return None
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._store_factory()
        return store

    # -- champions ------------------------------------------------------------------------

    def _maybe_refresh(self) -> None:
        if self.models_dir is None:
            return
        now = time.monotonic()
        with self._lock:
            if now < self._next_check:
                return
            self._next_check = now + self.check_interval_s
            for kind, slot in self._slots.items():
                pointer = self.models_dir / kind / CHAMPION_FILE
                try:
                    st = pointer.stat()
                    stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
                except OSError:
                    stamp = None
                if stamp == slot.stamp:
                    continue
                slot.stamp = stamp
                # Loading happens under the lock: it is rare (a new champion), and a
                # concurrent pick must not see a half-switched pair of models.
                slot.champion = _load_champion(self.models_dir, kind) if stamp else None
                name = slot.champion.version if slot.champion else heuristics.HEURISTIC_VERSION
                log.info("%s model: %s", kind, name)


def _rank(champion: _Champion | None, vectors: list[np.ndarray]) -> np.ndarray:
    """Probabilities for the readable images: the champion ranker's, else the heuristic's."""
    if champion is not None:
        try:
            batch = np.stack(vectors).astype(np.float32)
            out = champion.session.run(None, {champion.input_name: batch})[0]
            logits = np.asarray(out, dtype=np.float64).reshape(len(vectors))
            if np.all(np.isfinite(logits)):
                return heuristics.softmax(logits, temperature=1.0)
            log.warning("ranker %s gave non-finite scores; using the heuristic", champion.version)
        except Exception as exc:  # a broken model must not stop the review
            log.warning("ranker %s failed (%s); using the heuristic", champion.version, exc)
    return heuristics.rank(vectors)


def _crop(
    champion: _Champion | None, smart: _Champion | None, vec: np.ndarray
) -> tuple[CropBox | None, float]:
    """The crop proposal and its confidence: the champion crop model's, else the
    heuristic's (adjusted by the smart-crop statistics when there are some)."""
    if champion is not None:
        try:
            outputs = champion.session.run(
                None, {champion.input_name: vec[None, :].astype(np.float32)}
            )
            box = np.clip(np.asarray(outputs[0], dtype=np.float64).reshape(4), 0.0, 1.0)
            confidence = (
                float(np.clip(np.asarray(outputs[1]).reshape(-1)[0], 0.0, 1.0))
                if len(outputs) > 1
                else heuristics.propose_crop(vec)[1]
            )
            return CropBox.from_seq([round(float(v), 4) for v in box]), confidence
        except Exception as exc:  # includes an empty or inverted box (InvalidInput)
            log.warning("crop model %s failed (%s); using the heuristic", champion.version, exc)
    proposal, confidence = heuristics.propose_crop(vec)
    if smart is not None:
        from workbench.ml.training.smartcrop import suggest

        try:
            proposal, _ = suggest(smart.session, proposal)
        except Exception as exc:  # a hand-edited model must not stop the review
            log.warning("smart-crop %s failed (%s); using the heuristic", smart.version, exc)
    return proposal, confidence


def _load_champion(models_dir: Path, kind: str) -> _Champion | None:
    """The champion named by <kind>/champion.json, or None (with a warning) if unusable."""
    pointer = models_dir / kind / CHAMPION_FILE
    try:
        info = json.loads(pointer.read_text(encoding="utf-8"))
        version = str(info["version"])
        if not _VERSION_RE.match(version):
            raise ValueError(f"version {version!r} is not v<N>")
        if kind == "smartcrop":
            from workbench.ml.training.smartcrop import MODEL_FILE, load_model

            folder = (models_dir / kind / version).resolve()
            if not folder.is_relative_to((models_dir / kind).resolve()):
                raise ValueError(f"{folder} lies outside {models_dir / kind}")
            return _Champion(version=version, session=load_model(folder / MODEL_FILE), input_name="")
        if info.get("feature_version", FEATURE_VERSION) != FEATURE_VERSION:
            raise ValueError(
                f"it was trained on features {info.get('feature_version')!r}, "
                f"this Workbench computes {FEATURE_VERSION!r}; retrain it"
            )
        model = (models_dir / kind / version / "model.onnx").resolve()
        if not model.is_relative_to((models_dir / kind).resolve()) or not model.is_file():
            raise FileNotFoundError(f"{model} is missing")
        import onnxruntime  # only here: no champion, no ML runtime in the process

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # tiny models; prefetch threads run in parallel
        session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        first = session.get_inputs()[0]
        width = first.shape[-1] if first.shape else None
        if isinstance(width, int) and width != len(FEATURE_NAMES):
            raise ValueError(f"it takes {width} features, not {len(FEATURE_NAMES)}")
    except Exception as exc:  # any bad pointer or model file: keep serving the heuristic
        log.warning("ignoring the %s champion in %s: %s", kind, pointer.parent, exc)
        return None
    return _Champion(version=version, session=session, input_name=first.name)


def _os_reason(path: Path | str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"Cannot load {path}: missing: the file does not exist (any more)."
    return f"Cannot load {path}: unreadable: {exc.strerror or exc}."
