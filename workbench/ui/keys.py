"""Key bindings of a view: the keys, what they do, and the words shown to the user.

Views declare their bindings as data; the main window matches key presses against the
current view's bindings and shows the same list in the key-map overlay, so the hints on
screen can never disagree with what the keys do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence

# Shift and keypad state are ignored when matching, so '?' works on every layout.
_MATCHED_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.AltModifier
    | Qt.KeyboardModifier.MetaModifier
)
_NAMES = {"Left": "←", "Right": "→", "Up": "↑", "Down": "↓", "PgUp": "PgUp", "PgDown": "PgDn"}


@dataclass(frozen=True)
class KeyBinding:
    """Keys (QKeySequence strings such as "Right", "PgDown", "Ctrl+Q") and their action.

    With `passes_key`, the action is called with the matched key's text ("2", "Ctrl+Z"),
    so one binding (one line in the key map) can serve several keys, e.g. "1 / 2 / 3 / 4".
    """

    keys: tuple[str, ...]
    description: str
    action: Callable[..., object]
    passes_key: bool = False

    def matched_key(self, event: QKeyEvent) -> str | None:
        """The text of the key in `keys` that the event is, or None."""
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
                return text
        return None

    def matches(self, event: QKeyEvent) -> bool:
        return self.matched_key(event) is not None

    def run(self, key: str) -> None:
        """Run the action for the matched key."""
        if self.passes_key:
            self.action(key)
        else:
            self.action()

    @property
    def label(self) -> str:
        """The keys as shown to the user, e.g. "← / PgUp"."""
        return " / ".join(_NAMES.get(k, k) for k in self.keys)


def dispatch(bindings: Sequence[KeyBinding], event: QKeyEvent) -> bool:
    """Run the first binding that matches the event; True when one did."""
    for binding in bindings:
        key = binding.matched_key(event)
        if key is not None:
            binding.run(key)
            return True
    return False


def hint_line(bindings: Sequence[KeyBinding]) -> str:
    """One line of key hints, e.g. "← / PgUp previous group   → / PgDn next group"."""
    return "     ".join(f"{b.label}  {b.description}" for b in bindings)


def menu_actions(owner: QObject, items: Sequence[tuple[str, Callable[[], object]]]) -> list[QAction]:
    """A view's menu entries: ("Text\tKey", slot) pairs as QActions owned by `owner`.

    The key after the tab is shown, not bound: a view binds its keys itself (bindings()),
    so they act only while that view is shown.
    """
    actions = []
    for text, slot in items:
        action = QAction(text, owner)
        action.triggered.connect(slot)
        actions.append(action)
    return actions
