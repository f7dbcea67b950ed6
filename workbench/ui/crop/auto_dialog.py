"""Auto-crop of crop_auto/: a preview list of what will happen, one button, a progress bar."""

from __future__ import annotations

import threading

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.crop_results import CropResult, SubmitReport
from workbench.core.crops import CropBox
from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.ui.crop import jobs
from workbench.ui.crop.paint import PROPOSAL, box_rect
from workbench.ui.workers import Runner

ICON = QSize(120, 90)
_STYLE = """
QListWidget#autoPreview { background: #15181c; border: 1px solid #333842; border-radius: 6px; }
QListWidget#autoPreview::item { padding: 4px; color: #d9dde4; }
QProgressBar#autoProgress { background: #15181c; border: 1px solid #3a404a; border-radius: 4px;
                            text-align: center; color: #d9dde4; min-height: 18px; }
QProgressBar#autoProgress::chunk { background: #34507a; border-radius: 3px; }
"""


def _icon(image: QImage | None, box: CropBox) -> QIcon:
    """The preview with its AI crop drawn on it."""
    pix = QPixmap(ICON)
    pix.fill(QColor("#15181c"))
    if image is not None and not image.isNull():
        p = QPainter(pix)
        size = image.size().scaled(ICON, Qt.AspectRatioMode.KeepAspectRatio)
        x, y = (ICON.width() - size.width()) / 2, (ICON.height() - size.height()) / 2
        rect = QRectF(x, y, size.width(), size.height())
        p.drawImage(rect, image)
        p.setPen(QPen(PROPOSAL, 2))
        p.drawRect(box_rect(rect, box))
        p.end()
    return QIcon(pix)


class AutoCropDialog(QDialog):
    """Lists crop_auto/ with each image's AI crop; "Crop all" runs them as one undoable action."""

    finished_run = Signal(object)  # the SubmitReport
    planned = Signal()

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("autoCropDialog")
        self.setWindowTitle("Auto-crop crop_auto/")
        self.setStyleSheet(_STYLE)
        self.project = project
        self.report: SubmitReport | None = None
        self._stop = threading.Event()
        self._runner = Runner(self, threads=1)
        self.summary = QLabel("Reading crop_auto/…", self)
        self.summary.setWordWrap(True)
        self.preview = QListWidget(self)
        self.preview.setObjectName("autoPreview")
        self.preview.setIconSize(ICON)
        self.preview.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("autoProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.buttons = QDialogButtonBox(self)
        self.run_button = QPushButton("Crop all", self)
        self.run_button.setEnabled(False)
        self.run_button.setDefault(True)
        self.buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.run_button.clicked.connect(self.run)
        self.close_button.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self.resize(620, 560)
        self._runner.submit(jobs.plan_auto, project, on_done=self._show_plan, on_failed=self._fail)

    def busy(self) -> bool:
        return bool(self._runner.pending())

    def _show_plan(self, plan: jobs.AutoPlan) -> None:
        self.preview.clear()
        for req in plan.requests:
            coords = ", ".join(f"{v:.2f}" for v in req.box.to_list())
            item = QListWidgetItem(_icon(plan.previews.get(str(req.image)), req.box),
                                   f"{req.image.name}\nAI crop [{coords}]")  # fmt: skip
            item.setData(Qt.ItemDataRole.UserRole, str(req.image))
            self.preview.addItem(item)
        for left in plan.left:
            self._add_left(left)
        n = len(plan.requests)
        self.summary.setText(
            f"{n} image(s) in crop_auto/ will be cropped to the AI's box, recorded like manual "
            f"crops, and their sidecars removed; {len(plan.left)} left as they are. "
            "Ctrl+Z in the crop view undoes the whole run."
        )
        self.progress.setRange(0, max(1, n))
        self.run_button.setEnabled(n > 0)
        self.run_button.setText(f"Crop all {n}")
        self.planned.emit()

    def _add_left(self, result: CropResult) -> None:
        why = result.error or result.warning or ""
        item = QListWidgetItem(f"{result.image.name}\n{why}")
        item.setForeground(QColor("#e07a6a" if result.error else "#e0b35a"))
        self.preview.addItem(item)

    def run(self) -> None:
        if self.busy():
            return
        self.run_button.setEnabled(False)
        self.summary.setText("Cropping…")
        self._runner.submit(jobs.run_auto, self.project, should_stop=self._stop.is_set,
                            on_progress=self._progress, on_done=self._done,
                            on_failed=self._fail)  # fmt: skip

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, total))
        self.progress.setFormat(f"{stage}  %v / %m")

    def _done(self, report: SubmitReport) -> None:
        self.report = report
        self.progress.setValue(self.progress.maximum())
        by_image = {str(r.image): r for r in report.results}
        for i in range(self.preview.count()):
            item = self.preview.item(i)
            result = by_image.get(str(item.data(Qt.ItemDataRole.UserRole)))
            if result is None:
                continue
            if result.ok and result.size:
                item.setText(f"✓ {result.image.name}\n→ crop_cropped/{result.output.name if result.output else ''}"
                             f"  {result.size[0]} × {result.size[1]} px")  # fmt: skip
            elif result.error:
                item.setText(f"✗ {result.image.name}\n{result.error}")
                item.setForeground(QColor("#e07a6a"))
        c = report.counts
        self.summary.setText(
            f"Cropped {c['cropped']} image(s), {c['rows_updated']} decision row(s) updated; "
            f"{c['skipped']} skipped, {c['errors']} error(s)."
        )
        self.finished_run.emit(report)

    def _fail(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, WorkbenchError) else f"Auto-crop failed: {exc}"
        self.summary.setText(message)
        self.summary.setStyleSheet("color: #e07a6a;")
        self.run_button.setEnabled(False)

    def shutdown(self) -> None:
        self._stop.set()
        self._runner.shutdown()

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        # A run in progress stops after the image it is on; what was cropped is kept.
        self.shutdown()
        super().closeEvent(event)
