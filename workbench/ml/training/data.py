"""Training data from the decision database, the held-out split, and readiness (no torch).

The ranker learns from every decided group of two or more images whose user kept one
(`approve` or `crop`; `reject` rows say nothing about which image is best and are left
out). A group where the AI picked another image weighs double (seed 002). The crop
proposer and the smart-crop statistics learn from the selected image's final crop
(`final_crop_coords`), or the AI's crop when the user accepted it unchanged.

Images are found where they live now (`decision_files.current_path`, kept up to date
by finalize and crop), else where the row says they were. Their feature vectors come
from the project's cache (image_features), computed once for an image not seen before.

The GUI imports this module for the status cards (`readiness`), so it must stay free
of torch.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.crops import CropBox
from workbench.core.errors import WorkbenchError
from workbench.ml.jobs import Progress, ProgressFn, StopFn, check_stop
from workbench.ml.registry import HeldOutSplit, Readiness, Registry

log = logging.getLogger(__name__)

# Minimum data per kind, overridable in project.toml under [training].
DEFAULT_MINIMUMS: dict[str, int] = {
    "min_ranker_groups": 30,  # decided groups of 2+ images
    "min_ranker_held_out": 5,
    "min_crop_samples": 20,  # final crops
    "min_crop_held_out": 4,
    "min_smartcrop_samples": 5,
    "min_smartcrop_held_out": 1,
}
DEFAULT_EPOCHS = {"ranker": 300, "crop": 400}


@dataclass(frozen=True)
class GroupSample:
    """One decided group for the ranker."""

    group_id: str
    paths: list[Path]
    user_index: int
    ai_index: int | None
    weight: float
    held_out: bool


@dataclass(frozen=True)
class CropSample:
    """One final crop on a selected image."""

    group_id: str
    path: Path
    box: CropBox
    width: int
    height: int
    held_out: bool
    ai_box: CropBox | None


class SplitSamples:
    """Samples (each with `held_out`) and skip counts: the two sides of the split."""

    samples: list[Any]
    skipped: dict[str, int]

    def train(self) -> list[Any]:
        return [s for s in self.samples if not s.held_out]

    def held_out(self) -> list[Any]:
        return [s for s in self.samples if s.held_out]

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train()), "held_out": len(self.held_out()),
                **{f"skipped_{k}": v for k, v in self.skipped.items() if v}}  # fmt: skip


@dataclass
class Dataset(SplitSamples):
    """Samples with their feature vectors; `skipped` says what was left out and why."""

    samples: list[Any]
    vectors: dict[Path, np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)


def training_settings(project_root: Path, defaults: dict[str, int] | None = None) -> dict[str, int]:
    """The minimums (DEFAULT_MINIMUMS unless `defaults`) with the project's `[training]`
    overrides (bad values ignored)."""
    out = dict(DEFAULT_MINIMUMS if defaults is None else defaults)
    try:
        with open(project_root / "project.toml", "rb") as fp:
            section = tomllib.load(fp).get("training", {})
    except (OSError, tomllib.TOMLDecodeError):
        return out
    if isinstance(section, dict):
        for key in out:
            value = section.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value
    return out


# -- loading ------------------------------------------------------------------------------


def _current_paths(conn: sqlite3.Connection) -> dict[tuple[str, int], Path]:
    return {
        (r[0], int(r[1])): Path(r[2])
        for r in conn.execute("SELECT group_id, image_index, current_path FROM decision_files")
    }


def _row_paths(row: sqlite3.Row, current: dict[tuple[str, int], Path]) -> list[Path] | None:
    try:
        names = json.loads(row["images"])
    except (TypeError, ValueError):
        return None
    if not isinstance(names, list) or not 1 <= len(names) <= 4:
        return None
    out = []
    for i, name in enumerate(names):
        here = current.get((row["group_id"], i))
        if here is None:
            p = Path(str(name))
            if not p.is_absolute() and row["directory"]:
                p = Path(row["directory"]) / p
            here = p
        out.append(here)
    return out


def ranker_groups(
    conn: sqlite3.Connection, split: HeldOutSplit
) -> tuple[list[GroupSample], dict[str, int]]:
    """Every decided group usable by the ranker (paths not yet checked), and skip counts."""
    conn.row_factory = sqlite3.Row
    current = _current_paths(conn)
    samples, skipped = [], {"rejected": 0, "single_image": 0, "bad_row": 0}
    for row in conn.execute(
        "SELECT group_id, images, directory, user_selected_index, ai_selected_index, "
        "user_action, selection_match FROM ai_decisions ORDER BY timestamp, group_id"
    ):
        if row["user_action"] == "reject":
            skipped["rejected"] += 1
            continue
        paths = _row_paths(row, current)
        if paths is None or row["user_selected_index"] >= len(paths):
            skipped["bad_row"] += 1
            continue
        if len(paths) < 2:
            skipped["single_image"] += 1
            continue
        wrong = row["selection_match"] == 0
        samples.append(GroupSample(
            group_id=row["group_id"], paths=paths, user_index=int(row["user_selected_index"]),
            ai_index=row["ai_selected_index"], weight=2.0 if wrong else 1.0,
            held_out=split.held_out(row["group_id"]),
        ))  # fmt: skip
    return samples, skipped


def crop_samples(
    conn: sqlite3.Connection, split: HeldOutSplit
) -> tuple[list[CropSample], dict[str, int]]:
    """Every selected image with a final (or accepted AI) crop, and skip counts."""
    conn.row_factory = sqlite3.Row
    current = _current_paths(conn)
    samples, skipped = [], {"bad_row": 0}
    for row in conn.execute(
        "SELECT group_id, images, directory, user_selected_index, user_action, "
        "ai_crop_accepted, ai_crop_coords, final_crop_coords, image_width, image_height "
        "FROM ai_decisions WHERE final_crop_coords IS NOT NULL "
        "OR (ai_crop_accepted = 1 AND ai_crop_coords IS NOT NULL) ORDER BY timestamp, group_id"
    ):
        paths = _row_paths(row, current)
        try:
            ai = CropBox.from_json(row["ai_crop_coords"]) if row["ai_crop_coords"] else None
            box = CropBox.from_json(row["final_crop_coords"]) if row["final_crop_coords"] else ai
        except (WorkbenchError, ValueError, TypeError):
            skipped["bad_row"] += 1
            continue
        if paths is None or box is None or row["user_selected_index"] >= len(paths):
            skipped["bad_row"] += 1
            continue
        samples.append(CropSample(
            group_id=row["group_id"], path=paths[row["user_selected_index"]], box=box,
            width=int(row["image_width"]), height=int(row["image_height"]),
            held_out=split.held_out(row["group_id"]), ai_box=ai,
        ))  # fmt: skip
    return samples, skipped


FeatureFn = Callable[[Path], np.ndarray]


def attach_features(
    samples: list[Any],
    paths_of: Callable[[Any], list[Path]],
    features: FeatureFn,
    progress: ProgressFn,
    should_stop: StopFn,
) -> Dataset:
    """Feature vectors for every image the samples need; a sample with an image that is
    missing or unreadable is left out (counted in `skipped["unreadable"]`)."""
    needed: list[Path] = []
    seen: set[Path] = set()
    for s in samples:
        for p in paths_of(s):
            if p not in seen:
                seen.add(p)
                needed.append(p)
    vectors: dict[Path, np.ndarray] = {}
    bad: set[Path] = set()
    total = len(needed)
    for i, path in enumerate(needed):
        if i % 16 == 0:
            check_stop(should_stop)
            progress(Progress("features", i, total, message="reading image features"))
        try:
            vectors[path] = np.asarray(features(path), dtype=np.float32)
        except (WorkbenchError, OSError) as exc:
            log.info("left out %s: %s", path, getattr(exc, "message", exc))
            bad.add(path)
    progress(Progress("features", total, total, message="image features ready"))
    kept = [s for s in samples if not any(p in bad for p in paths_of(s))]
    return Dataset(kept, vectors, {"unreadable": len(samples) - len(kept)})


def feature_function(project: Any, conn: sqlite3.Connection) -> FeatureFn:
    """Features through the project's caches (the same ones the reviewer fills)."""
    from workbench.core.thumbs import ThumbnailCache, thumbs_dir
    from workbench.ml.features import FeatureStore
    from workbench.ml.predict import Predictor

    predictor = Predictor(None, thumbs=ThumbnailCache(thumbs_dir(project), max_memory_bytes=32 << 20),
                          feature_store_factory=lambda: FeatureStore(conn))  # fmt: skip
    return predictor.features


