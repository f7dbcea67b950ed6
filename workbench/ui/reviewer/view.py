"""The AI reviewer view: the current group's images side by side, driven by the keyboard.

Every key goes to `ReviewSession.handle` (core/review.py), which commits the choice and
says what changed; the view repaints from the session's state and keeps nothing else but
what it paints (pictures, the loupe). Pictures and the AI's proposals are prepared ahead
by the Prefetcher; a picture not ready yet paints as a placeholder and fills in when it
arrives, so a key never waits for a decode.
"""

from __future__ import annotations

import logging
import os
import sqlite3

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFocusEvent, QImage, QKeyEvent, QMouseEvent, QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.core.review import (
    NO_PROPOSAL,
    Change,
    ChangeKind,
    GroupState,
    ImageState,
    ReviewSession,
    key_help,
)
from workbench.core.thumbs import ThumbnailCache, thumbs_dir
from workbench.ml.features import FEATURE_SIDE
from workbench.ml.predict import Predictor
from workbench.ui.keys import KeyBinding
from workbench.ui.reviewer.geometry import thumbnail_side
from workbench.ui.reviewer.loupe import Loupe
from workbench.ui.reviewer.pictures import Picture, PictureCache, to_qimage
from workbench.ui.reviewer.prefetch import PickRequest, PictureRequest, Prefetcher, Request
from workbench.ui.reviewer.presentation import group_text, hint_text, status_text, tile_models
from workbench.ui.reviewer.restore_dialog import RestoreDialog, result_message
from workbench.ui.reviewer.status import StatusLine
from workbench.ui.reviewer.tile_row import TileRow

log = logging.getLogger(__name__)

AHEAD = 6  # groups prepared in the direction the user is going
BEHIND = 2  # and in the other direction
THUMB_MEMORY = 48 * 1024 * 1024  # the thumbnail cache's memory LRU for this view
PICTURE_GROUPS = AHEAD + BEHIND + 4  # groups of prepared pictures kept in memory
PICTURE_BYTES = (48 * 1024 * 1024, 256 * 1024 * 1024)  # whatever the screen size
DONE_NOTICE = (
    "Every group is decided.\n\nCtrl+Z undoes the last finalize; rescan the source folder "
    "(workbench scan) to review images added since."
)


def sizes_of(group: GroupState) -> list[tuple[int | None, int | None]]:
    return [(im.width, im.height) for im in group.images]


def default_threads() -> int:
    """Prefetch workers: the cores but one for the GUI, at least two, at most four."""
    return max(2, min(4, (os.cpu_count() or 2) - 1))


