"""The plates view: label plate crops with the keyboard, pre-labeled by OCR in the background.

A thin view over core.plate_labeling.PlateLabeling: every key becomes a call on it and
the view repaints what it returns. Letters and digits are always text here, never
commands (the view claims them before any shortcut can), so Q and S type Q and S.
Pre-labels come from `Predictor.read_plates` on a worker thread, a chunk at a time from
the crop on screen onwards; typing never waits for them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.plate_labeling import (
    KEY_BACK,
    KEY_BACKSPACE,
    KEY_END,
    KEY_ENTER,
    KEY_ESCAPE,
    Change,
    PlateLabeling,
)
from workbench.core.plates import (
    LabelStore,
    PlateSettings,
    Prelabel,
    contamination,
    crop_folders,
    list_crops,
    plate_settings,
    register_crop_folder,
)
from workbench.core.project import Project
from workbench.ui.keys import KeyBinding, dispatch, menu_actions
from workbench.ui.plates.prelabels import Reader, predictor_reader, to_prelabels
from workbench.ui.plates.widgets import CropImages, CropView, PlateTextField, RecentStrip
from workbench.ui.workers import Runner

log = logging.getLogger(__name__)

PRELABEL_CHUNK = 16
_TEXT_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)
_EDIT_KEYS = {Qt.Key.Key_Backspace, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape,
              Qt.Key.Key_End}  # fmt: skip


class PlatesView(QWidget):
    """Seed 004's labeling tool as a Workbench view (title, bindings, shutdown, save_pending)."""

    title = "Plates"
    menu_title = "&Plates"
    changed = Signal()  # after every repaint-worthy change (tests wait on it)

    def __init__(self, project: Project, parent: QWidget | None = None, *, review: bool = False,
                 engine: str = "auto", reader: Reader | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("platesView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.project = project
        self.conn: sqlite3.Connection | None = project.connect()
        self.settings: PlateSettings = plate_settings(project)
        self.folders: list[Path] = crop_folders(project, self.conn)
        self.state = PlateLabeling(LabelStore(self.conn), list_crops(self.folders), review=review,
                                   sign_words=self.settings.sign_words)  # fmt: skip
        self.reader = reader or predictor_reader(project, engine, self.settings.paddleocr_dir)
        self.runner = Runner(self, threads=1)
        self.images = CropImages()
        self.message = ""
        self.prelabel_problem = ""
        self._prelabel_job = False
        self._started = False
        self._closed = False
        self._build()
        self._repaint()

    # -- the View protocol ---------------------------------------------------------------

    def bindings(self) -> list[KeyBinding]:
        return [
            KeyBinding(
                ("Return", "Enter"), "save the label, next crop", lambda: self.press(KEY_ENTER)
            ),
            KeyBinding(("Escape",), "skip this crop (__SKIP__)", lambda: self.press(KEY_ESCAPE)),
            KeyBinding(("[",), "back one crop", lambda: self.press(KEY_BACK)),
            KeyBinding(
                ("Backspace",), "delete the last character", lambda: self.press(KEY_BACKSPACE)
            ),
            KeyBinding(
                ("End",), "keep the pre-label and type after it", lambda: self.press(KEY_END)
            ),
            KeyBinding(("Ctrl+R",), "review mode: walk labeled crops", self.toggle_review),
            KeyBinding(("Ctrl+F",), "in review: only suspicious labels", self.toggle_suspicious),
            KeyBinding(("Ctrl+N",), "sharp pixels or smooth upscaling", self.toggle_nearest),
        ]

    def hint_text(self) -> str:
        """The key hints under the view."""
        return "type the plate     Enter  save     Esc  skip     [  back     Ctrl+R  review"

    def menu_actions(self) -> list[QAction]:
        """The Plates menu (keys shown, not bound: they act only inside this view)."""
        items = [("Review mode\tCtrl+R", self.toggle_review),
                 ("Only suspicious labels\tCtrl+F", self.toggle_suspicious),
                 ("Sharp pixels / smooth\tCtrl+N", self.toggle_nearest),
                 ("Rescan crop folders", self.rescan), ("Add crops folder…", self.add_folder)]  # fmt: skip
        return menu_actions(self, items)

    def save_pending(self) -> None:
        """Save the text typed on the current crop, if changed (the window calls it on quit)."""
        if self.conn is None:
            return
        saved = self.state.save_pending()
        if saved is not None:
            log.info("saved %s for %s on quit", saved.text, saved.image_path)

    def shutdown(self) -> None:
        """Save what is typed, stop the pre-labeling, close the database (idempotent)."""
        if self._closed:
            return
        self.save_pending()
        self._closed = True
        self.runner.shutdown()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- actions -------------------------------------------------------------------------

    def press(self, key: str) -> Change:
        """Apply a key (a KEY_* name or typed text) and repaint."""
        if self._closed:
            return Change("none")
        try:
            change = self.state.handle(key)
        except (WorkbenchError, sqlite3.Error) as exc:
            message = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            self.message = f"Not saved: {message}"
            self._repaint()
            return Change("none", message=self.message)
        if change.saved is not None:
            shown = "skipped" if change.saved.skipped else f"saved {change.saved.text}"
            self.message = f"{change.saved.image_path.name}: {shown} ({change.saved.source})"
        elif change.message:
            self.message = change.message
        self._repaint()
        if change.kind in ("saved", "moved"):
            self._pump()
        return change

    def set_review(self, review: bool, *, suspicious_only: bool | None = None) -> None:
        self.state.set_review(review, suspicious_only=suspicious_only)
        self.review_box.setChecked(self.state.review)
        self.suspicious_box.setChecked(self.state.suspicious_only)
        self.message = "Review: labeled crops" if review else "New pass: crops without a label"
        self._repaint()
        self._pump()

    def toggle_review(self) -> None:
        self.set_review(not self.state.review)

    def toggle_suspicious(self) -> None:
        self.set_review(True, suspicious_only=not self.state.suspicious_only)

    def toggle_nearest(self) -> None:
        self.nearest_box.setChecked(not self.nearest_box.isChecked())

    def rescan(self) -> None:
        """List the crop folders again; new crops join the end of the queue."""
        if self.conn is not None:
            self.folders = crop_folders(self.project, self.conn)
            self.state.refresh(list_crops(self.folders))
            self._repaint()
            self._pump()

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of plate crops")
        if folder and self.conn is not None:
            try:
                register_crop_folder(self.project, self.conn, Path(folder))
            except WorkbenchError as exc:
                self.message = exc.message
            self.rescan()

    # -- keys ----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        # Claim typing (and this view's own keys) before any shortcut sees them: a letter
        # is text here, never a command of another view or menu.
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if self._is_typing(event) or any(b.matches(event) for b in self.bindings()):
                event.accept()
                return True
        return super().event(event)

    def _is_typing(self, event: QKeyEvent) -> bool:
        if event.modifiers() & _TEXT_MODIFIERS:
            return False
        return event.key() in _EDIT_KEYS or (bool(event.text()) and event.text().isprintable()
                                             and event.text() != "?")  # fmt: skip

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if dispatch(self.bindings(), event):
            event.accept()
            return
        if self._is_typing(event):
            self.press(event.text())
            event.accept()
            return
        super().keyPressEvent(event)  # e.g. ? and F1 reach the window's key map

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self._started:
            self._started = True
            self._pump()

    # -- pre-labels ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Start reading the next chunk of crops, from the one on screen on, if idle."""
        if self._prelabel_job or self._closed or self.prelabel_problem or not self._started:
            return
        paths = self.state.pending_prelabels(PRELABEL_CHUNK)
        if not paths:
            self._repaint()
            return
        self._prelabel_job = True
        self.runner.submit(self.reader, paths, on_done=lambda results: self._on_read(paths, results),
                           on_failed=self._on_failed)  # fmt: skip

    def _on_read(self, paths: list[Path], results: Sequence[Any]) -> None:
        self._prelabel_job = False
        if self._closed:
            return
        for path, prelabel in to_prelabels(paths, results):
            self.state.set_prelabel(path, prelabel)  # an unreadable crop is not read again
        self._repaint()
        self._pump()

    def _on_failed(self, exc: BaseException) -> None:
        self._prelabel_job = False
        self.prelabel_problem = (exc.message if isinstance(exc, WorkbenchError)
                                 else f"Pre-labeling stopped: {exc}")  # fmt: skip
        self._repaint()

    # -- painting ------------------------------------------------------------------------

    def _build(self) -> None:
        self.header = QLabel(self)
        self.header.setObjectName("platesHeader")
        self.counters = QLabel(self)
        self.counters.setObjectName("platesCounters")
        self.crop = CropView(self)
        self.field = PlateTextField(self)
        self.prelabel_line = QLabel(self)
        self.prelabel_line.setObjectName("platesPrelabel")
        self.flags = QLabel(self)
        self.flags.setObjectName("platesFlags")
        self.flags.setStyleSheet("color: #eb5f55; font-weight: bold;")
        self.status = QLabel(self)
        self.status.setObjectName("platesStatus")
        self.strip = RecentStrip(self.images, self)
        self.review_box = QCheckBox("Review (Ctrl+R)", self)
        self.suspicious_box = QCheckBox("Only suspicious (Ctrl+F)", self)
        self.nearest_box = QCheckBox("Sharp pixels (Ctrl+N)", self)
        self.nearest_box.setChecked(True)
        self.review_box.setChecked(self.state.review)
        self.suspicious_box.setChecked(self.state.suspicious_only)
        rescan = QPushButton("Rescan crops", self)
        add = QPushButton("Add crops folder…", self)
        for w in (self.review_box, self.suspicious_box, self.nearest_box, rescan, add):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.review_box.toggled.connect(lambda on: on != self.state.review and self.set_review(on))
        self.suspicious_box.toggled.connect(
            lambda on: (
                on != self.state.suspicious_only and self.set_review(True, suspicious_only=on)
            )
        )
        self.nearest_box.toggled.connect(self.crop.set_nearest)
        rescan.clicked.connect(self.rescan)
        add.clicked.connect(self.add_folder)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.counters)
        options = QHBoxLayout()
        for w in (self.review_box, self.suspicious_box, self.nearest_box):
            options.addWidget(w)
        options.addStretch(1)
        options.addWidget(rescan)
        options.addWidget(add)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.crop, 1)
        layout.addWidget(self.field)
        layout.addWidget(self.prelabel_line)
        layout.addWidget(self.flags)
        layout.addWidget(self.strip)
        layout.addLayout(options)
        layout.addWidget(self.status)

    def _repaint(self) -> None:
        s = self.state
        path = s.current
        pos, total = s.position
        mode = (
            ("Review (suspicious)" if s.suspicious_only else "Review") if s.review else "New pass"
        )
        if path is None:
            self.header.setText(f"{mode}: nothing to label" if not s.queue else f"{mode}: done, "
                                f"{total} crop(s) walked. [ goes back, Ctrl+R switches mode.")  # fmt: skip
            if not s.crops:
                self.header.setText(f"No plate crops yet. Add a folder (button below, or "
                                    f"`workbench plates import {self.project.name} DIR`).")  # fmt: skip
        else:
            self.header.setText(f"{mode} · crop {pos} of {total} · {self._short(path)}")
        c = s.counts
        self.counters.setText(
            f"labeled {c.labeled} · skipped {c.skipped} · remaining {c.remaining}"
        )
        picture = None if path is None else self.images.get(path)
        if path is not None and isinstance(picture, str):
            s.set_unreadable(path, picture)  # only Escape (skip) is left for it
        self.crop.show_crop(picture)
        pre = s.prelabel_of(path)
        label = s.label_of(path)
        replaceable = not s.edited and bool(s.text)
        confidences = list(pre.char_confidences) if pre and s.text == pre.text else []
        self.field.set_state(s.text, confidences, replaceable=replaceable, flagged=bool(s.flags))
        self.prelabel_line.setText(self._prelabel_text(pre, label))
        self.flags.setText(("⚠ looks like a sign: " + ", ".join(s.flags)) if s.flags else "")
        recent = s.recent(self.strip.count)
        flagged = {str(p) for p, lab in recent if lab and contamination(lab.text, s.sign_words)}
        self.strip.set_items(recent, flagged)
        self.status.setText("   ".join(t for t in (self.message, self._progress()) if t))
        self.changed.emit()

    def _prelabel_text(self, pre: Prelabel | None, label: object) -> str:
        parts = []
        if pre is not None:
            parts.append(f"pre-label {pre.text} · {pre.engine} · {pre.confidence:.0%}")
        elif self.state.current is not None and str(self.state.current) not in self.state.prelabels:
            parts.append("pre-label: reading…" if not self.prelabel_problem else "no pre-label")
        else:
            parts.append("no pre-label")
        stored = self.state.label_of(self.state.current)
        if stored is not None:
            parts.append(
                f"stored: {'__SKIP__' if stored.skipped else stored.text} ({stored.source})"
            )
        return "   ".join(parts)

    def _progress(self) -> str:
        if self.prelabel_problem:
            return self.prelabel_problem
        queue = self.state.queue
        done = sum(1 for p in queue if str(p) in self.state.prelabels)
        return f"pre-labeled {done} of {len(queue)}" if queue else ""

    def _short(self, path: Path) -> str:
        for folder in (*self.folders, self.project.root):
            if path.is_relative_to(folder):
                return str(path.relative_to(folder))
        return str(path)
