"""`.decision` sidecars: the note left beside an image routed to `crop/` or `crop_auto/`.

A sidecar links the image back to its `ai_decisions` row (seed 002) so the crop view can
record the final crop. Sidecars are the workbench's own files, but they sit in folders a
user can edit, so reading one is strict: exactly the known keys, the right types, a size
limit, and (given the project) the right project and a path inside the project folder.
Reading never changes or deletes the file; removal is the journaled file operations' job.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.core.crops import CropBox
from workbench.core.decisions import PROJECT_NAME_RE
from workbench.core.errors import InvalidInput
from workbench.core.project import Project
from workbench.core.safe_io import write_new_file

SIDECAR_SUFFIX = ".decision"
MAX_SIDECAR_BYTES = 64 * 1024  # a real sidecar is ~200 bytes; anything big is not ours
MAX_ID_CHARS = 512
REQUIRED_KEYS = ("group_id", "project_id", "needs_crop")
OPTIONAL_KEYS = ("ai_crop_coords", "image")


class SidecarError(InvalidInput):
    """A sidecar that cannot be used; `.path` is the file and `.reason` says why."""

    code = "invalid_sidecar"

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"The sidecar {self.path} cannot be used: {reason} It was left in place; fix or "
            "move it, and crop that image by hand if needed."
        )


def sidecar_path(image: Path) -> Path:
    """The sidecar path for an image: the same name with the suffix `.decision`."""
    return Path(image).with_suffix(SIDECAR_SUFFIX)


def _check_image_name(name: str) -> None:
    """Raise InvalidInput unless `name` is a bare file name (no folders, no '..')."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    ):
        raise InvalidInput(f"image {name!r} must be a bare file name, without folders or '..'.")


@dataclass(frozen=True)
class Sidecar:
    """The content of a `.decision` file; the constructor rejects values that break the rules."""

    group_id: str
    project_id: str
    needs_crop: bool
    ai_crop_coords: CropBox | None = None
    # The image's file name, so a sidecar separated from its image can be recognised.
    image: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, str) or not self.group_id.strip():
            raise InvalidInput("group_id must be a non-empty string.")
        if len(self.group_id) > MAX_ID_CHARS or any(ord(ch) < 32 for ch in self.group_id):
            raise InvalidInput("group_id is too long or contains control characters.")
        if not isinstance(self.project_id, str) or not PROJECT_NAME_RE.match(self.project_id):
            raise InvalidInput(
                f"project_id {self.project_id!r} is not a project name "
                "(lowercase letters, digits, '_' and '-')."
            )
        if not isinstance(self.needs_crop, bool):
            raise InvalidInput("needs_crop must be true or false.")
        if self.ai_crop_coords is not None and not isinstance(self.ai_crop_coords, CropBox):
            raise InvalidInput("ai_crop_coords must be a crop box.")
        if self.image is not None:
            if not isinstance(self.image, str):
                raise InvalidInput("image must be a file name.")
            _check_image_name(self.image)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to disk; optional keys appear only when set."""
        data: dict[str, Any] = {
            "group_id": self.group_id,
            "project_id": self.project_id,
            "needs_crop": self.needs_crop,
        }
        if self.ai_crop_coords is not None:
            data["ai_crop_coords"] = self.ai_crop_coords.to_list()
        if self.image is not None:
            data["image"] = self.image
        return data


def encode_sidecar(image_path: Path, sidecar: Sidecar) -> bytes:
    """The bytes of the sidecar for `image_path`, as `write_sidecar` writes them.

    `image` is filled in with the image's file name when the Sidecar leaves it empty.
    """
    image_path = Path(image_path)
    if sidecar_path(image_path) == image_path:
        raise InvalidInput(
            f"{image_path.name} already ends in {SIDECAR_SUFFIX}; its sidecar would replace it."
        )
    if sidecar.image is None:
        sidecar = replace(sidecar, image=image_path.name)
    elif sidecar.image != image_path.name:
        raise InvalidInput(
            f"The sidecar names image {sidecar.image!r} but is being written for "
            f"{image_path.name!r}; pass the matching image."
        )
    text = json.dumps(sidecar.to_dict(), indent=2, allow_nan=False) + "\n"
    return text.encode("utf-8")


def write_sidecar(image_path: Path, sidecar: Sidecar) -> Path:
    """The path of the new sidecar written beside `image_path`; an existing one is never replaced.

    Written complete under a temporary name, then linked into place (FileExistsError when
    a sidecar is already there).
    """
    data = encode_sidecar(image_path, sidecar)
    path = sidecar_path(Path(image_path))
    write_new_file(path, data)
    return path


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a sidecar")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            # json.loads would silently keep the last one; a sidecar with two answers is suspect.
            raise ValueError(f"key {key!r} appears twice")
        data[key] = value
    return data


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, checking type and size on the open file (no check-then-open race)."""
    try:
        # O_NONBLOCK so a FIFO planted under a sidecar's name cannot hang the reader.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SidecarError(path, "The file does not exist.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            raise SidecarError(path, "It is a symbolic link; sidecars are plain files.") from None
        raise SidecarError(path, f"The file cannot be opened ({exc.strerror or exc}).") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SidecarError(path, "It is not a regular file.")
        if info.st_size > MAX_SIDECAR_BYTES:
            raise SidecarError(
                path, f"It is {info.st_size} bytes; a sidecar is at most {MAX_SIDECAR_BYTES}."
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)  # the file may have grown since fstat
    finally:
        os.close(fd)
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(path, f"It is larger than {MAX_SIDECAR_BYTES} bytes.")
    return data


