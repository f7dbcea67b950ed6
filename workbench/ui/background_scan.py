"""Groups the rest of a project's source in the background after its first batch is shown."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from workbench.core.project import Project
from workbench.core.scan_store import ScanSummary, scan_incomplete, scan_project
from workbench.ui.workers import Runner


def _finish(project: Project, stop: threading.Event) -> ScanSummary:
    conn = project.connect()  # the worker's own connection; the window holds the lock
    try:
        return scan_project(project, conn, should_stop=stop.is_set)
    finally:
        conn.close()


class BackgroundScan(QObject):
    """Finishes an incomplete scan off the GUI thread; `stop()` ends it early (kept so far)."""

    finished = Signal(object)  # ScanSummary
    failed = Signal(object)  # the exception

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self._stop = threading.Event()
        self._runner = Runner(self, threads=1)

    def start_if_needed(self, is_incomplete: Callable[[], bool] | None = None) -> bool:
        """Start when the last scan stopped early; returns whether it started."""
        if is_incomplete is None:
            conn = self.project.connect()
            try:
                needed = scan_incomplete(conn)
            finally:
                conn.close()
        else:
            needed = is_incomplete()
        if needed:
            self._runner.submit(
                _finish, self.project, self._stop,
                on_done=self.finished.emit, on_failed=self.failed.emit,
            )  # fmt: skip
        return needed

    def busy(self) -> bool:
        return self._runner.pending() > 0

    def stop(self) -> None:
        """End the scan at the next group and wait for it (what it stored is kept)."""
        self._stop.set()
        self._runner.shutdown()
