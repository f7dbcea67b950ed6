"""What to reload after a champion changes, so the next pick or plate read serves it at once.

The predictors and the OCR engines look at the champion pointers at most once a second
by themselves; these callables make them look now. Each takes the model kind whose
champion moved and reloads only what serves that kind. They run off the GUI thread
(loading an ONNX model takes a moment) and import no torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Reloader = Callable[[str], object]
PICK_KINDS = ("ranker", "crop", "smartcrop")  # what Predictor.pick serves


def predictor_reloader(predictor: Any) -> Reloader:
    """Makes a Predictor (ml.predict) re-read its champion pointers after a pick model moved."""

    def reload(kind: str) -> None:
        if kind in PICK_KINDS:
            predictor.reload()

    return reload


def ocr_reloader(models_dir: Path, paddleocr_dir: Path | None) -> Reloader:
    """Makes this process's shared OCR engines re-read the CRNN champion after it moved.

    When no engine was ever loaded here (the OCR module is not even imported) there is
    nothing to reload: the first plate read will find the new champion.
    """

    def reload(kind: str) -> None:
        engines = sys.modules.get("workbench.ml.ocr.engines")
        if kind == "ocr" and engines is not None:
            engines.shared_engines(models_dir, paddleocr_dir).reload()

    return reload


def warm_up() -> None:
    """Import the ONNX runtime now, on a worker, if it is not yet loaded.

    Its first import holds Python's GIL for tens of milliseconds (the extension module's
    set-up), long enough to stall the GUI thread; the training view calls this when it is
    first shown, so the reload after a new champion (usually the first model this window
    serves) only loads the model.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:  # no runtime: the predictor serves the heuristics
        pass


def champion_reloaders(models_dir: Path, predictors: list[Any],
                       paddleocr_dir: Path | None = None) -> list[Reloader]:  # fmt: skip
    """Reloaders for `predictors` (ml.predict.Predictor) and the shared OCR engines."""
    return [*(predictor_reloader(p) for p in predictors), ocr_reloader(models_dir, paddleocr_dir)]
