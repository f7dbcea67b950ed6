"""Restore: the files in delete_staging/, and moving the chosen ones back where they came from.

The move is `core.restore.restore` (one journaled operation, so a crash finishes it and
undo can reverse it); this dialog only lists, selects and reports in sentences.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.core.restore import RestoreResult, StagedFile, restore, staged_for_deletion
from workbench.ui.project_stats import human_size

PATH_ROLE = Qt.ItemDataRole.UserRole


def describe(item: StagedFile) -> str:
    """One list line: the name, where it came from, its size and group."""
    origin = f"from {item.original_path.parent}" if item.original_path else "origin unknown"
    group = f"   ·   {item.group_id}" if item.group_id else ""
    extra = f"   ·   +{len(item.companions)} companion file(s)" if item.companions else ""
    return f"{item.path.name}\n    {origin}   ·   {human_size(item.size_bytes)}{group}{extra}"


def result_message(result: RestoreResult, project: str) -> str:
    """What a restore did: the files (at most five named) and how to take it back."""
    named = [f"{r.dst.name} → {r.dst.parent}" for r in result.restored[:5]]
    more = f" and {len(result.restored) - 5} more" if len(result.restored) > 5 else ""
    return (
        f"Restored {len(result.restored)} file(s) from delete_staging/: "
        f"{'; '.join(named)}{more}. `workbench undo {project}` moves them back again."
    )


class RestoreDialog(QDialog):
    """Lists delete_staging/ and restores the selected files; `restored` fires after each."""

    restored = Signal(object)  # RestoreResult

    def __init__(self, project: Project, conn: sqlite3.Connection,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("restoreDialog")
        self.setWindowTitle("Restore from delete_staging/")
        self.project, self.conn = project, conn
        intro = QLabel(
            "Rejected images and the groups' other images wait in delete_staging/. Select "
            "files to move them back to the folder they came from (a taken name gets "
            "a __2 suffix; nothing is overwritten).",
            self,
        )
        intro.setWordWrap(True)
        self.files = QListWidget(self)
        self.files.setObjectName("stagedFiles")
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.files.itemSelectionChanged.connect(self._update_button)
        self.message = QLabel(self)
        self.message.setObjectName("restoreMessage")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(self)
        self.restore_button = QPushButton("Restore selected", self)
        self.restore_button.setObjectName("restoreButton")
        self.restore_button.setDefault(True)
        self.restore_button.clicked.connect(self.restore_selected)
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.files, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(720, 460)
        self.reload()

    def reload(self) -> None:
        """Re-read delete_staging/."""
        self.files.clear()
        try:
            staged = staged_for_deletion(self.project, self.conn)
        except (WorkbenchError, OSError, sqlite3.Error) as exc:
            self.message.setText(f"Cannot list delete_staging/: {exc}")
            staged = []
        for entry in staged:
            item = QListWidgetItem(describe(entry))
            item.setData(PATH_ROLE, str(entry.path))
            item.setToolTip(str(entry.path))
            self.files.addItem(item)
        if not staged:
            self.files.addItem(QListWidgetItem("delete_staging/ is empty: nothing to restore."))
            self.files.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
        self._update_button()

    def select_names(self, names: list[str]) -> None:
        """Select the files with these names (what a user does with the mouse)."""
        for i in range(self.files.count()):
            item = self.files.item(i)
            path = item.data(PATH_ROLE)
            item.setSelected(bool(path) and Path(path).name in names)

    def restore_selected(self) -> RestoreResult | None:
        paths = [it.data(PATH_ROLE) for it in self.files.selectedItems() if it.data(PATH_ROLE)]
        if not paths:
            self.message.setText("Select one or more files first.")
            return None
        try:
            result = restore(self.project, self.conn, paths)
        except WorkbenchError as exc:
            self.message.setText(f"Nothing was restored: {exc.message}")
            return None
        except sqlite3.Error as exc:
            self.message.setText(f"Nothing was restored: the project database failed ({exc}).")
            return None
        self.reload()
        self.message.setText(result_message(result, self.project.name))
        self.restored.emit(result)
        return result

    def _update_button(self) -> None:
        self.restore_button.setEnabled(bool(self.files.selectedItems()))
