"""What the crop view runs off the GUI thread: plain functions, each on its own connection.

They run on the view's Runner (one thread, so they never overlap) and only build QImages,
which Qt allows off the GUI thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtGui import QImage

from workbench.core import crop_submit
from workbench.core.crop_queue import (
    FROM_NOTHING,
    PendingImage,
    Proposer,
    inspect_image,
    starting_box,
    waiting_images,
)
from workbench.core.crop_results import CropRequest, CropResult, SubmitReport
from workbench.core.cropping import WHOLE_IMAGE
from workbench.core.crops import CropBox
from workbench.core.errors import WorkbenchError
from workbench.core.finalize import undo_last
from workbench.core.project import Project
from workbench.ui.thumbnails import decode_thumbnail, failure_reason

DISPLAY_SIDE = 1600  # px: sharp on a 4K screen with two images side by side
PREVIEW_SIDE = 160
Progress = Callable[[str, int, int], None]


@dataclass
class PageImage:
    """One image of a page: what it is, its picture, its starting box, or why it cannot be shown."""

    item: PendingImage
    image: QImage | None
    box: CropBox
    source: str
    error: str | None = None


@dataclass
class Page:
    """The images from `start` of a folder's waiting list, and how many wait there in all."""

    folder: str
    start: int
    total: int
    images: list[PageImage] = field(default_factory=list)


def model_proposer(project: Project) -> Proposer:
    """The crop model's proposal for one image, through the one predictor interface."""
    from workbench.core.thumbs import ThumbnailCache, thumbs_dir
    from workbench.ml.predict import Predictor

    predictor = Predictor(project.models_dir, thumbs=ThumbnailCache(thumbs_dir(project)))

    def propose(path: Path) -> CropBox | None:
        pick = predictor.pick([path])
        return pick.crop

    propose.predictor = predictor  # type: ignore[attr-defined]  # for a reload after training
    return propose


def load_page(project: Project, folder: str, start: int, count: int,
              propose: Proposer | None) -> Page:  # fmt: skip
    """The page of `count` images from `start` (moved back when the list got shorter)."""
    paths = waiting_images(project, folder)
    if start >= len(paths):
        start = max(0, (len(paths) - 1) // count * count)
    conn = project.connect()
    try:
        images = [_page_image(project, conn, p, propose) for p in paths[start : start + count]]
    finally:
        conn.close()
    return Page(folder, start, len(paths), images)


def _page_image(
    project: Project, conn: sqlite3.Connection, path: Path, propose: Proposer | None
) -> PageImage:
    item = inspect_image(project, conn, path)
    if item.error is not None:
        return PageImage(item, None, WHOLE_IMAGE, FROM_NOTHING, item.error)
    try:
        image, _, _ = decode_thumbnail(str(path), DISPLAY_SIDE)
    except WorkbenchError as exc:
        return PageImage(item, None, WHOLE_IMAGE, FROM_NOTHING, failure_reason(str(path), exc))
    box, source = starting_box(item, propose)
    return PageImage(item, image, box, source)


def submit(
    project: Project, requests: list[CropRequest], progress: Progress | None = None
) -> SubmitReport:
    conn = project.connect()
    try:
        return crop_submit.submit_crops(project, conn, requests, progress=progress)
    finally:
        conn.close()


def undo_crop(project: Project) -> str:
    """The label of the crop operation undone; refuses when the last operation is no crop."""
    conn = project.connect()
    try:
        kind, label = crop_submit.last_operation_kind(project, conn)
        if kind is None:
            raise WorkbenchError("There is nothing to undo.", code="nothing_to_undo")
        if kind != "crop":
            raise WorkbenchError(
                f"The last change was not a crop ('{label}'); undo it in the view that made it "
                "or with `workbench undo`.",
                code="not_a_crop",
            )
        return undo_last(project, conn, 1)[0]
    finally:
        conn.close()


@dataclass
class AutoPlan:
    """What an auto-crop of crop_auto/ would do: the crops, the images left, small previews."""

    requests: list[CropRequest]
    left: list[CropResult]
    previews: dict[str, QImage]


def plan_auto(project: Project) -> AutoPlan:
    conn = project.connect()
    try:
        requests, left = crop_submit.auto_requests(project, conn)
    finally:
        conn.close()
    previews: dict[str, QImage] = {}
    for req in requests:
        try:
            previews[str(req.image)] = decode_thumbnail(str(req.image), PREVIEW_SIDE)[0]
        except WorkbenchError:
            pass  # the run itself reports an unreadable image
    return AutoPlan(requests, left, previews)


def run_auto(project: Project, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> SubmitReport:  # fmt: skip
    conn = project.connect()
    try:
        return crop_submit.crop_auto(project, conn, progress=progress, should_stop=should_stop)
    finally:
        conn.close()
