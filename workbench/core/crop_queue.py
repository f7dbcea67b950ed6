"""Images waiting in crop/ and crop_auto/: what each one is, whether its sidecar can be trusted,
and the box the crop view starts from.

A sidecar is trusted only when it reads cleanly for this project (`read_sidecar`: plain
file, known keys, our project name), names the image it sits beside, and points at a
decision row of this project that has no final crop yet, whose chosen image the database
places right here and whose AI crop is the sidecar's. Anything else is reported as a
sentence and the image is treated like one without a sidecar: still croppable, no row
updated, the sidecar left where it is.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.cropping import WHOLE_IMAGE
from workbench.core.crops import CropBox
from workbench.core.images import IMAGE_EXTENSIONS, ImageInfo, probe_image
from workbench.core.project import Project
from workbench.core.sidecar import (
    MAX_SIDECAR_BYTES,
    Sidecar,
    SidecarError,
    read_sidecar,
    sidecar_path,
)

log = logging.getLogger(__name__)

CROP_FOLDERS = ("crop", "crop_auto")
# Where a starting box came from: the sidecar, the crop model, or nothing (whole image).
FROM_SIDECAR, FROM_MODEL, FROM_NOTHING = "sidecar", "model", "whole image"
Proposer = Callable[[Path], CropBox | None]


@dataclass(frozen=True)
class PendingImage:
    """An image waiting to be cropped, with its trusted sidecar (if any) and what is wrong."""

    path: Path
    folder: str | None
    width: int | None = None
    height: int | None = None
    sidecar: Sidecar | None = None  # set only when trusted
    sidecar_bytes: bytes | None = None  # what the sidecar held, for its journaled removal
    warning: str | None = None  # cropped all the same, without updating a decision row
    error: str | None = None  # cannot be cropped at all

    @property
    def ai_crop(self) -> CropBox | None:
        return self.sidecar.ai_crop_coords if self.sidecar else None

    @property
    def group_id(self) -> str | None:
        return self.sidecar.group_id if self.sidecar else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.path),
            "folder": self.folder,
            "width": self.width,
            "height": self.height,
            "group_id": self.group_id,
            "ai_crop": self.ai_crop.to_list() if self.ai_crop else None,
            "warning": self.warning,
            "error": self.error,
        }


def no_sidecar_warning(name: str, known_as: str | None = None, project: str = "NAME") -> str:
    text = (
        f"{name} has no sidecar: it will be cropped and saved, but no decision row is "
        "updated (its AI proposal is unknown)."
    )
    if known_as:
        text += (
            f" The database knows it as {known_as}: `workbench doctor {project} --repair` "
            "re-writes the sidecar, so that its crop is recorded."
        )
    return text


def untrusted_warning(name: str, reason: str) -> str:
    return (
        f"The sidecar of {name} is not used: {reason} The image is cropped and saved without "
        "updating a decision row; the sidecar is left where it is."
    )


def waiting_images(project: Project, folder: str = "crop") -> list[Path]:
    """The image files directly in crop/ or crop_auto/, by name (links included, to report)."""
    if folder not in CROP_FOLDERS:
        raise ValueError(f"not a crop folder: {folder!r}")
    base = project.folder(folder)
    try:
        with os.scandir(base) as it:
            names = sorted(
                e.name
                for e in it
                if Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
                and not e.name.startswith(".")
                and (e.is_symlink() or e.is_file(follow_symlinks=False))
            )
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [base / name for name in names]


def pending_images(
    project: Project, conn: sqlite3.Connection, folder: str = "crop"
) -> list[PendingImage]:
    """Every image waiting in `folder`, inspected (see `inspect_image`)."""
    return [inspect_image(project, conn, p) for p in waiting_images(project, folder)]


def crop_folder_of(project: Project, path: Path) -> tuple[Path, str | None]:
    """The path spelled as the database spells it, and its crop folder (None: not in one)."""
    candidate = Path(os.path.abspath(path))  # folds '..' before folders are compared
    try:
        parent = candidate.parent.resolve()
    except OSError:
        return candidate, None
    for folder in CROP_FOLDERS:
        if parent == project.folder(folder).resolve():
            return project.folder(folder) / candidate.name, folder
    return candidate, None


def inspect_image(project: Project, conn: sqlite3.Connection, path: Path) -> PendingImage:
    """What `path` is: croppable or not (error), and whether its sidecar can be trusted."""
    path, folder = crop_folder_of(project, path)
    name = path.name
    if folder is None:
        return PendingImage(path, None, error=f"{path} is not in crop/ or crop_auto/ of project "
                            f"'{project.name}'; only images waiting there are cropped.")  # fmt: skip
    if path.is_symlink():
        return PendingImage(path, folder, error=f"{name} is a link; Workbench crops only plain "
                            "files (a link could point outside the project). Replace it with the file.")  # fmt: skip
    if not path.is_file():
        return PendingImage(path, folder, error=f"{name} is no longer in {folder}/.")
    info = probe_image(path)
    if not isinstance(info, ImageInfo):
        return PendingImage(
            path, folder, error=f"{name} cannot be read: {info.reason}. It was left in place."
        )
    sp = sidecar_path(path)
    if not os.path.lexists(sp):
        known = conn.execute(
            "SELECT d.group_id FROM decision_files f JOIN ai_decisions d USING (group_id)"
            " WHERE f.current_path = ? AND d.final_crop_coords IS NULL LIMIT 1",
            (str(path),),
        ).fetchone()
        warning = no_sidecar_warning(name, known[0] if known else None, project.name)
        return PendingImage(path, folder, info.width, info.height, warning=warning)
    try:
        sidecar = read_sidecar(sp, project=project)
        data = _read_plain(sp)
    except SidecarError as exc:
        warning = untrusted_warning(name, exc.reason)
        return PendingImage(path, folder, info.width, info.height, warning=warning)
    problem = trust_problem(conn, path, sidecar)
    if problem is not None:
        warning = untrusted_warning(name, problem)
        return PendingImage(path, folder, info.width, info.height, warning=warning)
    return PendingImage(path, folder, info.width, info.height, sidecar, data)


def _read_plain(path: Path) -> bytes:
    """The sidecar's bytes, read without following a link (read_sidecar checked the rest)."""
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        reason = (
            "It is a symbolic link."
            if exc.errno == errno.ELOOP
            else f"It cannot be read ({exc.strerror})."
        )
        raise SidecarError(path, reason) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(path, f"It is larger than {MAX_SIDECAR_BYTES} bytes.")
    return data


