"""The "Open or create project" dialog: the projects folder's projects, and a form for a new one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.project import GROUP_BY, ProjectStore
from workbench.ui.crash import show_error
from workbench.ui.session import create_and_scan
from workbench.ui.workers import run_with_progress


class ProjectChooserDialog(QDialog):
    """Pick a project to open, or create one; `chosen_name` holds the answer once accepted."""

    def __init__(self, store: ProjectStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open or create project — Workbench")
        self.setObjectName("projectChooser")
        self.store = store
        self.chosen_name: str | None = None
        self.resize(640, 520)
        heading = QLabel(f"Projects in {store.projects_dir}", self)
        heading.setObjectName("sectionTitle")
        heading.setWordWrap(True)
        self.projects = QListWidget(self)
        self.projects.setObjectName("projectList")
        self.projects.itemDoubleClicked.connect(lambda _item: self._open_selected())
        self._fill_projects()

        self.name = QLineEdit(self)
        self.name.setPlaceholderText("lowercase letters, digits, - and _")
        self.source = QLineEdit(self)
        self.source.setPlaceholderText("folder of images to review")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(browse)
        self.group_by = QComboBox(self)
        self.group_by.addItems(list(GROUP_BY))
        create = QPushButton("Create and scan", self)
        create.setObjectName("createButton")
        create.clicked.connect(self._create)
        form_box = QGroupBox("Create a project", self)
        form = QFormLayout(form_box)
        form.addRow("Name", self.name)
        form.addRow("Source folder", source_row)
        form.addRow("Group by", self.group_by)
        create_row = QHBoxLayout()
        create_row.addStretch(1)
        create_row.addWidget(create)
        form.addRow("", create_row)

        buttons = QDialogButtonBox(self)
        self.open_button = buttons.addButton("Open", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._open_selected)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.projects, 1)
        layout.addWidget(form_box)
        layout.addWidget(buttons)

    def _fill_projects(self) -> None:
        self.projects.clear()
        for name in self.store.names():
            try:
                detail = str(self.store.open(name).source)
            except WorkbenchError as exc:
                detail = exc.message
            item = QListWidgetItem(f"{name}\n    {detail}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.projects.addItem(item)
        if self.projects.count():
            self.projects.setCurrentRow(0)
            self.projects.setFocus()
        else:
            self.projects.addItem(QListWidgetItem("No projects yet: create one below."))

    def _open_selected(self) -> None:
        item = self.projects.currentItem()
        name = item.data(Qt.ItemDataRole.UserRole) if item else None
        if name:
            self.chosen_name = str(name)
            self.accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Source folder", self.source.text() or str(Path.home())
        )
        if folder:
            self.source.setText(folder)
            if not self.name.text():
                self.name.setText(_suggest_name(Path(folder).name))

    def _create(self) -> None:
        name, source = self.name.text().strip(), self.source.text().strip()
        if not name or not source:
            show_error(self, "Give the new project a name and a source folder.")
            return
        try:
            created = run_with_progress(
                self, f"Creating project '{name}'…", create_and_scan,
                self.store, name, Path(source).expanduser(), self.group_by.currentText(),
            )  # fmt: skip
        except WorkbenchError as exc:
            show_error(self, exc)
            return
        self.chosen_name = created
        self.accept()


def _suggest_name(folder_name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in folder_name.lower())
    return cleaned.strip("-_") or "project"
