"""Where the plates view's pre-labels come from: a reader run on a worker thread.

A reader takes a few crop paths and returns one PlateReading-like result per path (text,
confidence, char_confidences, engine; `image` and `error` as in ml.ocr.engines.PlateResult).
The default reads through the predictor interface: onnxruntime only, no torch, no Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.core.plates import Prelabel
from workbench.core.project import Project

Reader = Callable[[list[Path]], Sequence[Any]]
NO_PRELABEL = Prelabel("", 0.0, "")  # the crop was read and nothing came of it


def predictor_reader(project: Project, engine: str, paddleocr_dir: Path | None) -> Reader:
    """Pre-labels through Predictor.read_plates with the given engine (auto: see engines.py)."""
    from workbench.ml.predict import Predictor

    predictor = Predictor(project.models_dir)
    return lambda paths: predictor.read_plates(paths, engine, paddleocr_dir=paddleocr_dir)


def to_prelabels(paths: Sequence[Path], results: Sequence[Any]) -> list[tuple[Path, Prelabel]]:
    """A Prelabel per path: what was read, or NO_PRELABEL where it failed or was missing."""
    read = {str(getattr(r, "image", "")): r for r in results}
    out = []
    for path in paths:
        r = read.get(str(path))
        if r is None or getattr(r, "error", None):
            out.append((path, NO_PRELABEL))
        else:
            confidences = tuple(float(c) for c in r.char_confidences)
            out.append((path, Prelabel(r.text, float(r.confidence), r.engine, confidences)))
    return out
