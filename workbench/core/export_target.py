"""Where an export may write: never over a project's files, a source image or a model."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from workbench.core.errors import InvalidInput, UnsafePath, WorkbenchError
from workbench.core.images import IMAGE_EXTENSIONS, UNDECODABLE_IMAGE_EXTENSIONS
from workbench.core.project import Project, ProjectStore

_SNIFF_BYTES = 64 * 1024


def _protected(store: ProjectStore, project: Project, extra: Iterable[Path]) -> list[Path]:
    """Folders no export may write into: every project and source, the models, `extra`."""
    roots = [store.models_dir, project.root, project.source.resolve()]
    for name in store.names():
        if name == project.name:
            continue
        roots.append(store.path_of(name).resolve())
        try:
            roots.append(store.open(name).source.resolve())
        except WorkbenchError:
            pass  # an unreadable project.toml: its folder itself is still protected
    roots.extend(Path(p).resolve() for p in extra)
    return roots


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut at the sniff boundary is fine
    return True


def check_export_target(
    store: ProjectStore,
    project: Project,
    target: Path,
    *,
    replace: bool = False,
    append: bool = False,
    folder: bool = False,
    extra_protected: Iterable[Path] = (),
) -> Path:
    """The resolved target, after refusing any place an export must not write.

    Refused: anything inside a project (this one's `exports/` excepted), any project's
    source folder, the models folder and `extra_protected` (e.g. plate crop folders); an
    existing target that is not a regular file (a folder, a FIFO, a device), an image, or
    not text. An existing file needs `replace` (it is replaced whole) or `append`.
    """
    resolved = Path(target).expanduser().resolve()
    if not resolved.is_relative_to(project.folder("exports")):
        for root in _protected(store, project, extra_protected):
            if resolved.is_relative_to(root):
                raise UnsafePath(
                    f"{target} lies inside {root}, which holds a project's, a source's or a "
                    f"model's files; export to {project.folder('exports')} or a folder "
                    "outside the projects."
                )
    if folder:
        return resolved
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        if not resolved.parent.is_dir():
            raise InvalidInput(
                f"The folder {resolved.parent} does not exist; create it first."
            ) from None
        return resolved
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{target} exists and is not a regular file; give a file name.")
    suffix = resolved.suffix.lower()
    if suffix in IMAGE_EXTENSIONS or suffix in UNDECODABLE_IMAGE_EXTENSIONS:
        raise UnsafePath(f"{target} is an image; an export never writes over one.")
    if not (replace or append):
        raise InvalidInput(f"{target} already exists; choose another name or pass --overwrite.")
    if not _looks_like_text(resolved):
        raise UnsafePath(f"{target} is not a text file; an export never writes over one.")
    return resolved
