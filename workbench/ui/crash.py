"""Unexpected errors: logged with their traceback to a file, shown to the user as a sentence."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from workbench.core.errors import WorkbenchError

log = logging.getLogger("workbench")
LOG_NAME = "workbench.log"


def log_dir() -> Path:
    """The user's data folder for Workbench (e.g. ~/.local/share/Workbench/Workbench)."""
    where = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(where or Path.home() / ".workbench")


def setup_logging() -> Path:
    """Log to <data folder>/workbench.log; returns the log file's path."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def sentence(exc: BaseException, log_file: Path | None = None) -> str:
    """What the user reads: a WorkbenchError's own sentence, else a short one pointing at the log."""
    if isinstance(exc, WorkbenchError):
        return exc.message
    where = f" Details were written to {log_file}." if log_file else ""
    return f"Something went wrong: {type(exc).__name__}: {exc}.{where}"


def show_error(
    parent: QWidget | None, exc_or_text: BaseException | str, title: str = "Workbench"
) -> None:
    text = exc_or_text if isinstance(exc_or_text, str) else sentence(exc_or_text)
    QMessageBox.warning(parent, title, text)


def install_excepthook(log_file: Path) -> None:
    """Route uncaught exceptions to the log (with traceback) and a dialog (without one)."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        if isinstance(exc, WorkbenchError):
            log.warning("%s: %s", exc.code, exc.message)
        else:
            log.error("Uncaught error\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        if QApplication.instance() is not None:
            QMessageBox.critical(QApplication.activeWindow(), "Workbench", sentence(exc, log_file))

    sys.excepthook = hook
