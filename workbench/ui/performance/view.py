"""The AI performance view: agreement per batch over time, the models behind it, recent mistakes.

Everything is read from the project database on a worker (data.py) each time the view is
shown; the mistakes' pictures come from the project's thumbnail cache, also off the GUI
thread. Ctrl+E saves the chart as a PNG into the project's `exports/` folder, through
the same export guard as every other export.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.export_target import check_export_target
from workbench.core.project import Project, ProjectStore
from workbench.core.thumbs import ThumbnailCache, thumbs_dir
from workbench.core.timeutil import compact_utc
from workbench.ui.keys import KeyBinding
from workbench.ui.performance.chart import AccuracyChart
from workbench.ui.performance.data import (
    Mistake,
    Performance,
    as_rows,
    mistake_text,
    read_performance,
    summary_text,
)
from workbench.ui.performance.pictures import mistake_picture
from workbench.ui.training.theme import STYLE
from workbench.ui.workers import Runner

log = logging.getLogger(__name__)

PICTURE_HEIGHT = 64
THUMB_MEMORY = 16 * 1024 * 1024
COLUMNS = (("batch", "Batch"), ("decisions", "Decisions"), ("picks", "Picks agreed"),
           ("crops", "Crops agreed"), ("ranker", "Ranker"), ("crop", "Crop model"))  # fmt: skip


def picture_of(cache: ThumbnailCache, mistake: Mistake) -> QImage:
    """A mistake's picture as a QImage (built on a worker thread; QImage may be)."""
    image = mistake_picture(cache, mistake, PICTURE_HEIGHT)
    data = image.tobytes()
    return QImage(data, image.width, image.height, image.width * 3,
                  QImage.Format.Format_RGB888).copy()  # fmt: skip


def save_png(image: QImage, target: Path) -> Path:
    """Write the image as PNG to a temporary name beside `target`, then rename it into place."""
    tmp = target.with_name(f".{target.name}.partial")
    if not image.save(str(tmp), "PNG"):  # type: ignore[call-overload]  # stubs say bytes
        tmp.unlink(missing_ok=True)
        raise WorkbenchError(f"Could not write {target}; is the disk full or read-only?")
    tmp.replace(target)
    return target


