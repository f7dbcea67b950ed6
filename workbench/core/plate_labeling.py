"""The plate labeling session (seed 004's keys) as a state machine: keys in, changes out.

Keys are Qt-free names: a typed character (text), "Backspace", "Enter", "Escape", "[" and
"End". Typing builds the label: A-Z and 0-9 only, lower case upper-cased, anything else
ignored, so Q and S are characters like any other. The text first shown on a crop (its
pre-label, or its label in review) is replaced by the first character typed; Backspace
and End edit it instead. Enter saves and advances, Escape saves __SKIP__ and advances,
"[" goes back one crop. Every save is committed before the next crop shows.

A new pass walks the crops that have no label yet; review mode walks the labeled ones
(optionally only the suspicious ones) to correct them. The source of a saved label is
"prelabel" when it equals the crop's pre-label, "corrected" when a pre-label (or an
earlier label) existed and the text differs, else "typed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.core.plates import (
    DEFAULT_SIGN_WORDS,
    MAX_TEXT_LENGTH,
    PLATE_CHARACTERS,
    SKIP,
    LabelStore,
    PlateLabel,
    Prelabel,
    contamination,
)

KEY_ENTER = "Enter"
KEY_ESCAPE = "Escape"
KEY_BACKSPACE = "Backspace"
KEY_BACK = "["
KEY_END = "End"


@dataclass(frozen=True)
class Change:
    """What one key did, for the view to repaint.

    kind: "text" (the typed text changed), "saved" (a label was committed and the next
    crop shows), "moved" (another crop shows, nothing saved), "prelabel" (the current
    crop's pre-label arrived), "queue" (the list of crops changed) or "none".
    """

    kind: str
    saved: PlateLabel | None = None
    message: str = ""


@dataclass(frozen=True)
class Counts:
    """Labeled, skipped and not yet labeled crops of the folders (not just of the queue)."""

    labeled: int
    skipped: int
    remaining: int

    @property
    def total(self) -> int:
        return self.labeled + self.skipped + self.remaining


NOTHING = Change("none")


class PlateLabeling:
    """One labeling session over a list of crops; see the module docstring for the keys."""

    def __init__(
        self,
        store: LabelStore,
        crops: Sequence[Path],
        *,
        review: bool = False,
        suspicious_only: bool = False,
        sign_words: Sequence[str] = DEFAULT_SIGN_WORDS,
    ) -> None:
        self.store = store
        self.sign_words = tuple(sign_words)
        self.crops: list[Path] = list(crops)
        self.labels: dict[str, PlateLabel] = store.all()
        self.prelabels: dict[str, Prelabel] = {}
        self.unreadable: dict[str, str] = {}  # crops that cannot be decoded: only a skip
        self.review = review
        self.suspicious_only = suspicious_only
        self.queue: list[Path] = []
        self.index = 0
        self.text = ""
        self.edited = False
        self._drafts: dict[str, str] = {}
        self._counts = self._count()
        self._rebuild(keep=None)

    # -- what the view shows -------------------------------------------------------------

    @property
    def current(self) -> Path | None:
        """The crop on screen, or None when the queue is done (or empty)."""
        return self.queue[self.index] if self.index < len(self.queue) else None

    @property
    def finished(self) -> bool:
        return self.current is None

    @property
    def position(self) -> tuple[int, int]:
        """(1-based position of the current crop, crops in the queue)."""
        return min(self.index + 1, len(self.queue)), len(self.queue)

    @property
    def counts(self) -> Counts:
        return self._counts

    def label_of(self, path: Path | None) -> PlateLabel | None:
        return None if path is None else self.labels.get(str(path))

    def prelabel_of(self, path: Path | None) -> Prelabel | None:
        """The crop's pre-label: this session's OCR reading, else the one stored with its label."""
        if path is None:
            return None
        pre = self.prelabels.get(str(path))
        if pre is None:
            label = self.labels.get(str(path))
            if label is not None and label.prelabel_text:
                pre = Prelabel(label.prelabel_text, label.prelabel_confidence or 0.0,
                               label.prelabel_engine or "")  # fmt: skip
        return pre if pre is not None and pre.text else None

    @property
    def flags(self) -> list[str]:
        """Why the text being typed looks like a sign (seed 004's checks); [] if fine."""
        return contamination(self.text, self.sign_words)

    def showing_prelabel(self) -> bool:
        """True while the text on screen is the untouched pre-label of an unlabeled crop."""
        pre = self.prelabel_of(self.current)
        return (not self.edited and pre is not None and self.text == pre.text
                and self.label_of(self.current) is None)  # fmt: skip

    def recent(self, count: int) -> list[tuple[Path, PlateLabel | None]]:
        """Up to `count` crops before the current one in the queue, oldest first."""
        start = max(0, self.index - count)
        return [(p, self.label_of(p)) for p in self.queue[start : self.index]]

    def pending_prelabels(self, limit: int) -> list[Path]:
        """Up to `limit` crops from the current one on that still want a pre-label."""
        out = []
        for path in self.queue[self.index :]:
            if str(path) not in self.prelabels:
                out.append(path)
                if len(out) >= limit:
                    break
        return out

    # -- keys ----------------------------------------------------------------------------

    def handle(self, key: str) -> Change:
        """Apply one key: a named key (KEY_*) or typed text."""
        if key == KEY_ENTER:
            return self.enter()
        if key == KEY_ESCAPE:
            return self.skip()
        if key == KEY_BACKSPACE:
            return self.backspace()
        if key == KEY_BACK:
            return self.back()
        if key == KEY_END:
            return self.start_editing()
        return self.type_text(key)

    def type_text(self, typed: str) -> Change:
        """Add the plate characters of `typed` (upper-cased; anything else ignored)."""
        chars = [ch.upper() for ch in typed if ch.upper() in PLATE_CHARACTERS and ch.isascii()]
        if not chars or self.current is None:
            return NOTHING
        if str(self.current) in self.unreadable:
            return self._cannot_label(self.current)
        if not self.edited:
            self.text = ""  # the first character replaces the pre-filled text
        self.edited = True
        self.text = (self.text + "".join(chars))[:MAX_TEXT_LENGTH]
        return Change("text")

    def backspace(self) -> Change:
        if self.current is None or not self.text:
            return NOTHING
        self.text = self.text[:-1]
        self.edited = True
        return Change("text")

    def start_editing(self) -> Change:
        """Keep the pre-filled text and append to it (End)."""
        if self.current is None or self.edited:
            return NOTHING
        self.edited = True
        return Change("text")

    def enter(self) -> Change:
        """Save the text as the current crop's label and show the next crop."""
        path = self.current
        if path is None:
            return Change("none", message="Nothing left to label here.")
        label = self.label_of(path)
        if label is not None and (not self.edited or self.text == label.text):
            return self._advance(Change("moved"))  # kept as it was
        if str(path) in self.unreadable:
            return self._cannot_label(path)
        if not self.text:
            return Change("none", message="Type the plate, or press Escape to skip this crop.")
        saved = self._save(path, self.text)
        return self._advance(Change("saved", saved))

    def skip(self) -> Change:
        """Save __SKIP__ for the current crop and show the next one."""
        path = self.current
        if path is None:
            return NOTHING
        label = self.label_of(path)
        if label is not None and label.skipped:
            return self._advance(Change("moved"))
        saved = self.store.save(path, SKIP, "typed", self.prelabel_of(path))
        self._stored(saved)
        return self._advance(Change("saved", saved))

    def back(self) -> Change:
        """Show the previous crop of the queue (unsaved typing is kept as a draft)."""
        if self.index == 0 or not self.queue:
            return NOTHING
        self._keep_draft()
        self.index = min(self.index, len(self.queue)) - 1
        self._show()
        return Change("moved")

    def save_pending(self) -> PlateLabel | None:
        """Save the current crop's text if the user changed it (Ctrl+Q); the label or None."""
        path = self.current
        if path is None or not self.edited or not self.text:
            return None
        saved = self._save(path, self.text)
        self.edited = False
        return saved

    # -- pre-labels, modes, new crops ----------------------------------------------------

    def set_unreadable(self, path: Path, reason: str) -> None:
        """The crop cannot be decoded: it can be skipped, not labeled."""
        self.unreadable[str(path)] = reason

    def _cannot_label(self, path: Path) -> Change:
        reason = self.unreadable[str(path)].rstrip(".")
        return Change("none", message=f"{reason}. It cannot be labeled; press Escape to skip it.")

    def set_prelabel(self, path: Path, prelabel: Prelabel) -> Change:
        """Record an OCR reading; it fills the text of the current crop if nothing was typed."""
        self.prelabels[str(path)] = prelabel
        if path != self.current:
            return NOTHING
        if not self.edited and self.label_of(path) is None and prelabel.text:
            self.text = prelabel.text
        return Change("prelabel")

    def set_review(self, review: bool, *, suspicious_only: bool | None = None) -> Change:
        """Switch between a new pass (unlabeled crops) and review (labeled crops)."""
        if suspicious_only is not None:
            self.suspicious_only = suspicious_only
        self.review = review
        self._keep_draft()
        self._rebuild(keep=self.current)
        return Change("queue")

    def refresh(self, crops: Sequence[Path]) -> Change:
        """Take a new listing of the folders: crops that appeared join the end of the queue."""
        known = {str(p) for p in self.crops}
        self.crops = list(crops)
        queued = {str(p) for p in self.queue}
        added = [p for p in self.crops if str(p) not in known and str(p) not in queued
                 and self._belongs(p)]  # fmt: skip
        was_finished = self.finished
        self.queue.extend(added)
        self._counts = self._count()
        if was_finished and added:
            self._show()
        return Change("queue") if added else NOTHING

    # -- internals -----------------------------------------------------------------------

    def _belongs(self, path: Path) -> bool:
        label = self.labels.get(str(path))
        if not self.review:
            return label is None
        if label is None:
            return False
        return not self.suspicious_only or bool(contamination(label.text, self.sign_words))

    def _rebuild(self, keep: Path | None) -> None:
        self.queue = [p for p in self.crops if self._belongs(p)]
        self.index = self.queue.index(keep) if keep in self.queue else 0
        self._show()

    def _show(self) -> None:
        path = self.current
        self.edited = False
        self.text = ""
        if path is None:
            return
        draft = self._drafts.pop(str(path), None)
        label = self.label_of(path)
        pre = self.prelabel_of(path)
        if draft is not None:
            self.text, self.edited = draft, True
        elif label is not None:
            self.text = "" if label.skipped else label.text
        elif pre is not None:
            self.text = pre.text

    def _keep_draft(self) -> None:
        if self.current is not None and self.edited:
            self._drafts[str(self.current)] = self.text

    def _advance(self, change: Change) -> Change:
        self.index += 1
        self._show()
        return change

    def _save(self, path: Path, text: str) -> PlateLabel:
        pre = self.prelabel_of(path)
        label = self.label_of(path)
        if pre is not None and text == pre.text:
            source = "prelabel"
        elif pre is not None or (label is not None and not label.skipped):
            source = "corrected"
        else:
            source = "typed"
        saved = self.store.save(path, text, source, pre)
        self._stored(saved)
        return saved

    def _stored(self, label: PlateLabel) -> None:
        self.labels[str(label.image_path)] = label
        self._drafts.pop(str(label.image_path), None)
        self._counts = self._count()

    def _count(self) -> Counts:
        labeled = skipped = 0
        for path in self.crops:
            label = self.labels.get(str(path))
            if label is not None:
                if label.skipped:
                    skipped += 1
                else:
                    labeled += 1
        return Counts(labeled, skipped, len(self.crops) - labeled - skipped)
