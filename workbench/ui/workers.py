"""Background work for the GUI: one runner whose results and errors always come back.

`Runner.submit(fn, ...)` runs a plain function on the runner's own thread pool; its
result, error or progress reaches the given callbacks on the GUI thread (queued signals of
the runner, which lives on the GUI thread and outlives its jobs: `shutdown()` waits).
`run_with_progress` runs one function behind a modal progress dialog and returns its
result (or raises its error) to the caller.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
ProgressCallback = Callable[[str, int, int], None]


class Runner(QObject):
    """Runs functions off the GUI thread; call `shutdown()` before it goes away."""

    _done = Signal(int, object)
    _failed = Signal(int, object)
    _progress = Signal(int, str, int, int)

    def __init__(self, parent: QObject | None = None, *, threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._ids = itertools.count(1)
        self._jobs: dict[int, tuple[Callback | None, Callback | None, ProgressCallback | None]] = {}
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        self._progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callback | None = None,
        on_failed: Callback | None = None,
        on_progress: ProgressCallback | None = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> int:
        """Queue `fn(*args, **kwargs)`; with `on_progress` it also gets `progress=`. Returns a job id."""
        job = next(self._ids)
        self._jobs[job] = (on_done, on_failed, on_progress)
        if on_progress is not None:
            kwargs["progress"] = lambda stage, done, total: self._progress.emit(
                job, stage, done, total
            )

        def run() -> None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # goes back to the GUI, which shows it as a sentence
                log.debug("background job %s failed", getattr(fn, "__name__", fn), exc_info=True)
                self._failed.emit(job, exc)
            else:
                self._done.emit(job, result)

        self._pool.start(run, priority)
        return job

    def pending(self) -> int:
        """Jobs submitted whose answer has not been delivered yet."""
        return len(self._jobs)

    def shutdown(self) -> None:
        """Drop queued jobs and wait for running ones; their answers are not delivered."""
        self._pool.clear()
        self._pool.waitForDone()
        self._jobs.clear()

    def _on_done(self, job: int, result: Any) -> None:
        callbacks = self._jobs.pop(job, None)
        if callbacks and callbacks[0]:
            callbacks[0](result)

    def _on_failed(self, job: int, exc: Any) -> None:
        callbacks = self._jobs.pop(job, None)
        if callbacks is None:
            return
        if callbacks[1]:
            callbacks[1](exc)
        else:
            raise exc  # no handler: the excepthook logs it and shows a sentence

    def _on_progress(self, job: int, stage: str, done: int, total: int) -> None:
        callbacks = self._jobs.get(job)
        if callbacks and callbacks[2]:
            callbacks[2](stage, done, total)


def run_with_progress(parent: QWidget | None, title: str, fn: Callable[..., Any], *args: Any,
                      **kwargs: Any) -> Any:  # fmt: skip
    """`fn(*args, progress=..., **kwargs)` off the GUI thread behind a progress dialog.

    The GUI stays responsive (a local event loop runs) and the call returns once the
    function has finished: its result, or its exception raised here.
    """
    dialog = QProgressDialog(title, "", 0, 0, parent)
    dialog.setWindowTitle("Workbench")
    dialog.setCancelButton(None)
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setMinimumDuration(300)
    dialog.setMinimumWidth(440)
    outcome: dict[str, Any] = {}
    loop = QEventLoop()
    runner = Runner(threads=1)

    def on_progress(stage: str, done: int, total: int) -> None:
        dialog.setLabelText(stage)
        dialog.setMaximum(max(total, 0))
        dialog.setValue(min(done, total) if total > 0 else 0)

    def finish(key: str, value: Any) -> None:
        outcome[key] = value
        loop.quit()

    runner.submit(fn, *args, on_done=lambda r: finish("result", r),
                  on_failed=lambda e: finish("error", e), on_progress=on_progress, **kwargs)  # fmt: skip
    loop.exec()
    runner.shutdown()
    runner.deleteLater()
    dialog.close()
    dialog.deleteLater()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
