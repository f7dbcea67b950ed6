"""What the reviewer's view paints and binds: key map, AI proposal, group state, changes.

Plain frozen values with no behaviour beyond validation; `review.ReviewSession` produces
them and re-exports them, so the view imports everything from `workbench.core.review`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput
from workbench.core.finalize import FinalizeResult, StagedChoice


class ActionKind(StrEnum):
    """What a key does; the value is how the key hints describe it."""

    APPROVE = "approve image N"
    CROP = "send image N to cropping"
    REJECT = "reject the group"
    TOGGLE_OVERLAY = "AI crop overlay on/off"
    PREVIOUS = "previous group"
    NEXT = "next group"
    FIRST = "first group of the batch"
    LAST = "last group of the batch"
    UNDO = "undo (choices, then the last finalize)"
    FINALIZE = "finalize the batch"


@dataclass(frozen=True)
class Action:
    """A bound action; `index` is the 0-based image for APPROVE and CROP."""

    kind: ActionKind
    index: int = 0


DEFAULT_KEYMAP: dict[str, Action] = {
    **{str(i + 1): Action(ActionKind.APPROVE, i) for i in range(4)},
    **{key: Action(ActionKind.CROP, i) for i, key in enumerate("QWER")},
    "X": Action(ActionKind.REJECT),
    "T": Action(ActionKind.TOGGLE_OVERLAY),
    "Left": Action(ActionKind.PREVIOUS),
    "Right": Action(ActionKind.NEXT),
    "Home": Action(ActionKind.FIRST),
    "End": Action(ActionKind.LAST),
    "Ctrl+Z": Action(ActionKind.UNDO),
    "Ctrl+Return": Action(ActionKind.FINALIZE),
    "Ctrl+Enter": Action(ActionKind.FINALIZE),  # the keypad's Enter is another Qt key
}


def key_help(keymap: Mapping[str, Action] | None = None) -> list[tuple[str, str]]:
    """(keys, description) per bound action kind, for the key hints and the `?` overlay."""
    keys: dict[ActionKind, list[str]] = {}
    for name, action in sorted((keymap or DEFAULT_KEYMAP).items(), key=lambda kv: kv[1].index):
        keys.setdefault(action.kind, []).append(name)
    return [(" / ".join(keys[kind]), kind.value) for kind in ActionKind if kind in keys]


@dataclass(frozen=True)
class AIProposal:
    """What the predictor says about a group; `crop` lies on the selected image."""

    selected_index: int | None
    scores: list[float]
    confidence: float | None
    crop: CropBox | None
    ranker_version: str
    crop_version: str

    def __post_init__(self) -> None:
        # Checked here, so a faulty predictor shows as a sentence, not a failed CHECK later.
        if self.selected_index is not None and not 0 <= self.selected_index <= 3:
            raise InvalidInput(f"The AI picked image {self.selected_index}, outside 0-3.")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise InvalidInput(f"The AI confidence {self.confidence} is outside 0-1.")


ProposalProvider = Callable[[list[Path]], AIProposal]
NO_PROPOSAL = AIProposal(None, [], None, None, "unavailable", "unavailable")


@dataclass(frozen=True)
class ImageState:
    """One image of a group; a `problem` means: show a placeholder with that reason."""

    path: Path
    width: int | None
    height: int | None
    size_bytes: int
    problem: str | None = None


@dataclass(frozen=True)
class GroupState:
    """Everything the view paints for one group of the open batch."""

    pk: int
    batch_number: int
    position: int
    index: int  # in the open batch
    reason: str
    images: tuple[ImageState, ...]
    proposal: AIProposal | None  # None while not computed
    overlay_on: bool
    staged: StagedChoice | None
    route: str | None  # the routing folder the staged choice sends the chosen image to

    @property
    def paths(self) -> list[Path]:
        return [im.path for im in self.images]


class ChangeKind(StrEnum):
    NOTHING = "nothing"  # no state changed; show `message` if there is one
    MOVED = "moved"  # only the current group changed
    GROUPS = "groups"  # repaint the groups in `changed`; the current group may differ too
    BATCH = "batch"  # another batch (or the same reloaded): repaint everything
    DONE = "done"  # no open group is left


@dataclass(frozen=True)
class Change:
    """What an action changed: repaint groups, the batch, or show a message."""

    kind: ChangeKind
    group_index: int  # the current group afterwards; -1 when done
    message: str | None = None
    finalized: FinalizeResult | None = None
    batch_changed: bool = False
    changed: tuple[int, ...] = ()
    handled: bool = True  # False for a key the reviewer does not bind: let it through


@dataclass(frozen=True)
class Progress:
    """Numbers for the status line; an agreement is None while nothing can be compared."""

    batch_number: int | None
    groups_in_batch: int
    decided_in_batch: int
    total_groups: int
    total_decided: int
    batch_agreement: float | None
    overall_agreement: float | None
