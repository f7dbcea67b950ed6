"""Key bindings of a view: the keys, what they do, and the words shown to the user.

Views declare their bindings as data; the main window matches key presses against the
current view's bindings and shows the same list in the key-map overlay, so the hints on
screen can never disagree with what the keys do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence

# Shift and keypad state are ignored when matching, so '?' works on every layout.
_MATCHED_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)
_NAMES = {"Left": "←", "Right": "→", "Up": "↑", "Down": "↓", "PgUp": "PgUp", "PgDown": "PgDn"}


@dataclass(frozen=True)
class KeyBinding:
    """Keys (QKeySequence strings such as "Right", "PgDown", "Ctrl+Q") and their action."""

    keys: tuple[str, ...]
    description: str
    action: Callable[[], object]

    def matches(self, event: QKeyEvent) -> bool:
        mods = event.modifiers() & _MATCHED_MODIFIERS
        for text in self.keys:
            seq = QKeySequence(text)
            if seq.isEmpty():
                continue
            combo = seq[0]  # type: ignore[index]  # the stubs miss QKeySequence.__getitem__
            if (
                combo.key() == event.key()
                and (combo.keyboardModifiers() & _MATCHED_MODIFIERS) == mods
            ):
                return True
        return False

    @property
    def label(self) -> str:
        """The keys as shown to the user, e.g. "← / PgUp"."""
        return " / ".join(_NAMES.get(k, k) for k in self.keys)


def dispatch(bindings: Sequence[KeyBinding], event: QKeyEvent) -> bool:
    """Run the first binding that matches the event; True when one did."""
    for binding in bindings:
        if binding.matches(event):
            binding.action()
            return True
    return False


def hint_line(bindings: Sequence[KeyBinding]) -> str:
    """One line of key hints, e.g. "← / PgUp previous group   → / PgDn next group"."""
    return "     ".join(f"{b.label}  {b.description}" for b in bindings)
