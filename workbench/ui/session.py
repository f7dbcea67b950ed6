"""An open project in the GUI: its lock held, interrupted moves finished, in the recent list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.fileops import RecoveryReport
from workbench.core.finalize import journal_for
from workbench.core.lock import ProjectLock
from workbench.core.project import Project, ProjectStore
from workbench.core.scan_store import scan_project
from workbench.ui.settings import add_recent_project

LOCK_PURPOSE = "gui"


@dataclass
class ProjectSession:
    """A project this process holds the lock of, until `close()`."""

    project: Project
    lock: ProjectLock
    recovery: RecoveryReport = field(default_factory=RecoveryReport)

    def close(self) -> None:
        self.lock.release()


def open_session(store: ProjectStore, name: str) -> ProjectSession:
    """Open and lock a project, finishing file moves a crash interrupted.

    Raises ProjectNotFound, ProjectLocked (its message names the holder) or another
    WorkbenchError with a sentence for the user.
    """
    project = store.open(name)
    lock = project.lock(LOCK_PURPOSE).acquire()
    try:
        conn = project.connect()
        try:
            report = journal_for(project, conn).recover()
        finally:
            conn.close()
    except BaseException:
        lock.release()
        raise
    add_recent_project(project.root)
    return ProjectSession(project, lock, report)


def create_and_scan(
    store: ProjectStore,
    name: str,
    source: Path,
    group_by: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> str:
    """Create a project over `source` and group its first batch; returns the project's name.

    Runs on a worker thread (no Qt here); `progress(stage, groups found, 0)` while scanning.
    The scan stops once the first batch is complete, so a folder of 100,000 images is on
    screen in about a second; the window groups the rest in the background
    (`scan_store.scan_incomplete`).
    """
    report = progress or (lambda stage, done, total: None)
    project = store.create(name, source, group_by=group_by)
    report(f"Grouping the images of {project.source}", 0, 0)
    found = 0

    def on_group(pk: int, group: object) -> None:
        nonlocal found
        found += 1
        report(f"Grouping images: {found} groups so far", found, 0)

    with project.lock("gui: first scan"):
        conn = project.connect()
        try:
            scan_project(
                project,
                conn,
                on_group=on_group,
                should_stop=lambda: found >= project.settings.batch_size,
            )
        finally:
            conn.close()
    return project.name
