"""The main window: a stack of views (reviewer, project overview, ...), menus, key map, status."""

from __future__ import annotations

from typing import Protocol, cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import workbench
from workbench.ui.background_scan import BackgroundScan
from workbench.ui.crop import CropView
from workbench.ui.keys import KeyBinding, dispatch, hint_line
from workbench.ui.performance import PerformanceView
from workbench.ui.plates import PlatesView
from workbench.ui.project_overview import ProjectOverview
from workbench.ui.reviewer import ReviewerView
from workbench.ui.session import ProjectSession
from workbench.ui.training import TrainingView
from workbench.ui.training.reload import champion_reloaders
from workbench.ui.widgets.key_overlay import KeyMapOverlay


class View(Protocol):
    """What the window needs from a view widget (besides being a QWidget).

    Optional: `hint_text() -> str` (the key hints under the view; default: its first two
    bindings), `menu_title` with `menu_actions() -> list[QAction]` (a menu of its own).
    """

    title: str

    def bindings(self) -> list[KeyBinding]: ...

    def shutdown(self) -> None: ...


class MainWindow(QMainWindow):
    """One open project. Closing the window releases the project's lock.

    Views are widgets with `title`, `bindings()` and `shutdown()`; each is added with
    `add_view` and gets a View menu entry. The reviewer is first (Ctrl+1) and shown when
    the project opens; the overview is Ctrl+2; later views (crop, plates, training) follow.
    A view's keys act only while the keyboard focus is inside it (or nowhere in particular),
    so a text field elsewhere in the window never triggers them.
    """

    openProjectRequested = Signal()

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.project = session.project
        self.setWindowTitle(f"{self.project.name} — Workbench")
        self.views = QStackedWidget(self)
        self._view_widgets: list[QWidget] = []
        self._view_keys: list[KeyBinding] = []
        self.views.setObjectName("views")
        self.hints = QLabel(self)
        self.hints.setObjectName("keyHints")
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.views, 1)
        layout.addWidget(self.hints)
        self.setCentralWidget(central)
        self.overlay = KeyMapOverlay(central)
        self._build_menus()
        self.reviewer = ReviewerView(self.project, self)
        self.reviewer.messageShown.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.add_view(self.reviewer, "Ctrl+1")
        self.overview = ProjectOverview(self.project, self)
        self.overview.failed.connect(self._show_problem)
        self.overview.refreshed.connect(self._update_status)
        self.add_view(self.overview, "Ctrl+2")
        self.crop = CropView(self.project, self)
        self.add_view(self.crop, "Ctrl+3")
        self.plates = PlatesView(self.project, self)
        self.add_view(self.plates, "Ctrl+4")
        # A new champion is served at once: the training view reloads these after a change.
        reloaders = champion_reloaders(self.project.models_dir, [self.reviewer.predictor],
                                       self.plates.settings.paddleocr_dir)  # fmt: skip
        reloaders.append(self.crop.reload_models)
        self.training = TrainingView(self.project, self, reloaders=reloaders)
        self.training.messageShown.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.training.championChanged.connect(self.reviewer.champion_changed)
        self.add_view(self.training, "Ctrl+5")
        self.performance = PerformanceView(self.project, self)
        self.performance.messageShown.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.add_view(self.performance, "Ctrl+6")
        self.statusBar().showMessage(f"Opened {self.project.root}")
        self.scan = BackgroundScan(self.project, self)
        self.scan.finished.connect(self._scan_finished)
        self.scan.failed.connect(lambda exc: self._show_problem(getattr(exc, "message", str(exc))))
        if self.scan.start_if_needed():
            self.statusBar().showMessage(
                "Grouping the rest of the source folder in the background…"
            )
        for problem in session.recovery.problems:
            self._show_problem(problem)
        # The overview reads the database (and decodes its thumbnails) when first shown,
        # not while the reviewer, shown first, prepares its own pictures.
        self.resize(1280, 720)

    # -- views ---------------------------------------------------------------------------

    def add_view(self, widget: QWidget, shortcut: str) -> None:
        """Add a view (a QWidget that is also a `View`) with a View-menu entry."""
        self.views.addWidget(widget)
        self._view_widgets.append(widget)
        action = QAction(cast(View, widget).title, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda: self.show_view(widget))
        # Also a window binding: a menu shortcut acts only while the window is active.
        title = cast(View, widget).title
        self._view_keys.append(
            KeyBinding((shortcut,), f"show the {title.lower()}", lambda: self.show_view(widget))
        )
        self.view_menu.insertAction(self._views_end, action)
        actions = getattr(widget, "menu_actions", None)
        if actions is not None:
            menu = QMenu(getattr(widget, "menu_title", cast(View, widget).title), self)
            self.menuBar().insertMenu(self._help_menu.menuAction(), menu)
            for item in actions():
                menu.addAction(item)
        self.show_view(self._view_widgets[self.views.currentIndex()])

    def current_view(self) -> View:
        return cast(View, self._view_widgets[self.views.currentIndex()])

    def show_view(self, widget: QWidget) -> None:
        changed = self.views.currentWidget() is not widget
        self.views.setCurrentWidget(widget)
        view = cast(View, widget)
        bindings = view.bindings()
        hints = getattr(view, "hint_text", None)
        text = hints() if hints is not None else hint_line(bindings[:2])
        self.hints.setText("   " + text + "     ? / F1  all keys     Ctrl+Q  quit")
        if changed and widget is getattr(self, "overview", None):
            self.overview.refresh()  # the reviewer may have decided groups meanwhile
        widget.setFocus()
        self.overlay.set_sections(
            [
                (view.title, [(b.label, b.description) for b in bindings]),
                ("Everywhere", [(b.label, b.description) for b in self.window_bindings()]),
            ]
        )

    def window_bindings(self) -> list[KeyBinding]:
        return [
            KeyBinding(("?", "F1"), "show or hide this key map", self.overlay.toggle),
            *self._view_keys,
            KeyBinding(
                ("Ctrl+O",), "open or create another project", self.openProjectRequested.emit
            ),
            KeyBinding(("Ctrl+Q",), "quit (nothing is pending in this view)", self.close),
        ]

    # -- keys ----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.overlay.isVisible():
            if event.key() not in (
                Qt.Key.Key_Shift,
                Qt.Key.Key_Control,
                Qt.Key.Key_Alt,
                Qt.Key.Key_Meta,
            ):
                self.overlay.hide()
            return
        if self._focus_in_view() and dispatch(self.current_view().bindings(), event):
            return
        if dispatch(self.window_bindings(), event):
            return
        super().keyPressEvent(event)

    def _focus_in_view(self) -> bool:
        """True unless the keyboard focus is on a widget outside the current view."""
        focus = QApplication.focusWidget()
        view = self.views.currentWidget()
        return focus is None or focus is self or focus is view or view.isAncestorOf(focus)

    # -- menus and status ----------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(
            file_menu, "&Open or create project…", "Ctrl+O", self.openProjectRequested.emit
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close)
        self.view_menu = self.menuBar().addMenu("&View")
        self._views_end = self.view_menu.addSeparator()  # views are listed above it
        self._action(self.view_menu, "&Reload from database", "F5", lambda: self.overview.refresh())
        help_menu = self._help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keys", "F1", self.overlay.toggle)
        self._action(help_menu, "&About Workbench", None, self._about)

    def _action(self, menu, text: str, shortcut: str | None, slot) -> QAction:  # type: ignore[no-untyped-def]
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About Workbench",
            f"Workbench {workbench.__version__}\n\nKeyboard-first image curation and training.\n"
            f"Project folder: {self.project.root}",
        )

    def _update_status(self) -> None:
        b = self.overview.browser
        self.statusBar().showMessage(
            f"{self.project.name}: {b.group_count} group(s)   ·   {self.project.root}"
        )

    def _show_problem(self, message: str) -> None:
        """A sentence in the status bar and in a window-modal box that does not block."""
        self.statusBar().showMessage(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "Workbench", message, parent=self)
        box.setObjectName("problemBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- closing -------------------------------------------------------------------------

    def _scan_finished(self, summary: object) -> None:
        groups = getattr(summary, "groups", 0)
        self.statusBar().showMessage(f"Grouping finished: {groups} more group(s) found.", 15_000)
        self.overview.refresh()

    def shutdown(self) -> None:
        """Stop every worker of this window and release the project lock (idempotent)."""
        self.scan.stop()  # before the lock goes: the scan writes under it
        for widget in self._view_widgets:
            cast(View, widget).shutdown()
        self.session.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
