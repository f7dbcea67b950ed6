"""The crop view's toolbar: folder, images side by side, aspect, lock, the action buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from workbench.core.cropping import PRESET_ORDER


class CropToolbar(QWidget):
    """Controls only; the view connects them. None takes the keyboard focus from the canvas."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cropToolbar")
        self.folder_box = self._combo(
            "cropFolder", [("crop/", "crop"), ("crop_auto/", "crop_auto")]
        )
        self.count_box = self._combo(
            "cropPerPage", [(f"{n} side by side", n) for n in (1, 2, 3, 4)]
        )
        self.aspect_box = self._combo("cropAspect", [(name, name) for name in PRESET_ORDER])
        self.lock_box = QCheckBox("Lock aspect", self)
        self.lock_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.position = QLabel(self)
        self.position.setObjectName("cropPosition")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        for label, widget in (("Folder", self.folder_box), ("Show", self.count_box),
                              ("Aspect", self.aspect_box)):  # fmt: skip
            row.addWidget(QLabel(label, self))
            row.addWidget(widget)
        row.addWidget(self.lock_box)
        row.addSpacing(16)
        self.buttons: dict[str, QPushButton] = {}
        for key, text in (("reset", "Reset ⌫"), ("submit", "Crop all ⏎"), ("undo", "Undo"),
                          ("auto", "Auto-crop crop_auto/…")):  # fmt: skip
            button = QPushButton(text, self)
            button.setObjectName(f"crop_{key}")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.buttons[key] = button
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.position)

    def _combo(self, name: str, items: list[tuple[str, object]]) -> QComboBox:
        box = QComboBox(self)
        box.setObjectName(name)
        box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for text, data in items:
            box.addItem(text, data)
        return box
