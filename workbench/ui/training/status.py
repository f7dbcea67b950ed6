"""What the training view's status cards show, read in one go (no Qt; runs on a worker).

`read_status(project)` returns one ModelStatus per model kind: the champion (version,
when it was trained, on how many samples, its held-out metrics and what it beat), what
the smart-crop champion learned, and whether the kind can be retrained now (readiness
counts database rows; it never decodes an image). A kind whose training code cannot be
loaded here is reported as not available, with the reason, instead of failing the rest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.ml.jobs import MODEL_KINDS
from workbench.ml.registry import Readiness, Registry, VersionInfo

log = logging.getLogger(__name__)

TITLES = {
    "ranker": "Ranker",
    "crop": "Crop proposer",
    "smartcrop": "Smart crop",
    "ocr": "Plate OCR",
}
PURPOSES = {
    "ranker": "which image of a group to keep",
    "crop": "where to crop the kept image",
    "smartcrop": "the typical size and place of your crops",
    "ocr": "the text of a plate crop",
}
SMARTCROP_MODEL = "model.json"


@dataclass
class ModelStatus:
    """One model kind as its card shows it. `problem` set: the kind is not available here."""

    kind: str
    version: str | None = None  # the champion's, None: the heuristic serves
    trained_at: str | None = None  # ISO UTC
    samples: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # the champion's held-out metrics
    baselines: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # the metric that decides promotion
    learned: dict[str, Any] = field(default_factory=dict)  # smartcrop: its statistics
    learned_from: str | None = None  # the version they are from (the champion's, else the latest)
    versions: list[str] = field(default_factory=list)
    readiness: Readiness | None = None
    problem: str | None = None

    @property
    def title(self) -> str:
        return TITLES.get(self.kind, self.kind)

    @property
    def ready(self) -> bool:
        return self.problem is None and self.readiness is not None and self.readiness.ready


def noun(kind: str) -> str:
    """The kind's title inside a sentence: "ranker", "smart crop", "plate OCR"."""
    title = TITLES.get(kind, kind)
    return title[:1].lower() + title[1:]


def registry_for(project: Project) -> Registry:
    """The project's model registry, mirroring into its database."""
    return Registry(project.models_dir, db_path=project.db_path)


def champion_fields(info: VersionInfo) -> dict[str, Any]:
    """The card's fields from a champion's manifests (metrics.json as training writes it)."""
    metrics = info.metrics if isinstance(info.metrics, dict) else {}
    held = metrics.get("held_out", metrics)
    return {
        "version": info.version,
        "trained_at": info.created_at,
        "samples": {k: int(v) for k, v in info.samples.items() if isinstance(v, int | float)},
        "metrics": held if isinstance(held, dict) else {},
        "baselines": metrics.get("baselines", {}) if isinstance(metrics.get("baselines"), dict) else {},
        "key": metrics.get("key") if isinstance(metrics.get("key"), str) else None,
    }