def trust_problem(conn: sqlite3.Connection, image: Path, sidecar: Sidecar) -> str | None:
    """Why a well-formed sidecar of this project still cannot be used for `image`, or None."""
    gid = sidecar.group_id
    if sidecar.image is not None and sidecar.image != image.name:
        return f"it names the image {sidecar.image!r}, not {image.name!r}."
    row = conn.execute(
        "SELECT user_selected_index, ai_crop_coords, final_crop_coords, crop_timestamp"
        " FROM ai_decisions WHERE group_id = ?",
        (gid,),
    ).fetchone()
    if row is None:
        return f"it names the decision {gid!r}, which is not in this project's database."
    if row["final_crop_coords"] is not None:
        return f"the decision {gid} already has a final crop (recorded {row['crop_timestamp']})."
    ai = CropBox.from_json(row["ai_crop_coords"]) if row["ai_crop_coords"] else None
    if ai != sidecar.ai_crop_coords:
        return f"its AI crop differs from the one the database holds for {gid}."
    where = conn.execute(
        "SELECT current_path FROM decision_files WHERE group_id = ? AND image_index = ?",
        (gid, row["user_selected_index"]),
    ).fetchone()
    if where is not None and where[0] != str(image):
        return f"the database puts the image of {gid} at {where[0]}."
    return None


def starting_box(item: PendingImage, propose: Proposer | None = None) -> tuple[CropBox, str]:
    """The box the crop view starts from and where it came from: the sidecar's AI crop,
    else the crop model's proposal (`propose`), else the whole image."""
    if item.ai_crop is not None:
        return item.ai_crop, FROM_SIDECAR
    if propose is not None and item.error is None:
        try:
            box = propose(item.path)
        except Exception:  # a proposal is a convenience: the whole image will do
            log.warning("no crop proposal for %s", item.path, exc_info=True)
            box = None
        if box is not None:
            return box, FROM_MODEL
    return WHOLE_IMAGE, FROM_NOTHING