def read_sidecar(path: Path, *, project: Project | None = None) -> Sidecar:
    """The validated Sidecar in `path`, or SidecarError saying what is wrong with it.

    With `project`, the sidecar must lie inside the project folder and name that project.
    Whether `image` still matches the file beside the sidecar is the caller's check (a
    journaled move may rename an image and its sidecar together).
    """
    path = Path(path)
    if path.suffix != SIDECAR_SUFFIX:
        raise SidecarError(path, f"The file name does not end in {SIDECAR_SUFFIX}.")
    if project is not None:
        # Sidecars are written only into the project's routing folders, never the source.
        resolved = path.resolve()
        if not resolved.is_relative_to(project.root):
            raise SidecarError(
                path, f"It lies outside the folder of project '{project.name}' ({project.root})."
            )
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SidecarError(path, f"Byte {exc.start + 1} is not valid UTF-8.") from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except ValueError as exc:
        raise SidecarError(path, f"It is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise SidecarError(path, f"It holds a JSON {type(data).__name__}, not an object.")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise SidecarError(path, f"It lacks {', '.join(missing)}.")
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise SidecarError(path, f"It has unknown keys: {', '.join(unknown)}.")
    for key in ("group_id", "project_id"):
        if not isinstance(data[key], str):
            raise SidecarError(path, f"{key} must be a string.")
    if not isinstance(data["needs_crop"], bool):
        raise SidecarError(path, "needs_crop must be true or false.")
    image = data.get("image")
    if image is not None and not isinstance(image, str):
        raise SidecarError(path, "image must be a string.")
    crop: CropBox | None = None
    coords = data.get("ai_crop_coords")
    if coords is not None:
        if not isinstance(coords, list):
            raise SidecarError(path, "ai_crop_coords must be a list [x1, y1, x2, y2].")
        try:
            crop = CropBox.from_seq(coords)
        except InvalidInput as exc:
            raise SidecarError(
                path, f"ai_crop_coords is not a valid crop: {exc.message}."
            ) from None
    try:
        sidecar = Sidecar(
            group_id=data["group_id"],
            project_id=data["project_id"],
            needs_crop=data["needs_crop"],
            ai_crop_coords=crop,
            image=image,
        )
    except InvalidInput as exc:
        raise SidecarError(path, exc.message) from None
    if project is not None and sidecar.project_id != project.name:
        raise SidecarError(
            path,
            f"It is a foreign sidecar: it belongs to project '{sidecar.project_id}', "
            f"not '{project.name}'.",
        )
    return sidecar


def find_sidecars(folder: Path) -> Iterator[Path]:
    """The `.decision` files directly in `folder`, sorted by name; none if it does not exist.

    Links are skipped: sidecars are the workbench's own plain files. A write in progress
    (`.NAME.decision.tmp-PID`) does not end in `.decision`, so it is never listed.
    """
    try:
        with os.scandir(folder) as entries:
            names = sorted(
                e.name
                for e in entries
                if e.name.endswith(SIDECAR_SUFFIX) and e.is_file(follow_symlinks=False)
            )
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        yield Path(folder) / name
