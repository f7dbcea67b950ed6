"""The crop view: pages of images from crop/ (or crop_auto/), a box on each, Enter crops them all.

The view holds no crop state of its own: the boxes live in the core `CropSession`, the
files and rows change only through `crop_submit`, run off the GUI thread. Warnings
(no sidecar, a sidecar that cannot be trusted) and results are shown in the banner.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QLabel,
    QVBoxLayout,
    QWidget,
)

from workbench.core.crop_queue import FROM_MODEL, FROM_SIDECAR, Proposer
from workbench.core.crop_results import CropRequest, SubmitReport
from workbench.core.cropping import PRESET_ORDER, Change, CropSession, ImageCrop
from workbench.core.crops import CropBox
from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.ui.crop import jobs
from workbench.ui.crop.auto_dialog import AutoCropDialog
from workbench.ui.crop.canvas import CropCanvas, Tile, mods_of
from workbench.ui.crop.toolbar import CropToolbar
from workbench.ui.keys import KeyBinding, dispatch
from workbench.ui.workers import Runner

_TAGS = {FROM_SIDECAR: "AI proposal", FROM_MODEL: "AI (crop model)"}
_ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0),
           Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}  # fmt: skip
_LOCAL_STYLE = """
QWidget#cropView { background: #1d2026; }
QLabel#cropBanner { border-radius: 6px; padding: 6px 10px; }
QLabel#cropBanner[level="info"] { background: #1f3327; color: #a8e0b8; border: 1px solid #2f5a3c; }
QLabel#cropBanner[level="warning"] { background: #3a3222; color: #f0c878; border: 1px solid #5a4a2a; }
QLabel#cropBanner[level="error"] { background: #3a2424; color: #f0a898; border: 1px solid #6a3434; }
QLabel#cropPosition { color: #9aa3b2; }
"""


class CropView(QWidget):
    """The multi-crop canvas over a project's crop/ or crop_auto/ folder."""

    title = "Crop"
    pageShown = Signal()  # a page (or the "nothing to crop" message) is on screen
    submitted = Signal(object)  # SubmitReport
    undone = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None, *,
                 propose: Proposer | None = None, use_model: bool = True) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("cropView")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(_LOCAL_STYLE)
        self.project = project
        self.folder, self.per_page, self.start, self.total = "crop", 3, 0, 0
        self.page: jobs.Page | None = None
        self.session: CropSession | None = None
        self.auto_dialog: AutoCropDialog | None = None
        self._preset, self._locked = "free", False
        self._kept: dict[str, CropBox] = {}  # boxes of images a submit could not crop
        self._pending_boxes: dict[str, CropBox] = {}
        self._propose = propose
        self._use_model = use_model and propose is None
        self._runner = Runner(self, threads=1)
        self._build()
        self._loaded = False  # the first page loads when the view is first shown

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        bar = self.toolbar = CropToolbar(self)
        self.folder_box, self.count_box, self.aspect_box = (
            bar.folder_box,
            bar.count_box,
            bar.aspect_box,
        )
        self.lock_box, self.position, self.buttons = bar.lock_box, bar.position, bar.buttons
        self.count_box.setCurrentIndex(self.per_page - 1)
        for key, slot in (("reset", self.reset), ("submit", self.submit), ("undo", self.undo),
                          ("auto", self.open_auto)):  # fmt: skip
            self.buttons[key].clicked.connect(slot)
        self.banner = QLabel(self)
        self.banner.setObjectName("cropBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.canvas = CropCanvas(self)
        self.canvas.key_handler = self.handle_key
        self.canvas.changed.connect(self._on_change)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)
        layout.addWidget(bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.canvas, 1)
        self.folder_box.currentIndexChanged.connect(
            lambda _: self.set_folder(self.folder_box.currentData())
        )
        self.count_box.currentIndexChanged.connect(
            lambda _: self.set_per_page(self.count_box.currentData())
        )
        self.aspect_box.currentIndexChanged.connect(
            lambda _: self.set_aspect(self.aspect_box.currentData())
        )
        self.lock_box.clicked.connect(lambda _: self.toggle_lock())

    # -- the View protocol ------------------------------------------------------------------

    def bindings(self) -> list[KeyBinding]:
        s = self._session_call
        return [
            KeyBinding(("Return", "Enter"), "crop every image on screen", self.submit),
            KeyBinding(("Backspace",), "reset the box to the AI proposal", self.reset),
            KeyBinding(
                ("Tab",), "next image (Shift+Tab: previous)", lambda: s(lambda x: x.focus_next(1))
            ),
            KeyBinding(
                ("Left", "Right", "Up", "Down"),
                "nudge the box (Shift: ×10, Ctrl: resize)",
                lambda: None,
            ),  # fmt: skip
            KeyBinding(
                ("A",),
                "next aspect preset (Shift+A: previous)",
                lambda: s(lambda x: x.next_aspect(1)),
            ),
            KeyBinding(("L",), "lock or unlock the aspect", self.toggle_lock),
            KeyBinding(
                ("O",),
                "turn the aspect portrait / landscape",
                lambda: s(lambda x: x.flip_orientation()),
            ),
            KeyBinding(("PgDown",), "next images, without cropping", lambda: self.step_page(1)),
            KeyBinding(("PgUp",), "previous images", lambda: self.step_page(-1)),
            KeyBinding(("Ctrl+Z",), "undo the last crop", self.undo),
            KeyBinding(("Ctrl+B",), "auto-crop crop_auto/ from the AI's boxes", self.open_auto),
            KeyBinding(("Escape",), "cancel the drag", lambda: s(lambda x: x.cancel_drag())),
        ]

    def busy(self) -> bool:
        return bool(self._runner.pending())

    def shutdown(self) -> None:
        if self.auto_dialog is not None:
            self.auto_dialog.shutdown()
        self._runner.shutdown()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.canvas.setFocus()
        if not self._loaded:
            # Not at construction: at start-up the reviewer's prefetch has the CPU.
            self._loaded = True
            self.reload()
        elif self.page is not None and not self.busy():
            self._remember()
            self.reload()  # the reviewer may have sent new images meanwhile

    # -- keys ------------------------------------------------------------------------------

    def handle_key(self, event: QKeyEvent) -> bool:
        """Run the key's action; True when it is one of this view's keys."""
        key, mods = event.key(), mods_of(event)
        if key in _ARROWS:
            dx, dy = _ARROWS[Qt.Key(key)]
            self._session_call(
                lambda s: s.nudge(dx, dy, large=mods.shift, resize=mods.ctrl or mods.alt)
            )
            return True
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            back = key == Qt.Key.Key_Backtab or mods.shift
            self._session_call(lambda s: s.focus_next(-1 if back else 1))
            return True
        if key == Qt.Key.Key_A and mods.shift and not mods.ctrl:
            self._session_call(lambda s: s.next_aspect(-1))
            return True
        return dispatch(self.bindings(), event)

    def _session_call(self, fn) -> None:  # type: ignore[no-untyped-def]
        if self.session is None or self.busy():
            return
        self._on_change(fn(self.session))
        self.canvas.update()

    def _on_change(self, change: Change) -> None:
        if self.session is None or not change.any:
            return
        if change.aspect:
            self._preset, self._locked = self.session.preset, self.session.locked
            self._sync_aspect_controls()

    def _sync_aspect_controls(self) -> None:
        for widget, fn in ((self.aspect_box, lambda: self.aspect_box.setCurrentIndex(PRESET_ORDER.index(self._preset))),
                           (self.lock_box, lambda: self.lock_box.setChecked(self._locked))):  # fmt: skip
            widget.blockSignals(True)
            fn()
            widget.blockSignals(False)

    # -- actions ---------------------------------------------------------------------------

    def set_aspect(self, preset: str) -> None:
        self._preset, self._locked = preset, preset != "free"
        if self.session is not None:
            self._on_change(self.session.set_aspect(preset))
            self.canvas.update()
        self._sync_aspect_controls()

    def toggle_lock(self) -> None:
        if self.session is None:
            self._locked = not self._locked
            self._sync_aspect_controls()
            return
        self._session_call(lambda s: s.toggle_lock())

    def reset(self) -> None:
        self._session_call(lambda s: s.reset())

    def set_folder(self, folder: str) -> None:
        if folder != self.folder:
            self._remember()
            self.folder, self.start = folder, 0
            self.reload()

    def set_per_page(self, count: int) -> None:
        if count != self.per_page:
            self._remember()
            self.per_page = count
            self.reload()

    def step_page(self, step: int) -> None:
        start = self.start + step * self.per_page
        if not self.busy() and 0 <= start < self.total:
            self._remember()
            self.start = start
            self.reload()

    def _remember(self) -> None:
        """Keep the boxes drawn on this page, for when its images are shown again."""
        if self.page is None or self.session is None:
            return
        for pi, im in zip(self.page.images, self.session.images, strict=True):
            if im.box != im.proposal:
                self._kept[str(pi.item.path)] = im.box

    def reload_models(self, kind: str) -> None:
        """A new crop or smart-crop champion: the next proposal comes from it (any thread)."""
        predictor = getattr(self._propose, "predictor", None)
        if predictor is not None and kind in ("crop", "smartcrop"):
            predictor.reload()

    def reload(self) -> None:
        """Read the folder again and show the page from `start` (off the GUI thread)."""
        if self._use_model and self._propose is None:
            self._propose = jobs.model_proposer(self.project)
        if self.session is None:
            self.canvas.show_message("Loading…")
        self._runner.submit(jobs.load_page, self.project, self.folder, self.start, self.per_page,
                            self._propose, on_done=self._show_page, on_failed=self._fail)  # fmt: skip

    def _show_page(self, page: jobs.Page, before: tuple[str, str] | None = None) -> None:
        """Show a page; `before` is a (level, text) banner to keep above its warnings."""
        self.page, self.start, self.total = page, page.start, page.total
        if not page.images:
            self.session = None
            self.canvas.show_message(f"Nothing waits in {self.folder}/. Images the reviewer sends "
                                     "to cropping appear here.")  # fmt: skip
            self._banner(*(before if before else ("", "")))
            self._update_position()
            self.pageShown.emit()
            return
        crops, tiles = [], []
        for pi in page.images:
            item = pi.item
            im = ImageCrop(item.width or 400, item.height or 300, pi.box, pi.source)
            kept = self._kept.pop(str(item.path), None)
            if kept is not None:
                im.box = kept
            crops.append(im)
            info = f"records the crop on {item.group_id}" if item.group_id else ""
            tag = "" if pi.error else _TAGS.get(pi.source, "whole image")
            tiles.append(Tile(item.path.name, pi.image, tag,
                              item.warning or "", pi.error or "", info))  # fmt: skip
        self.session = CropSession(crops)
        if self._preset != "free":
            self.session.set_aspect(self._preset)
        elif self._locked:
            self.session.toggle_lock()
        self.canvas.show_page(self.session, tiles)
        notes = [f"⚠ {t.warning}" for t in tiles if t.warning] + [
            f"✗ {t.error}" for t in tiles if t.error
        ]
        level, text = before if before and before[1] else ("warning" if notes else "", "")
        self._banner(level, "\n".join([text, *notes] if text else notes))
        self._update_position()
        self.pageShown.emit()

    def _update_position(self) -> None:
        shown = len(self.page.images) if self.page else 0
        where = f"{self.start + 1}–{self.start + shown} of {self.total}" if shown else "none"
        self.position.setText(f"Images {where} in {self.folder}/")

    def submit(self) -> None:
        """Crop every image on screen that can be (Enter)."""
        if self.session is None or self.page is None or self.busy() or self.session.dragging:
            return
        requests = [CropRequest(pi.item.path, box)
                    for pi, box in zip(self.page.images, self.session.boxes, strict=True)
                    if pi.error is None]  # fmt: skip
        if not requests:
            self._banner("error", "Nothing on screen can be cropped; PgDown shows the next images.")
            return
        self._pending_boxes = {str(r.image): r.box for r in requests}
        self._banner("info", f"Cropping {len(requests)} image(s)…")
        self._runner.submit(jobs.submit, self.project, requests, on_done=self._submitted,
                            on_failed=self._fail)  # fmt: skip

    def _submitted(self, report: SubmitReport) -> None:
        c = report.counts
        matched = sum(1 for r in report.results if r.ok and r.crop_match)
        compared = sum(1 for r in report.results if r.ok and r.crop_match is not None)
        lines = [f"Cropped {c['cropped']} image(s) to crop_cropped/: {c['rows_updated']} decision "
                 f"row(s) updated ({matched} of {compared} matched the AI's box)"
                 + (f", {c['without_row']} without a decision row" if c["without_row"] else "")
                 + ". Ctrl+Z undoes."]  # fmt: skip
        for r in report.results:
            if r.error:
                self._kept[str(r.image)] = self._pending_boxes.get(str(r.image), r.box)
                lines.append(f"✗ {r.error}")
            elif r.warning:
                lines.append(f"⚠ {r.warning}")
        self._banner(
            "error" if c["errors"] else "warning" if c["warnings"] else "info", "\n".join(lines)
        )
        self.submitted.emit(report)
        self._reload_keeping_banner()

    def undo(self) -> None:
        if self.busy():
            return
        self._runner.submit(
            jobs.undo_crop, self.project, on_done=self._undone, on_failed=self._fail
        )

    def _undone(self, label: str) -> None:
        self._banner(
            "info", f"Undid: {label}. The images are back in their folder, with their sidecars."
        )
        self.undone.emit(label)
        self._reload_keeping_banner()

    def _reload_keeping_banner(self) -> None:
        text, level = self.banner.text(), self.banner.property("level")
        self._runner.submit(jobs.load_page, self.project, self.folder, self.start, self.per_page, self._propose,
                            on_done=lambda page: self._show_page(page, (str(level or "info"), text)),
                            on_failed=self._fail)  # fmt: skip

    def open_auto(self) -> None:
        if self.auto_dialog is not None:
            self.auto_dialog.shutdown()
            self.auto_dialog.deleteLater()
        self.auto_dialog = AutoCropDialog(self.project, self)
        self.auto_dialog.finished_run.connect(self._auto_done)
        self.auto_dialog.open()

    def _auto_done(self, report: SubmitReport) -> None:
        c = report.counts
        self._banner("error" if c["errors"] else "info",
                     f"Auto-cropped {c['cropped']} image(s) of crop_auto/ ({c['rows_updated']} decision "
                     f"row(s) updated, {c['skipped']} skipped, {c['errors']} error(s)). Ctrl+Z undoes.")  # fmt: skip
        self.submitted.emit(report)
        self._reload_keeping_banner()

    def _fail(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, WorkbenchError) else f"Something went wrong: {exc}"
        self._banner("error", message)
        if self.page is None:
            self.canvas.show_message(message)

    def _banner(self, level: str, text: str) -> None:
        self.banner.setProperty("level", level)
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