def smartcrop_statistics(info: VersionInfo) -> dict[str, Any]:
    """The smart-crop champion's learned statistics (model.json), {} when unreadable."""
    try:
        data = json.loads((info.path / SMARTCROP_MODEL).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("no smart-crop statistics in %s (%s)", info.path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def kind_status(project: Project, conn: sqlite3.Connection, registry: Registry, kind: str) -> ModelStatus:
    """One kind's status; a failure to judge readiness becomes its `problem` sentence."""
    status = ModelStatus(kind)
    try:
        versions = registry.versions(kind)
        status.versions = [v.version for v in versions]
        info = registry.champion_info(kind)
        if info is not None:
            for name, value in champion_fields(info).items():
                setattr(status, name, value)
        learned_from = info or (versions[-1] if versions else None)
        if kind == "smartcrop" and learned_from is not None:
            status.learned = smartcrop_statistics(learned_from)
            status.learned_from = learned_from.version
    except (OSError, WorkbenchError) as exc:
        log.warning("cannot read the %s models: %s", kind, exc)
        status.problem = f"its models cannot be read ({getattr(exc, 'message', exc)})"
        return status
    from workbench.ml.training.data import readiness

    try:
        status.readiness = readiness(project, conn, kind, registry)
    except ImportError as exc:
        status.problem = f"its training code is not installed here ({exc})"
    except WorkbenchError as exc:
        status.problem = exc.message
    except sqlite3.Error as exc:
        status.problem = f"the project database could not be read ({exc})"
    return status


def read_status(project: Project, kinds: tuple[str, ...] = MODEL_KINDS) -> list[ModelStatus]:
    """Every kind's status, in `kinds` order (opens its own connection: call it off the GUI)."""
    registry = registry_for(project)
    conn = project.connect()
    try:
        return [kind_status(project, conn, registry, kind) for kind in kinds]
    finally:
        conn.close()


# -- words and numbers --------------------------------------------------------------------

METRIC_NAMES = {
    "top1": "top-1",
    "pairwise": "pairwise",
    "mean_iou": "mean IoU",
    "crop_match": "crop match",
    "held_out_top1": "held-out top-1",
    "train_top1": "train top-1",
    "held_out_iou": "held-out IoU",
    "loss": "loss",
    "cer": "character errors",
    "exact": "exact plates",
    "accuracy": "accuracy",
    "n": "samples",
}
BASELINE_NAMES = {"heuristic": "heuristic", "random": "chance", "whole_image": "whole image",
                  "mean_box": "mean box", "smartcrop": "smart crop", "rapidocr": "rapidocr"}  # fmt: skip
_PERCENT_HINTS = ("top1", "pairwise", "match", "accuracy", "exact", "cer", "rate")


def metric_name(key: str) -> str:
    return METRIC_NAMES.get(key, key.replace("_", " "))


def format_metric(key: str, value: Any) -> str:
    """A metric as people read it: rates as percentages, IoU and loss as decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key == "n" or key.startswith("samples"):
        return str(int(value))
    if any(hint in key for hint in _PERCENT_HINTS) and 0.0 <= value <= 1.0:
        return f"{value * 100:.0f}%"
    if "loss" in key:
        return f"{value:.4g}"
    return f"{value:.2f}"


def headline(metrics: dict[str, Any], key: str | None) -> list[tuple[str, Any]]:
    """The metrics worth a line: the deciding one first, then the other numbers (not n)."""
    keys = [k for k in metrics if k != "n" and isinstance(metrics[k], int | float)]
    if key in keys:
        keys.remove(key)
        keys.insert(0, key)
    return [(k, metrics[k]) for k in keys]


def metrics_text(metrics: dict[str, Any], key: str | None) -> str:
    """E.g. "top-1 82% · pairwise 90%"."""
    return " · ".join(f"{metric_name(k)} {format_metric(k, v)}" for k, v in headline(metrics, key))


def samples_text(samples: dict[str, int]) -> str:
    """E.g. "40 samples (32 train, 8 held out)"."""
    train, held = int(samples.get("train", 0)), int(samples.get("held_out", 0))
    return f"{train + held} samples ({train} train, {held} held out)"


def local_time(iso: str | None) -> str:
    """An ISO UTC time as local "2026-03-01 09:40", or the text as given when unparsable."""
    if not iso:
        return "–"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def readiness_text(r: Readiness) -> str:
    """The readiness line: ready (and how much is new), or how many more samples are needed."""
    reason = r.reason[:1].upper() + r.reason[1:] if r.reason else ""
    if r.ready and r.new_since_champion is not None and r.new_since_champion <= 0:
        return f"{reason}; nothing new since the champion"
    return reason


def learned_text(stats: dict[str, Any], version: str | None = None, *, serving: bool = True) -> str:
    """Seed 000's learned patterns in one line: average size, its variation, the reading."""
    try:
        w, h = float(stats["avg_width"]), float(stats["avg_height"])
        cvw, cvh = float(stats["cv_width"]), float(stats["cv_height"])
    except (KeyError, TypeError, ValueError):
        return ""
    px = ""
    if "avg_width_px" in stats and "avg_height_px" in stats:
        px = f" ({float(stats['avg_width_px']):.0f}×{float(stats['avg_height_px']):.0f} px)"
    reading = stats.get("consistency") or ""
    who = "Learned" if serving or not version else f"{version} (not serving) learned"
    return (f"{who}: average crop {w * 100:.0f}% × {h * 100:.0f}% of the image{px}; "
            f"variation (CV) {cvw:.2f} wide, {cvh:.2f} high" + (f": {reading}" if reading else ""))  # fmt: skip


def results_sentence(results: list[Any]) -> str:
    """What a click came to, in a few words: new champions, versions kept, what failed."""
    def names(status: str) -> list[str]:
        return [f"{noun(r.kind)} {r.version or ''}".strip()
                for r in results if r.status == status]  # fmt: skip

    parts = []
    for status, words in (("promoted", "New champion"), ("kept", "Kept, not promoted"),
                          ("not_ready", "Not enough data"), ("failed", "Failed"),
                          ("cancelled", "Cancelled")):  # fmt: skip
        found = names(status)
        if found:
            parts.append(f"{words}: {', '.join(found)}.")
    failed = [r.message for r in results if r.status == "failed" and r.message]
    return " ".join(parts + failed)


def path_of(project: Project, kind: str) -> Path:
    """Where a kind's versions live (shown as a tooltip)."""
    return project.models_dir / kind