class PerformanceView(QWidget):
    """The AI performance view. `refreshed` fires when freshly read data is on screen."""

    title = "AI performance"
    menu_title = "&Performance"
    refreshed = Signal()
    exported = Signal(str)  # the PNG's path
    messageShown = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("performanceView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet(STYLE)
        self.project = project
        self.data: Performance | None = None
        self.thumbs = ThumbnailCache(thumbs_dir(project), max_memory_bytes=THUMB_MEMORY)
        self._reader = Runner(self, threads=1)
        self._pictures = Runner(self, threads=1)
        self._generation = 0
        self._closed = False
        self._build()

    def _build(self) -> None:
        title = QLabel("AI performance", self)
        title.setObjectName("viewTitle")
        self.summary = QLabel("", self)
        self.summary.setObjectName("viewSummary")
        self.summary.setWordWrap(True)
        self.export_button = QPushButton("Export chart as PNG   Ctrl+E", self)
        self.export_button.setObjectName("exportChart")
        self.export_button.clicked.connect(self.export_chart)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addSpacing(12)
        head.addWidget(self.summary, 1)
        head.addWidget(self.export_button)
        self.chart = AccuracyChart(f"AI agreement per batch · project {self.project.name}", self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("batchTable")
        self.table.setHorizontalHeaderLabels([name for _, name in COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(self.chart)
        left.addWidget(self.table)
        left.setChildrenCollapsible(False)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 1)
        left.setSizes([440, 180])
        self.chart.setMinimumHeight(260)
        self.table.setMinimumHeight(110)
        self.mistakes_title = QLabel("Recent AI mistakes", self)
        self.mistakes_title.setObjectName("cardTitle")
        self.mistakes = QListWidget(self)
        self.mistakes.setObjectName("mistakeList")
        self.mistakes.setIconSize(QSize(PICTURE_HEIGHT * 3, PICTURE_HEIGHT))
        self.mistakes.setSpacing(3)
        self.mistakes.setWordWrap(True)
        self.mistakes.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.mistakes_title)
        column.addWidget(self.mistakes, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([760, 480])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(split, 1)

    # -- the View protocol ---------------------------------------------------------------

    def bindings(self) -> list[KeyBinding]:
        return [
            KeyBinding(("Ctrl+E",), "export the chart as PNG into exports/", self.export_chart),
            KeyBinding(("Ctrl+R",), "read the database again", self.refresh),
        ]

    def hint_text(self) -> str:
        return "Ctrl+E  export the chart as PNG     Ctrl+R  read again"

    def menu_actions(self) -> list[QAction]:
        """The Performance menu (keys shown, not bound: they act only inside this view)."""
        actions = []
        for text, slot in (("Export the chart as PNG\tCtrl+E", self.export_chart),
                           ("Read the database again\tCtrl+R", self.refresh)):  # fmt: skip
            action = QAction(text, self)
            action.triggered.connect(slot)
            actions.append(action)
        return actions

    def busy(self) -> bool:
        return bool(self._reader.pending() or self._pictures.pending())

    def shutdown(self) -> None:
        """Stop this view's workers; none outlives the call."""
        self._closed = True
        self._reader.shutdown()
        self._pictures.shutdown()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.chart.build()  # pyqtgraph loads when the view is first shown, not at start
        self.refresh()  # the reviewer may have finalized a batch meanwhile

    # -- data ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the database on a worker; the view updates when it answers."""
        if self._closed:
            return
        self._reader.submit(read_performance, self.project, on_done=self._show,
                            on_failed=self._failed)  # fmt: skip

    def _show(self, data: Performance) -> None:
        self.data = data
        self.summary.setText(summary_text(data))
        self.chart.show_batches(data.batches)
        rows = as_rows(data.batches)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(reversed(rows)):  # newest batch first
            for c, (key, _) in enumerate(COLUMNS):
                item = QTableWidgetItem(str(row[key]))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(r, c, item)
        shown = len(data.mistakes)
        more = f", the newest {shown}" if data.mistakes_total > shown else ""
        self.mistakes_title.setText(f"Recent AI mistakes ({data.mistakes_total}{more})")
        self._show_mistakes(data.mistakes)
        self.refreshed.emit()

    def _show_mistakes(self, mistakes: list[Mistake]) -> None:
        self._generation += 1
        generation = self._generation
        self.mistakes.clear()
        if not mistakes:
            self.mistakes.addItem(QListWidgetItem("None: the AI agreed with every decision so far."))
            return
        placeholder = QPixmap(PICTURE_HEIGHT, PICTURE_HEIGHT)
        placeholder.fill(Qt.GlobalColor.transparent)
        for i, m in enumerate(mistakes):
            item = QListWidgetItem(QIcon(placeholder), mistake_text(m))
            item.setToolTip(f"{m.group_id}\nkept: {m.user_path}" +
                            (f"\nAI's pick: {m.ai_path}" if m.selection_wrong and m.ai_path else ""))  # fmt: skip
            item.setSizeHint(QSize(0, PICTURE_HEIGHT + 10))
            self.mistakes.addItem(item)
            self._pictures.submit(picture_of, self.thumbs, m,
                                  on_done=partial(self._picture, generation, i),
                                  on_failed=lambda exc: log.info("no mistake picture: %s", exc))  # fmt: skip

    def _picture(self, generation: int, row: int, image: QImage) -> None:
        if generation != self._generation or row >= self.mistakes.count():
            return  # the list was read again meanwhile
        self.mistakes.item(row).setIcon(QIcon(QPixmap.fromImage(image)))

    def pictures_ready(self) -> bool:
        """True when every mistake's picture has arrived."""
        return not self._pictures.pending()

    def _failed(self, exc: BaseException) -> None:
        text = exc.message if isinstance(exc, WorkbenchError) else str(exc)
        self.summary.setText(f"The AI's performance could not be read: {text}")
        self.messageShown.emit(self.summary.text())

    # -- export --------------------------------------------------------------------------

    def export_target(self) -> Path:
        """Where the next export goes: exports/ai-performance-<UTC time>.png, checked."""
        store = ProjectStore(self.project.root.parent, self.project.models_root)
        target = self.project.folder("exports") / f"ai-performance-{compact_utc()}.png"
        n = 2
        while target.exists():
            target = target.with_name(f"ai-performance-{compact_utc()}__{n}.png")
            n += 1
        return check_export_target(store, self.project, target)

    def export_chart(self) -> None:
        """Save the chart as it is on screen into exports/ (Ctrl+E); says where."""
        if not self.isVisible() or self.data is None:
            self._say("Open the AI performance view (Ctrl+6) to export its chart.")
            return
        try:
            self.project.folder("exports").mkdir(exist_ok=True)
            target = self.export_target()
        except WorkbenchError as exc:
            self._say(f"The chart was not exported: {exc.message}")
            return
        except OSError as exc:
            self._say(f"The chart was not exported: {exc}.")
            return
        self._reader.submit(save_png, self.chart.image(), target,
                            on_done=self._exported,
                            on_failed=lambda exc: self._say(
                                f"The chart was not exported: {getattr(exc, 'message', exc)}"))  # fmt: skip

    def _exported(self, path: Path) -> None:
        self._say(f"Saved the chart to {path}.")
        self.exported.emit(str(path))

    def _say(self, text: str) -> None:
        self.messageShown.emit(text)
