"""The group browser: one group's images side by side, moved through with the keyboard."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.ui.project_stats import GroupEntry, ImageEntry, human_size
from workbench.ui.thumbnails import ThumbnailLoader
from workbench.ui.widgets.image_tile import ImageTile

MAX_TILES = 4
PREFETCH_GROUPS = 2


def _detail(image: ImageEntry, width: int | None = None, height: int | None = None) -> str:
    w, h = width or image.width, height or image.height
    pixels = f"{w} × {h} px" if w and h else "size unknown"
    return f"{human_size(image.size_bytes)}  ·  {pixels}"


def _tag(group: GroupEntry, index: int, image: ImageEntry) -> str:
    """Where a decided group's image went (and which one the AI picked); empty when open."""
    ai = "  ·  AI pick" if group.ai_index == index else ""
    if group.group_id is None:
        return f"staged: {group.staged_action}" if group.staged_action and index == 0 else ""
    folder = image.path.parent.name
    if group.action == "reject":
        return f"→ {folder}/{ai}"  # the header says the group was rejected
    if index == group.chosen_index:
        verb = "kept" if group.action == "approve" else "to crop"
        return f"✓ {verb} → {folder}/{ai}"
    return f"→ {folder}/{ai}"


class GroupBrowser(QWidget):
    """Shows one group at a time; `groupShown(index)` fires once names and sizes are up."""

    groupShown = Signal(int)

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._groups: list[GroupEntry] = []
        self._index = -1
        self._on_screen: dict[str, list[int]] = {}  # path -> tiles showing it
        self.header = QLabel(self)
        self.header.setObjectName("groupHeader")
        self.subheader = QLabel(self)
        self.subheader.setObjectName("groupSubheader")
        self.tiles = [ImageTile(i, self) for i in range(MAX_TILES)]
        row = QHBoxLayout()
        row.setSpacing(10)
        for tile in self.tiles:
            row.addWidget(tile, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.subheader)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        self._row = row
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_failed)
        self._show_empty()

    # -- what callers read ---------------------------------------------------------------

    @property
    def current_index(self) -> int:
        """The shown group's index in review order, -1 when there is none."""
        return self._index

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def current_group(self) -> GroupEntry | None:
        return self._groups[self._index] if 0 <= self._index < len(self._groups) else None

    def displayed_names(self) -> list[str]:
        """The file names under the visible tiles, left to right."""
        return [t.file_name for t in self.tiles if t.isVisibleTo(self)]

    def pictures_ready(self) -> bool:
        """True when every visible tile shows its image or the reason it cannot."""
        return all(t.state in ("image", "error") for t in self.tiles if t.isVisibleTo(self))

    # -- what callers do -----------------------------------------------------------------

    def set_groups(self, groups: Sequence[GroupEntry], *, index: int | None = None) -> None:
        """Replace the list (after a refresh), keeping the position when it still exists."""
        self._groups = list(groups)
        target = self._index if index is None else index
        if not self._groups:
            self._index = -1
            self._show_empty()
            return
        self.show_index(min(max(target, 0), len(self._groups) - 1))

    def step(self, delta: int) -> None:
        """Move `delta` groups forward (negative: back), stopping at the ends."""
        if self._groups:
            self.show_index(min(max(self._index + delta, 0), len(self._groups) - 1))

    def show_index(self, index: int) -> None:
        if not 0 <= index < len(self._groups):
            return
        self._index = index
        group = self._groups[index]
        state = (
            f"decided: {group.action}" if group.group_id
            else f"staged: {group.staged_action}" if group.staged_action else "open"
        )  # fmt: skip
        self.header.setText(
            f"Group {index + 1} of {len(self._groups)}   ·   batch {group.batch_number}, "
            f"#{group.position + 1}   ·   {len(group.images)} images   ·   {state}"
        )
        self.subheader.setText(f"Why these belong together: {group.reason}")
        self._on_screen = {}
        for i, tile in enumerate(self.tiles):
            if i >= len(group.images):
                tile.hide()
                continue
            image = group.images[i]
            tile.show()
            chosen = group.action in ("approve", "crop") and i == group.chosen_index
            tile.show_file(image.path.name, _detail(image), _tag(group, i, image), chosen=chosen)
            self._on_screen.setdefault(str(image.path), []).append(i)
        self._fit_tiles()
        self.groupShown.emit(index)
        for path in list(self._on_screen):
            self._loader.request(path)
        for offset in range(1, PREFETCH_GROUPS + 1):
            for neighbour in (index + offset, index - offset):
                if 0 <= neighbour < len(self._groups):
                    for image in self._groups[neighbour].images:
                        self._loader.prefetch(image.path)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit_tiles()

    def _fit_tiles(self) -> None:
        """Make the tiles as tall as their pictures need (no empty bands), centred."""
        group = self.current_group()
        if group is None or not group.images:
            return
        count = len(group.images)
        tile_w = (self.width() - self._row.spacing() * (count - 1)) / count
        aspects = [i.width / i.height for i in group.images if i.width and i.height] or [4 / 3]
        tile = self.tiles[0]
        caption = tile.caption_height()
        picture_h = max((tile_w - 24) / a for a in aspects)
        room = (
            self.height()
            - self.header.sizeHint().height()
            - self.subheader.sizeHint().height()
            - 20
        )
        height = int(min(max(room, 160), picture_h + caption))
        for t in self.tiles:
            t.setFixedHeight(height)

    # -- loader results ------------------------------------------------------------------

    def _on_loaded(self, path: str, image: QImage, width: int, height: int) -> None:
        group = self.current_group()
        for i in self._on_screen.get(path, ()):
            detail = _detail(group.images[i], width, height) if group else None
            self.tiles[i].show_image(image, detail)

    def _on_failed(self, path: str, reason: str) -> None:
        for i in self._on_screen.get(path, ()):
            self.tiles[i].show_error(reason)

    def _show_empty(self) -> None:
        self.header.setText("No groups yet")
        self.subheader.setText(
            "The source folder had no usable images, or it has not been scanned."
        )
        self._on_screen = {}
        for tile in self.tiles:
            tile.hide()
