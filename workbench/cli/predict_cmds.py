"""`workbench predict`: the AI's pick and crop for a group, with or without a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import CommandAdder, Handler, Result, log, reading
from workbench.core.errors import WorkbenchError


def register(command: CommandAdder) -> dict[str, Handler]:
    """Declare `predict`; returns its handler."""
    p = command("predict", "the AI's pick and crop for a group of 1-4 images (no model needed)")
    p.add_argument("name")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG", help="the group, in order")

    return {"predict": cmd_predict}


def cmd_predict(args: argparse.Namespace) -> Result:
    from workbench.core.thumbs import ThumbnailCache, thumbs_dir
    from workbench.ml.features import FeatureStore
    from workbench.ml.predict import MAX_GROUP, Predictor

    images: list[Path] = args.images
    if len(images) > MAX_GROUP:
        raise WorkbenchError(
            f"A group has 1 to {MAX_GROUP} images; {len(images)} were given.", code="invalid_input"
        )
    for image in images:
        if not image.is_file():
            raise WorkbenchError(
                f"Image {image} does not exist or is not a file.", code="invalid_input"
            )
    with reading(args) as (project, conn):
        predictor = Predictor(
            project.models_dir,
            thumbs=ThumbnailCache(thumbs_dir(project)),
            feature_store_factory=lambda: FeatureStore(conn),
        )
        pick = predictor.pick(images)
    for index, reason in sorted(pick.unreadable.items()):
        log(f"warning: image {index + 1}: {reason} It scores 0.")
    lines = []
    for i, (image, score) in enumerate(zip(images, pick.scores, strict=True)):
        mark = ">" if i == pick.selected_index and i not in pick.unreadable else " "
        note = "  (unreadable)" if i in pick.unreadable else ""
        lines.append(f"{mark} {i + 1}  {score:6.3f}  {image}{note}")
    crop = (
        "none"
        if pick.crop is None
        else "[" + ", ".join(f"{v:.3f}" for v in pick.crop.to_list()) + "]"
    )
    if pick.crop is not None and pick.crop_confidence is not None:
        crop += f" (confidence {pick.crop_confidence:.2f})"
    lines.append(f"pick {pick.selected_index + 1}, confidence {pick.confidence:.2f}; crop {crop}")
    lines.append(f"models: ranker {pick.versions['ranker']}, crop {pick.versions['crop']}")
    return pick.to_dict(), "\n".join(lines)
