"""`workbench crop`: list what waits in crop/ and crop_auto/, crop by box, or auto-crop crop_auto/.

    workbench crop NAME --list [--folder crop|crop_auto]
    workbench crop NAME --auto                        every crop_auto/ image to its AI crop
    workbench crop NAME IMG [IMG ...] --box X1,Y1,X2,Y2  (images before the option)

A crop writes the cropped file to crop_cropped/, records the final crop on the decision
row named by the image's sidecar, removes the sidecar and moves the original to
crop_cropped/originals/; `workbench undo NAME` reverses it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Imported here, not lazily: it registers the "crop" reverter `workbench undo` needs.
import workbench.core.crop_submit as crop_submit
from workbench.cli.common import CommandAdder, Handler, Result, log, reading, writing
from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput, WorkbenchError


def register(command: CommandAdder) -> dict[str, Handler]:
    """Declare `crop`; returns its handler."""
    p = command(
        "crop", "list images waiting to be cropped, crop them by box, or auto-crop crop_auto/"
    )
    p.add_argument("name")
    p.add_argument("images", nargs="*", type=Path, metavar="IMG", help="images for --box")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="what waits in --folder, with sidecars")
    mode.add_argument("--auto", action="store_true",
                      help="crop every crop_auto/ image to its sidecar's AI crop")  # fmt: skip
    mode.add_argument("--box", type=_box, metavar="X1,Y1,X2,Y2",
                      help="normalized crop for the given images (crop/ or crop_auto/)")  # fmt: skip
    p.add_argument("--folder", choices=("crop", "crop_auto"), default="crop",
                   help="folder for --list (default crop)")  # fmt: skip
    return {"crop": cmd_crop}


def _box(text: str) -> CropBox:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
        return CropBox.from_seq(values)
    except (ValueError, InvalidInput) as exc:
        message = getattr(exc, "message", None) or "four numbers separated by commas"
        raise argparse.ArgumentTypeError(f"{text!r} is not a crop box: {message}") from None


def cmd_crop(args: argparse.Namespace) -> Result:
    if args.list:
        return _list(args)
    if args.images and args.auto:
        raise WorkbenchError("--auto takes no images; it crops all of crop_auto/.", code="usage")
    if args.box is not None and not args.images:
        raise WorkbenchError("--box needs at least one IMG to crop.", code="invalid_input")
    with writing(args, "workbench crop") as (project, conn):
        if args.auto:
            report = crop_submit.crop_auto(project, conn, progress=_progress(args))
        else:
            requests = [crop_submit.CropRequest(img, args.box) for img in args.images]
            report = crop_submit.submit_crops(project, conn, requests, progress=_progress(args))
    data: dict[str, Any] = {"project": project.name, **report.to_dict()}
    for r in report.results:
        if r.warning:
            log(f"warning: {r.warning}")
    c = report.counts
    lines = [
        f"{'✓' if r.ok else '-' if r.skipped else '✗'} {r.image.name}"
        + (f" -> {r.output.name} {r.size[0]}x{r.size[1]}" if r.output and r.size else "")
        + (f"  crop_match {r.crop_match}, IoU {r.iou:.3f}" if r.iou is not None else "")
        + (f"\n    {r.error}" if r.error else "")
        for r in report.results
    ]
    lines.append(
        f"Cropped {c['cropped']} image(s), {c['rows_updated']} decision row(s) updated, "
        f"{c['without_row']} without a row, {c['skipped']} skipped, {c['errors']} error(s)."
    )
    if not report.results:
        lines = ["Nothing waits in crop_auto/." if args.auto else "Nothing to crop."]
    return data, "\n".join(lines), 1 if c["errors"] else 0


def _progress(args: argparse.Namespace) -> Any:
    def report(stage: str, done: int, total: int) -> None:
        if total and not args.json:
            log(f"  {stage} ({done}/{total})")

    return report


def _list(args: argparse.Namespace) -> Result:
    from workbench.core.crop_queue import pending_images

    if args.images:
        raise WorkbenchError("--list takes no images.", code="usage")
    with reading(args) as (project, conn):
        items = pending_images(project, conn, args.folder)
    data = {"project": project.name, "folder": args.folder, "images": [i.to_dict() for i in items]}
    lines = []
    for item in items:
        box = (
            "[" + ", ".join(f"{v:.3f}" for v in item.ai_crop.to_list()) + "]"
            if item.ai_crop
            else "-"
        )
        size = f"{item.width}x{item.height}" if item.width else "?"
        lines.append(f"{item.path.name}  {size}  AI crop {box}  {item.group_id or ''}".rstrip())
        for note in (item.error, item.warning):
            if note:
                lines.append(f"    {note}")
    return data, "\n".join(lines) or f"Nothing waits in {args.folder}/."
