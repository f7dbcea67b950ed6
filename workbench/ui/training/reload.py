"""What to reload after a champion changes, so the next pick or plate read serves it at once.

The predictors and the OCR engines look at the champion pointers at most once a second
by themselves; these callables make them look now. They run off the GUI thread (loading
an ONNX model takes a moment) and import no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def ocr_reloader(models_dir: Path, paddleocr_dir: Path | None) -> Callable[[], None]:
    """Makes the process's shared OCR engines for this project re-read the CRNN champion."""

    def reload() -> None:
        from workbench.ml.ocr.engines import shared_engines

        shared_engines(models_dir, paddleocr_dir).reload()

    return reload


def champion_reloaders(models_dir: Path, predictors: list[Any],
                       paddleocr_dir: Path | None = None) -> list[Callable[[], object]]:  # fmt: skip
    """Reload calls for `predictors` (ml.predict.Predictor) and the shared OCR engines."""
    return [*(p.reload for p in predictors), ocr_reloader(models_dir, paddleocr_dir)]
