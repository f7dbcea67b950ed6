"""The project overview: what the project holds, and a browser through its groups."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.ui.group_browser import GroupBrowser
from workbench.ui.keys import KeyBinding
from workbench.ui.project_stats import Snapshot, read_snapshot
from workbench.ui.thumbnails import ThumbnailLoader
from workbench.ui.workers import Runner


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _ai_text(perf: dict) -> str:  # type: ignore[type-arg]
    """E.g. "80% right in 6 decisions; no crops done yet"."""
    if not perf["decisions"]:
        return "no decisions yet"
    picks = f"{_percent(perf['selection_accuracy'])} right in {perf['decisions']} decisions"
    both = perf["decisions_with_both_crops"]
    crops = f"crops {_percent(perf['crop_accuracy'])} of {both}" if both else "no crops done yet"
    return f"{picks}; {crops}"


class StatsPanel(QFrame):
    """The left column: project facts and counts, and the files the scan skipped."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsPanel")
        self.title = QLabel(self)
        self.title.setObjectName("projectTitle")
        self.source = QLabel(self)
        self.source.setObjectName("projectSource")
        self.source.setWordWrap(True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(5)
        for key, label in (("groups", "Groups"), ("images", "Images"), ("decided", "Decided"),
                           ("waiting", "Waiting to crop"), ("ai", "AI picks"),
                           ("labels", "Plate labels"), ("models", "Models")):  # fmt: skip
            value = QLabel("…", self)
            value.setObjectName(f"stat_{key}")
            value.setWordWrap(True)
            self.fields[key] = value
            form.addRow(QLabel(label, self), value)
        self.skipped_title = QLabel("Skipped files", self)
        self.skipped_title.setObjectName("sectionTitle")
        self.skipped = QListWidget(self)
        self.skipped.setObjectName("skippedList")
        self.skipped.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.skipped.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        layout.addWidget(self.title)
        layout.addWidget(self.source)
        layout.addSpacing(4)
        layout.addLayout(form)
        layout.addSpacing(4)
        layout.addWidget(self.skipped_title)
        layout.addWidget(self.skipped, 1)

    def show_project(self, project: Project) -> None:
        self.title.setText(project.name)
        self.source.setText(f"Source: {project.source}")
        self.source.setToolTip(str(project.source))

    def show_snapshot(self, snap: Snapshot) -> None:
        s, perf = snap.status, snap.performance
        self.fields["groups"].setText(
            f"{s['groups']} in {s['batches']} batch(es) of {s['batch_size']}"
        )
        self.fields["images"].setText(str(s["images"]))
        staged = f", {s['staged']} staged" if s["staged"] else ""
        self.fields["decided"].setText(f"{s['decided']} decided{staged}, {s['undecided']} open")
        folders = s["folders"]
        self.fields["waiting"].setText(
            f"crop/ {folders.get('crop', 0)}   ·   crop_auto/ {folders.get('crop_auto', 0)}"
        )
        self.fields["ai"].setText(_ai_text(perf))
        labels = s["labels"]
        self.fields["labels"].setText(f"{labels['labeled']} labeled, {labels['skipped']} skipped")
        champions = [f"{m.kind} v{m.version}" for m in snap.models if m.champion]
        self.fields["models"].setText(
            ", ".join(champions) if champions
            else f"{len(snap.models)} version(s), no champion" if snap.models
            else "none yet (heuristics)"
        )  # fmt: skip
        self.skipped_title.setText(f"Skipped files ({len(snap.skipped)})")
        self.skipped.clear()
        for path, reason in snap.skipped:
            name = path.rsplit("/", 1)[-1]
            item = QListWidgetItem(f"{name}\n    {reason}")
            item.setToolTip(f"{path}\n{reason}")
            self.skipped.addItem(item)
        if not snap.skipped:
            self.skipped.addItem(QListWidgetItem("None: every file in the source was usable."))


class ProjectOverview(QWidget):
    """The overview view. `refreshed` fires each time new data from the database is shown."""

    title = "Project overview"
    refreshed = Signal()
    failed = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("projectOverview")
        self.project = project
        self._reader = Runner(self, threads=1)
        self.loader = ThumbnailLoader(self)
        self.stats = StatsPanel(self)
        self.stats.setFixedWidth(300)
        self.stats.show_project(project)
        self.browser = GroupBrowser(self.loader, self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 6)
        layout.setSpacing(12)
        layout.addWidget(self.stats)
        layout.addWidget(self.browser, 1)

    def bindings(self) -> list[KeyBinding]:
        return [
            KeyBinding(("Left", "PgUp"), "previous group", lambda: self.browser.step(-1)),
            KeyBinding(("Right", "PgDown"), "next group", lambda: self.browser.step(1)),
            KeyBinding(("Home",), "first group", lambda: self.browser.show_index(0)),
            KeyBinding(
                ("End",),
                "last group",
                lambda: self.browser.show_index(self.browser.group_count - 1),
            ),  # fmt: skip
            KeyBinding(("F5",), "reload from the database", self.refresh),
        ]

    def refresh(self) -> None:
        """Re-read the database on a worker thread; the view updates when it answers."""
        self._reader.submit(read_snapshot, self.project, on_done=self._apply, on_failed=self._fail)

    def busy(self) -> bool:
        return bool(self._reader.pending()) or self.loader.busy()

    def shutdown(self) -> None:
        """Stop this view's workers; none outlives the call."""
        self._reader.shutdown()
        self.loader.shutdown()

    def _apply(self, snap: Snapshot) -> None:
        self.loader.forget()  # files may have moved since the last read
        self.stats.show_snapshot(snap)
        self.browser.set_groups(snap.groups)
        self.refreshed.emit()

    def _fail(self, exc: BaseException) -> None:
        message = (
            exc.message if isinstance(exc, WorkbenchError) else f"Reading the project failed: {exc}"
        )
        self.failed.emit(message)
