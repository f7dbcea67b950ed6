"""The plate reader's training data: labeled crops, the held-out split, readiness, scores.

Torch-free: the GUI imports it for the training panel's status card
(`registry.readiness(project, conn, "ocr")` calls `ocr_readiness`).

A sample is a row of `plate_labels` whose text is a plate (A-Z0-9, at most
MAX_LABEL_LENGTH characters), not `__SKIP__`, and not contaminated by a sign word
(core.plates.contamination, seed 004: "bad labels hurt more than no labels"); a label
with no digit is kept (vanity plates have none). A crop is held out when the project's
frozen split says so (`Registry.split().held_out(image_path)`), so every version of the
reader is measured on the same crops.

Minimums, overridable in project.toml:

    [training]
    min_ocr_labels = 100     # usable labels in all
    min_ocr_held_out = 10    # of them, in the held-out split
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidInput
from workbench.core.plates import DEFAULT_SIGN_WORDS, SKIP, check_text, plate_settings
from workbench.ml.registry import HeldOutSplit, Readiness, Registry
from workbench.ml.training.data import SplitSamples, training_settings

log = logging.getLogger(__name__)

OCR_KIND = "ocr"
MAX_LABEL_LENGTH = 12  # a CTC output of 32 steps reads at most ~16; plates hold <= 8
DEFAULT_OCR_MINIMUMS: dict[str, int] = {"min_ocr_labels": 100, "min_ocr_held_out": 10}
# A model that reads nothing on at least this share of crops has collapsed to blanks.
COLLAPSE_EMPTY_SHARE = 0.9


@dataclass(frozen=True)
class PlateSample:
    """One labeled plate crop."""

    path: Path
    text: str
    held_out: bool

    def record(self) -> dict[str, str]:
        """What the data hash covers: the crop's path and its label."""
        return {"image_path": str(self.path), "text": self.text}


@dataclass
class PlateData(SplitSamples):
    """Usable samples and what was left out (reason -> count)."""

    samples: list[PlateSample]
    skipped: dict[str, int] = field(default_factory=dict)


def ocr_settings(project_root: Path) -> dict[str, int]:
    """DEFAULT_OCR_MINIMUMS with the project's `[training]` overrides (bad values ignored)."""
    return training_settings(project_root, DEFAULT_OCR_MINIMUMS)


def _sign_words(project: Any) -> tuple[str, ...]:
    try:
        return tuple(plate_settings(project).sign_words)
    except InvalidInput as exc:
        log.warning("%s Using the default sign words.", exc.message)
        return DEFAULT_SIGN_WORDS


def plate_samples(project: Any, conn: sqlite3.Connection, split: HeldOutSplit, *,
                  check_files: bool = True) -> PlateData:  # fmt: skip
    """Every usable label of the project, in path order (files checked when asked)."""
    words = [w for w in _sign_words(project) if w]
    samples: list[PlateSample] = []
    skipped = {"skip": 0, "bad_text": 0, "too_long": 0, "sign_word": 0, "missing_file": 0}
    for path, text in conn.execute("SELECT image_path, text FROM plate_labels ORDER BY image_path"):
        text = str(text)
        if text == SKIP:
            skipped["skip"] += 1
            continue
        try:
            check_text(text)
        except InvalidInput:
            skipped["bad_text"] += 1
            continue
        if len(text) > MAX_LABEL_LENGTH:
            skipped["too_long"] += 1
            continue
        if any(word in text for word in words):
            skipped["sign_word"] += 1
            continue
        if check_files and not Path(path).is_file():
            skipped["missing_file"] += 1
            continue
        samples.append(PlateSample(Path(path), text, split.held_out(str(path))))
    return PlateData(samples, skipped)


def ocr_readiness(
    project: Any, conn: sqlite3.Connection, registry: Registry | None = None
) -> Readiness:
    """Whether the plate reader can be trained now, and why (counts rows; reads no image)."""
    registry = registry or Registry(project.models_dir)
    mins = ocr_settings(project.root)
    data = plate_samples(project, conn, registry.split(), check_files=False)
    count, held = len(data.samples), len(data.held_out())
    need, need_held = mins["min_ocr_labels"], mins["min_ocr_held_out"]
    champ = registry.champion_info(OCR_KIND)
    new = None
    if champ is not None:
        before = champ.samples
        new = count - int(before.get("train", 0)) - int(before.get("held_out", 0))
    what = "labeled plates"
    if count < need:
        ok, reason = False, f"needs {need - count} more {what} ({count} of {need})"
    elif held < need_held:
        ok = False
        reason = (f"needs more {what}: {held} of them fall in the held-out split, "
                  f"{need_held} are needed to measure a model")  # fmt: skip
    else:
        ok = True
        reason = f"ready: {count} {what}" + (f", {new} new since the champion" if new else "")
    return Readiness(OCR_KIND, ok, reason, count, need, held, need_held, new,
                     details={"skipped": {k: v for k, v in data.skipped.items() if v}})  # fmt: skip


# -- scores -------------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions from a to b."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def score(predictions: Sequence[str], truths: Sequence[str]) -> dict[str, float]:
    """CER (edit distance over the truth's characters, all crops pooled), exact match
    (share of crops read exactly) and the share read as nothing ("empty")."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    if not truths:
        return {"cer": 1.0, "exact_match": 0.0, "empty": 1.0, "n": 0}
    errors = sum(edit_distance(p, t) for p, t in zip(predictions, truths, strict=True))
    chars = sum(len(t) for t in truths)
    return {
        "cer": round(errors / max(1, chars), 5),
        "exact_match": round(sum(p == t for p, t in zip(predictions, truths, strict=True))
                             / len(truths), 5),
        "empty": round(sum(not p for p in predictions) / len(truths), 5),
        "n": len(truths),
    }  # fmt: skip


def collapsed(metrics: dict[str, float]) -> bool:
    """Whether a model's scores (from `score`) show CTC blank collapse: it reads nothing."""
    return metrics.get("n", 0) > 0 and metrics.get("empty", 0.0) >= COLLAPSE_EMPTY_SHARE


def better(new: dict[str, float], old: dict[str, float]) -> bool:
    """Whether scores `new` beat `old`: higher exact match, then lower CER."""
    a = (round(new.get("exact_match", 0.0), 6), -round(new.get("cer", 1.0), 6))
    b = (round(old.get("exact_match", 0.0), 6), -round(old.get("cer", 1.0), 6))
    return a > b
