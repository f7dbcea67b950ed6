"""Crash-test helper: prepare a project, then finalize or undo in a process that kills itself.

    python tests/e2e/crash_worker.py PROJECTS_DIR NAME finalize|finalize-xdev|undo K

counts every journal step (and finalize's commit points) and sends itself SIGKILL at the
K-th one (1-based); K = 0 runs to the end and prints {"steps": N, "names": [...]} as JSON.
`finalize-xdev` behaves as if every destination were on another device (no hard links):
each move is a verified copy, with an extra "copied" step while the partial copy exists.
`prepare` builds the project the test and the worker share.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image  # noqa: E402

from workbench.core import db, safe_io  # noqa: E402
from workbench.core.crops import CropBox  # noqa: E402
from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice, undo_last  # noqa: E402
from workbench.core.project import ProjectStore  # noqa: E402
from workbench.core.timeutil import iso_utc  # noqa: E402

NAME = "crash"
SIZES = [2, 3, 4, 3, 2, 4]
AI_CROP = CropBox(0.05, 0.1, 0.95, 0.9)
# One choice per group: crop/ with and without an AI crop, crop_auto/, selected/ twice, reject.
CHOICES = [
    StagedChoice("crop", 1, True, 0, AI_CROP, 0.6),
    StagedChoice("approve", 2, True, 2, AI_CROP, 0.8),
    StagedChoice("approve", 0, False, 0, AI_CROP, 0.7),
    StagedChoice("reject", 0, True, 1, AI_CROP, 0.3),
    StagedChoice("approve", 1, True, 0, None, 0.5),
    StagedChoice("crop", 3),
]
COMPANIONS = {0: (".txt", ".json"), 1: (".xmp",)}


def store_at(root: Path) -> ProjectStore:
    return ProjectStore(root / "projects", root / "models")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(root: Path) -> dict[str, str]:
    """{content hash: original path} of every file made, after staging a choice per group."""
    source = root / "source"
    source.mkdir(parents=True)
    project = store_at(root).create(NAME, source)
    made: dict[str, str] = {}
    conn = project.connect()
    try:
        with db.transaction(conn):
            for g, n in enumerate(SIZES):
                pk = conn.execute(
                    "INSERT INTO groups(batch_number, position, reason, created_at)"
                    " VALUES (1, ?, 'crash test', ?)",
                    (g, iso_utc()),
                ).lastrowid
                for i in range(n):
                    path = source / f"shot_{g}_{i}.png"
                    size = (12 + g, 10 + i)
                    Image.new("RGB", size, (40 * g % 256, 50 * i, 90)).save(path)
                    for suffix in COMPANIONS.get(i, ()):
                        path.with_suffix(suffix).write_text(f"{suffix} of {path.name}")
                    st = path.stat()
                    conn.execute(
                        "INSERT INTO group_images(group_pk, position, path, width, height,"
                        " size_bytes, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (pk, i, str(path), *size, st.st_size, st.st_mtime_ns),
                    )
        for pk, choice in zip(range(1, len(SIZES) + 1), CHOICES, strict=True):
            stage_choice(conn, pk, choice)
    finally:
        conn.close()
    for path in sorted(source.iterdir()):
        made[sha(path)] = str(path)
    assert len(made) == len(list(source.iterdir())), "every file must have its own content"
    return made


def finalize_all(projects_dir: Path, step_hook=None) -> list[str]:
    project = ProjectStore(projects_dir, projects_dir.parent / "models").open(NAME)
    with project.lock("crash worker"):
        conn = project.connect()
        try:
            pks = [r[0] for r in conn.execute("SELECT id FROM groups WHERE group_id IS NULL")]
            return finalize_groups(project, conn, pks, step_hook=step_hook).group_ids
        finally:
            conn.close()


def undo(projects_dir: Path, step_hook=None) -> list[str]:
    project = ProjectStore(projects_dir, projects_dir.parent / "models").open(NAME)
    with project.lock("crash worker"):
        conn = project.connect()
        try:
            return undo_last(project, conn, step_hook=step_hook)
        finally:
            conn.close()


def no_links(hook) -> None:
    """Make every os.link fail as across devices, and report a step once a copy is complete."""

    def link(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    publish = safe_io.publish

    def reported(part: Path, dst: Path) -> None:
        hook("copied", 0)  # the partial copy is complete, not yet under its name
        publish(part, dst)

    os.link = link  # type: ignore[assignment]
    safe_io.publish = reported  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    projects_dir, name, mode, k = Path(argv[0]), argv[1], argv[2], int(argv[3])
    assert name == NAME
    names: list[str] = []

    def hook(step: str, ident: int) -> None:
        names.append(step)
        if len(names) == k:
            os.kill(os.getpid(), signal.SIGKILL)

    if mode == "finalize-xdev":
        no_links(hook)
    (undo if mode == "undo" else finalize_all)(projects_dir, hook)
    print(json.dumps({"steps": len(names), "names": names}))


if __name__ == "__main__":
    main(sys.argv[1:])
