"""Which project the GUI shows: open one (asking again when that fails), switch, reopen recent.

The launcher owns the loop "try to open; on failure say why and let the user pick another".
What it asks the user goes through `Dialogs`, which tests replace with a scripted stand-in.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QMessageBox

from workbench.core.errors import WorkbenchError
from workbench.core.project import ProjectStore
from workbench.ui.main_window import MainWindow
from workbench.ui.project_chooser import ProjectChooserDialog
from workbench.ui.session import ProjectSession, open_session


class Dialogs:
    """The questions the launcher asks: shown as real dialogs."""

    def error(self, text: str) -> None:
        QMessageBox.warning(None, "Workbench", text)

    def choose_project(self, store: ProjectStore) -> str | None:
        dialog = ProjectChooserDialog(store)
        try:
            return dialog.chosen_name if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


class Launcher:
    """Opens projects into main windows; at most one window (one project) at a time."""

    def __init__(self, store: ProjectStore, dialogs: Dialogs | None = None) -> None:
        self.store = store
        self.dialogs = dialogs or Dialogs()
        self.window: MainWindow | None = None

    def open(self, name: str | None) -> MainWindow | None:
        """The window of project `name` (or of one the user picks), shown; None if they give up."""
        while True:
            if name is None:
                name = self.dialogs.choose_project(self.store)
                if name is None:
                    return None
            try:
                session = open_session(self.store, name)
            except WorkbenchError as exc:
                self.dialogs.error(exc.message)
                name = None
                continue
            return self._show(session)

    def switch(self) -> None:
        """File > Open: pick another project; the current one stays open if that fails."""
        current = self.window.project.name if self.window else None
        name = self.dialogs.choose_project(self.store)
        if name is None or name == current:
            return
        try:
            session = open_session(self.store, name)
        except WorkbenchError as exc:
            self.dialogs.error(exc.message)
            return
        old = self.window
        self._show(session)
        if old is not None:
            old.close()

    def _show(self, session: ProjectSession) -> MainWindow:
        window = MainWindow(session)
        window.launcher = self  # type: ignore[attr-defined]  # keeps the launcher alive with it
        window.openProjectRequested.connect(self.switch)
        self.window = window
        window.show()
        return window