class ReviewerView(QWidget):
    """The reviewer. `changed` fires after each repaint-worthy change has been applied."""

    title = "Reviewer"
    menu_title = "&Review"
    changed = Signal()
    messageShown = Signal(str)
    finalized = Signal(object)  # FinalizeResult

    def __init__(self, project: Project, parent: QWidget | None = None, *,
                 threads: int | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("reviewerView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.project = project
        self.status = StatusLine(self)
        self.row = TileRow(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.status)
        layout.addWidget(self.row, 1)
        self.pictures = PictureCache()
        self.thumbs = ThumbnailCache(thumbs_dir(project), max_memory_bytes=THUMB_MEMORY)
        # Picks run on prefetch threads only; each caches features on its own connection.
        self.predictor = Predictor(
            project.models_dir,
            thumbs=self.thumbs,
            feature_store_factory=lambda: self.prefetcher.feature_store(),
        )
        self.prefetcher = Prefetcher(project, self.thumbs, self.predictor,
                                     threads=threads or default_threads(), parent=self)  # fmt: skip
        self.prefetcher.pictureReady.connect(self._on_picture)
        self.prefetcher.pictureFailed.connect(self._on_failed)
        self.prefetcher.proposalReady.connect(self._on_proposal)
        self.prefetcher.proposalFailed.connect(self._on_proposal_failed)
        self.loupe = Loupe(self.prefetcher, self)
        self.loupe.changed.connect(self._apply_loupe)
        for tile in self.row.tiles:
            tile.hovered.connect(self._on_hover)
        self.restore_action = QAction("&Restore from delete_staging…", self)
        self.restore_action.triggered.connect(self.open_restore)
        self.conn: sqlite3.Connection | None = None
        self.session: ReviewSession | None = None
        self.error: str | None = None
        self._on_screen: dict[str, int] = {}
        self._area = (1, 1)
        self._direction = 1
        self._hover: tuple[float, float] | None = None
        self._closed = False
        self._schedule_timer = QTimer(self)
        self._schedule_timer.setSingleShot(True)
        self._schedule_timer.timeout.connect(self._schedule)
        try:
            self.conn = project.connect()
            self.session = ReviewSession(project, self.conn, self.prefetcher.provider())
        except (WorkbenchError, sqlite3.Error) as exc:
            self.error = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            log.warning("reviewer could not open %s: %s", project.name, self.error)
        self.refresh()

    # -- what the window asks ------------------------------------------------------------

    def bindings(self) -> list[KeyBinding]:
        """The state machine's keys (from its key map) and the loupe, for dispatch and `?`."""
        rows = self.session.key_help() if self.session else key_help()
        out = [KeyBinding(tuple(keys.split(" / ")), what, self.press, passes_key=True)
               for keys, what in rows]  # fmt: skip
        out.insert(-2, KeyBinding(("Space",), "hold: 100% loupe; the mouse pans all images",
                                  lambda: None))  # fmt: skip
        return out

    def hint_text(self) -> str:
        return hint_text(self.session.keymap) if self.session else ""

    def menu_actions(self) -> list[QAction]:
        return [self.restore_action]

    def busy(self) -> bool:
        """True while pictures or proposals are being prepared."""
        return not self._closed and self.prefetcher.busy()

    def shutdown(self) -> None:
        """Stop the workers and close the connection (idempotent); choices are committed."""
        if self._closed:
            return
        self._closed = True
        self._schedule_timer.stop()
        self.status.clear_message()
        self.prefetcher.shutdown()
        if self.conn is not None:
            self.conn.close()

    # -- input ---------------------------------------------------------------------------

    def press(self, key_name: str) -> Change | None:
        """Apply one key (a Qt-free name such as "2" or "Ctrl+Z"); the session's Change."""
        if self.session is None or self._closed:
            return None
        before = self.session.current()
        change = self.session.handle(key_name)
        if change.kind == ChangeKind.MOVED and before is not None:
            self._direction = -1 if change.group_index < before.index else 1
        elif change.kind in (ChangeKind.GROUPS, ChangeKind.BATCH):
            self._direction = 1
        self._apply(change)
        return change

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.modifiers():
            if not event.isAutoRepeat():
                self.loupe.start(self._hover)
            event.accept()
            return
        event.ignore()  # the window matches it against bindings(), after its own checks

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.loupe.stop()
            event.accept()
            return
        event.ignore()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.loupe.stop()  # the release may never arrive once focus is elsewhere
        super().focusOutEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().mousePressEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.setFocus(Qt.FocusReason.OtherFocusReason)
        self.refresh()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.refresh()

    def open_restore(self) -> RestoreDialog | None:
        """The restore dialog, opened window-modal (not blocking the caller)."""
        if self.conn is None or self._closed:
            return None
        dialog = RestoreDialog(self.project, self.conn, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.restored.connect(
            lambda result: self._message(result_message(result, self.project.name))
        )
        dialog.open()
        return dialog

    # -- painting from the session -------------------------------------------------------

    def current_group(self) -> GroupState | None:
        return self.session.current() if self.session else None

    def refresh(self) -> None:
        """Show the session's current group (tiles, status) and re-aim the prefetch."""
        if self._closed:
            return
        if self.session is None:
            if self.error is not None:
                self.row.set_group([])
                self.row.set_notice(f"The reviewer cannot open this project: {self.error}")
            return
        group = self.session.current()
        self.status.set_text(status_text(self.session.progress(), group), group_text(group))
        self._on_screen = {}
        if group is None:
            self.row.set_group([])
            self.row.set_notice(DONE_NOTICE)
            self.loupe.set_group(())
        else:
            sizes = sizes_of(group)
            self.row.set_group(sizes)
            self._area = self.row.picture_area(sizes, self.devicePixelRatioF())
            need = PICTURE_GROUPS * 3 * self._area[0] * self._area[1] * 4  # 3: a typical group
            self.pictures.max_bytes = min(max(need, PICTURE_BYTES[0]), PICTURE_BYTES[1])
            models = tile_models(group, self.session.keymap)
            for tile, model, image in zip(self.row.tiles, models, group.images, strict=False):
                path = str(image.path)
                self._on_screen[path] = tile.index
                tile.show_model(model, None if model.problem else self._picture_for(path, image))
            self.loupe.set_group(list(self._on_screen))
            self._apply_loupe()
        self._schedule_timer.start(0)  # after this paint
        self.changed.emit()

    def _picture_for(self, path: str, image: ImageState) -> QImage | None:
        """The prepared picture, else whatever of this image is in memory; never decodes."""
        picture = self.pictures.get((path, self._area)) or self.pictures.any_for(path)
        if picture is not None:
            return picture.image
        for side in (thumbnail_side(self._area, (image.width, image.height)), FEATURE_SIDE):
            thumb = self.thumbs.peek(path, side)
            if thumb is not None:
                return to_qimage(thumb, self.devicePixelRatioF())
        return None

    def _apply(self, change: Change) -> None:
        if change.message:
            warning = change.kind == ChangeKind.NOTHING or change.message.startswith(
                ("Nothing", "No AI")
            )
            self._message(change.message, warning=warning)
        if change.kind != ChangeKind.NOTHING:
            self.refresh()
        if change.finalized is not None:
            self.finalized.emit(change.finalized)

    def _message(self, text: str, *, warning: bool = False) -> None:
        self.status.show_message(text, warning=warning)
        self.messageShown.emit(text)

    def _apply_loupe(self) -> None:
        point = self.loupe.point if self.loupe.active else None
        for path, index in self._on_screen.items():
            self.row.tiles[index].set_loupe(point, self.loupe.original(path) if point else None)

    # -- prefetch --------------------------------------------------------------------------

    def _window(self) -> list[GroupState]:
        """The groups to prepare, most wanted first: current, then ahead, then behind."""
        assert self.session is not None
        group = self.session.current()
        if group is None:
            return []
        states, i = self.session.groups(), group.index
        forward = list(states[i + 1 : i + 1 + AHEAD])
        backward = list(states[max(0, i - BEHIND) : i])[::-1]
        if self._direction < 0:
            forward = list(states[max(0, i - AHEAD) : i])[::-1]
            backward = list(states[i + 1 : i + 1 + BEHIND])
        return [group] + forward[:2] + backward[:1] + forward[2:] + backward[1:]

    def _schedule(self) -> None:
        if self._closed or self.session is None:
            return
        dpr = self.devicePixelRatioF()
        requests: list[Request] = []
        for g in self._window():
            area = self.row.picture_area(sizes_of(g), dpr)
            sides = tuple(thumbnail_side(area, (im.width, im.height)) for im in g.images)
            for im, side in zip(g.images, sides, strict=True):
                path = str(im.path)
                if im.problem or self.prefetcher.failure(path) or (path, area) in self.pictures:
                    continue
                requests.append(PictureRequest(path, area, side, dpr))
            if g.proposal is None:
                requests.append(PickRequest(g.pk, tuple(str(p) for p in g.paths), sides))
        self.prefetcher.want(requests)

    def _on_picture(self, picture: Picture) -> None:
        if self._closed:
            return
        self.pictures.put(picture)
        index = self._on_screen.get(picture.path)
        if index is not None and picture.area == self._area:
            self.row.tiles[index].set_picture(picture.image)
            self.changed.emit()

    def _on_failed(self, path: str, reason: str) -> None:
        if self._closed or self.session is None:
            return
        for g in self.session.groups():
            for j, im in enumerate(g.images):
                if str(im.path) == path and im.problem is None:
                    change = self.session.set_problem(g.pk, j, reason)
                    if g.index in change.changed and change.group_index == g.index:
                        self.refresh()

    def champion_changed(self, kind: str) -> None:
        """A new ranker, crop or smart-crop champion: propose the undecided groups again."""
        if self._closed or self.session is None or kind not in ("ranker", "crop", "smartcrop"):
            return
        self.session.forget_proposals()
        self.refresh()

    def _on_proposal(self, group_pk: int, proposal: object) -> None:
        if self._closed or self.session is None:
            return
        change = self.session.set_proposal(group_pk, proposal)  # type: ignore[arg-type]
        current = self.session.current()
        if current is not None and current.pk == group_pk and change.changed:
            self.refresh()

    def _on_proposal_failed(self, group_pk: int, message: str) -> None:
        """The group is decided without the AI (recorded as no proposal), and the user told."""
        self._on_proposal(group_pk, NO_PROPOSAL)
        current = self.current_group()
        if current is not None and current.pk == group_pk:
            self._message(message, warning=True)

    def _on_hover(self, index: int, x: float, y: float) -> None:
        self._hover = (x, y)
        self.loupe.move((x, y))
