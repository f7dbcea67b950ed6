"""What the reviewer paints, as plain values derived from the state machine (no Qt here).

`tile_models(group, keymap)` says, per image, which texts, marks and boxes a tile shows;
`status_text` and `hint_text` word the status line and the key hints. Keeping this apart
from the painting keeps the widgets thin and lets the words be tested without a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workbench.core.crops import CropBox
from workbench.core.review import Action, ActionKind, GroupState, Progress
from workbench.ui.project_stats import human_size

STAGING = "delete_staging"
# Short words for the hint strip; the `?` overlay uses the state machine's full ones.
_SHORT = {
    ActionKind.APPROVE: "keep",
    ActionKind.CROP: "to crop",
    ActionKind.REJECT: "reject group",
    ActionKind.TOGGLE_OVERLAY: "AI crop on/off",
    ActionKind.PREVIOUS: "previous",
    ActionKind.NEXT: "next",
    ActionKind.UNDO: "undo",
    ActionKind.FINALIZE: "finalize batch",
}
_ARROWS = {"Left": "←", "Right": "→", "Return": "Enter"}


class Mark:
    """Kinds of the staged-choice mark under a picture (also the colour it is painted in)."""

    KEEP = "keep"
    CROP = "crop"
    REJECT = "reject"
    AWAY = "away"  # one of the group's other images, going to delete_staging/


@dataclass(frozen=True)
class TileModel:
    """Everything one tile paints besides the pixels."""

    index: int
    keys: str  # the keys that act on this image, e.g. "1 · Q"
    name: str
    detail: str  # "2.4 MB · 3072 × 2048 px"
    width: int | None  # as displayed (EXIF applied), from the scan
    height: int | None
    problem: str | None  # show a placeholder with this reason instead of the picture
    ai_pick: bool
    ai_label: str  # "AI pick 87%" on the AI's pick, else ""
    crop: CropBox | None  # the AI's crop, drawn when the overlay is on
    mark: str  # "✓ keep → crop_auto/", "" while the group is undecided
    mark_kind: str  # a Mark value, "" with no mark


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _key_for(keymap: Mapping[str, Action], kind: ActionKind, index: int) -> str | None:
    names = [n for n, a in keymap.items() if a.kind == kind and a.index == index]
    return names[0] if names else None


def ai_view(group: GroupState) -> tuple[int | None, float | None, CropBox | None]:
    """The AI's (pick, confidence, crop) as the decision will record it.

    A staged choice keeps the proposal the user saw when choosing, so that is what is
    shown for a decided group even if a newer model would now propose something else.
    """
    if group.staged is not None:
        s = group.staged
        return s.ai_selected_index, s.ai_confidence, s.ai_crop
    p = group.proposal
    if p is None:
        return None, None, None
    if p.selected_index is not None and p.selected_index >= len(group.images):
        return None, p.confidence, None
    return p.selected_index, p.confidence, p.crop if p.selected_index is not None else None


def _mark(group: GroupState, index: int) -> tuple[str, str]:
    choice = group.staged
    if choice is None:
        return "", ""
    if choice.user_action == "reject":
        return f"✗ group rejected → {STAGING}/", Mark.REJECT
    if index != choice.user_selected_index:
        return f"→ {STAGING}/", Mark.AWAY
    route = group.route or ""
    if choice.user_action == "crop":
        return f"✂ to crop → {route}/", Mark.CROP
    if route == "crop_auto":
        return f"✓ keep with the AI crop → {route}/", Mark.KEEP
    return f"✓ keep → {route}/", Mark.KEEP


def image_detail(size_bytes: int, width: int | None, height: int | None) -> str:
    pixels = f"{width} × {height} px" if width and height else "size unknown"
    return f"{human_size(size_bytes)}  ·  {pixels}"


def tile_models(group: GroupState, keymap: Mapping[str, Action]) -> list[TileModel]:
    """One TileModel per image of the group, in order."""
    ai_index, confidence, crop = ai_view(group)
    out = []
    for i, image in enumerate(group.images):
        keys = [k for k in (_key_for(keymap, ActionKind.APPROVE, i),
                            _key_for(keymap, ActionKind.CROP, i)) if k]  # fmt: skip
        is_pick = ai_index == i
        label = ""
        if is_pick:
            label = "AI pick" if confidence is None else f"AI pick {percent(confidence)}"
        mark, kind = _mark(group, i)
        out.append(
            TileModel(
                index=i,
                keys=" · ".join(keys),
                name=image.path.name,
                detail=image_detail(image.size_bytes, image.width, image.height),
                width=image.width,
                height=image.height,
                problem=image.problem,
                ai_pick=is_pick,
                ai_label=label,
                crop=crop if is_pick and group.overlay_on and image.problem is None else None,
                mark=mark,
                mark_kind=kind,
            )
        )
    return out


def _agreement(value: float | None) -> str:
    return "none yet" if value is None else percent(value)


def status_text(progress: Progress, group: GroupState | None) -> str:
    """The status line: where the user is, what is decided, how often the AI agreed."""
    if group is None or progress.batch_number is None:
        return (
            f"Every group is decided ({progress.total_decided} of {progress.total_groups})   ·   "
            f"AI agreement {_agreement(progress.overall_agreement)} overall"
        )
    return (
        f"Group {group.index + 1} / {progress.groups_in_batch} of batch {progress.batch_number}"
        f"   ·   {progress.decided_in_batch} decided in this batch"
        f"   ·   AI agreement {_agreement(progress.batch_agreement)} this batch, "
        f"{_agreement(progress.overall_agreement)} overall"
        f"   ·   {progress.total_decided} / {progress.total_groups} groups decided"
    )


def group_text(group: GroupState | None) -> str:
    """The second status row: why the images were grouped, and which models spoke."""
    if group is None:
        return "Rescan the source folder to review new images."
    state = "open" if group.staged is None else f"staged: {group.staged.user_action}"
    overlay = "on" if group.overlay_on else "off"
    p = group.proposal
    if group.staged is not None:
        models = f"{group.staged.ranker_version or '–'} / {group.staged.crop_version or '–'}"
    elif p is not None:
        models = f"{p.ranker_version} / {p.crop_version}"
    else:
        models = "looking…"
    return (
        f"{len(group.images)} images, {state}   ·   {group.reason}   ·   "
        f"AI crop overlay {overlay}   ·   models (pick / crop): {models}"
    )


def _keys_label(names: list[str]) -> str:
    names = [_ARROWS.get(n, n).replace("Return", "Enter") for n in names]
    names = list(dict.fromkeys(names))  # Ctrl+Return and Ctrl+Enter read the same
    if len(names) >= 3:
        return f"{names[0]}–{names[-1]}"
    return "/".join(names)


def hint_text(keymap: Mapping[str, Action]) -> str:
    """The compact key hints under the view, built from the (possibly custom) key map."""
    by_kind: dict[ActionKind, list[str]] = {}
    for name, action in sorted(keymap.items(), key=lambda kv: kv[1].index):
        by_kind.setdefault(action.kind, []).append(name)
    parts = [f"{_keys_label(by_kind[kind])}  {_SHORT[kind]}" for kind in _SHORT if kind in by_kind]
    parts.insert(-2, "Space  100% loupe")
    return "     ".join(parts)