# -- readiness ----------------------------------------------------------------------------


def _new_since(registry: Registry, kind: str, samples: int) -> int | None:
    champ = registry.champion_info(kind)
    if champ is None:
        return None
    before = champ.samples
    return samples - int(before.get("train", 0)) - int(before.get("held_out", 0))


def _ready(kind: str, samples: int, held: int, need: int, need_held: int, what: str,
           registry: Registry) -> Readiness:  # fmt: skip
    new = _new_since(registry, kind, samples)
    if samples < need:
        reason = f"needs {need - samples} more {what} ({samples} of {need})"
        ok = False
    elif held < need_held:
        reason = (f"needs more {what}: {held} of them fall in the held-out split, "
                  f"{need_held} are needed to measure a model")  # fmt: skip
        ok = False
    else:
        ok = True
        reason = f"ready: {samples} {what}" + (f", {new} new since the champion" if new else "")
    return Readiness(kind, ok, reason, samples, need, held, need_held, new)


def readiness(
    project: Any, conn: sqlite3.Connection, kind: str, registry: Registry | None = None
) -> Readiness:
    """Whether `kind` can be trained now and why (counts rows; reads no image)."""
    registry = registry or Registry(project.models_dir)
    mins = training_settings(project.root)
    split = registry.split()
    if kind == "ranker":
        groups, _ = ranker_groups(conn, split)
        held = sum(g.held_out for g in groups)
        return _ready(kind, len(groups), held, mins["min_ranker_groups"],
                      mins["min_ranker_held_out"], "decided groups of 2+ images", registry)  # fmt: skip
    if kind in ("crop", "smartcrop"):
        crops, _ = crop_samples(conn, split)
        held = sum(c.held_out for c in crops)
        return _ready(kind, len(crops), held, mins[f"min_{kind}_samples"],
                      mins[f"min_{kind}_held_out"], "final crops", registry)  # fmt: skip
    if kind == "ocr":
        from workbench.ml.ocr.dataset import ocr_readiness

        result: Readiness = ocr_readiness(project, conn, registry)
        return result
    raise WorkbenchError(f"Unknown model kind {kind!r}.", code="invalid_input")
