"""What a crop submit was asked for and what became of each image (plain data, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.crops import CropBox


@dataclass(frozen=True)
class CropRequest:
    """Crop `image` (in crop/ or crop_auto/) to the normalized `box`."""

    image: Path
    box: CropBox


@dataclass
class CropResult:
    """What became of one requested crop; `error` set means nothing changed for it."""

    image: Path
    box: CropBox
    output: Path | None = None
    original: Path | None = None
    group_id: str | None = None
    crop_match: bool | None = None
    iou: float | None = None
    size: tuple[int, int] | None = None
    quality: str | None = None
    warning: str | None = None
    error: str | None = None
    skipped: bool = False  # left for a manual crop (crop_auto without a usable AI crop)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped and self.output is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "box": self.box.to_list(),
            "output": str(self.output) if self.output else None,
            "original": str(self.original) if self.original else None,
            "size": list(self.size) if self.size else None,
            "quality": self.quality,
            "group_id": self.group_id,
            "row_updated": self.ok and self.group_id is not None,
            "crop_match": self.crop_match,
            "iou": self.iou,
            "warning": self.warning,
            "error": self.error,
            "skipped": self.skipped,
        }


@dataclass
class SubmitReport:
    """The journal operation (None when nothing was cropped) and every image's result."""

    operation_id: int | None
    results: list[CropResult] = field(default_factory=list)
    stopped: bool = False

    @property
    def counts(self) -> dict[str, int]:
        ok = [r for r in self.results if r.ok]
        return {
            "requested": len(self.results),
            "cropped": len(ok),
            "rows_updated": sum(1 for r in ok if r.group_id is not None),
            "without_row": sum(1 for r in ok if r.group_id is None),
            "skipped": sum(1 for r in self.results if r.skipped),
            "errors": sum(1 for r in self.results if r.error is not None),
            "warnings": sum(1 for r in self.results if r.warning is not None),
        }

    @property
    def errors(self) -> list[CropResult]:
        return [r for r in self.results if r.error is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "counts": self.counts,
            "stopped": self.stopped,
            "results": [r.to_dict() for r in self.results],
            "errors": [{"image": str(r.image), "message": r.error} for r in self.errors],
        }
