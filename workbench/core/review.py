"""The reviewer's state machine: Qt-free key names in, `Change`s out; the view keeps no state.

A batch is the open (not finalized) groups of one scan batch in position order, at most
`batch_size` of them. Every choice is committed before the next group shows; Ctrl+Return
finalizes through `finalize.finalize_groups`. Ctrl+Z pops this session's own stack, and
when that is empty undoes the journal's last finalize (so it works after reopening too).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from workbench.core import finalize as fz
from workbench.core.db import get_meta, set_meta, transaction
from workbench.core.decisions import selection_match
from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.core.review_model import (
    DEFAULT_KEYMAP,
    NO_PROPOSAL,
    Action,
    ActionKind,
    AIProposal,
    Change,
    ChangeKind,
    GroupState,
    ImageState,
    Progress,
    ProposalProvider,
    key_help,
)
from workbench.core.scan_store import load_groups

__all__ = [
    "DEFAULT_KEYMAP", "NO_PROPOSAL", "Action", "ActionKind", "AIProposal", "Change",
    "ChangeKind", "GroupState", "ImageState", "Progress", "ProposalProvider", "ReviewSession",
    "key_help",
]  # fmt: skip

POSITION_KEY = "review.position"
MISSING = "missing: the file is gone"
UNDO_DEPTH = 10_000  # choices remembered for Ctrl+Z; more than a long day of reviewing


@dataclass(frozen=True)
class _ChoiceUndo:
    group_pk: int
    previous: fz.StagedChoice | None
    overlay_before: bool


@dataclass(frozen=True)
class _FinalizeUndo:
    operation_id: int


class ReviewSession:
    """The reviewer over one project connection; use it on that connection's thread."""

    def __init__(
        self,
        project: Project,
        conn: sqlite3.Connection,
        provider: ProposalProvider,
        *,
        batch_size: int | None = None,
        keymap: Mapping[str, Action] | None = None,
    ) -> None:
        self.project, self.conn, self.provider = project, conn, provider
        self.batch_size = batch_size or project.settings.batch_size
        self.keymap = dict(keymap or DEFAULT_KEYMAP)
        self._keys = {name.casefold(): action for name, action in self.keymap.items()}
        self._proposals: dict[int, AIProposal] = {}
        self._overlay: dict[int, bool] = {}
        self._problems: dict[tuple[int, int], str] = {}
        self._undo: deque[_ChoiceUndo | _FinalizeUndo] = deque(maxlen=UNDO_DEPTH)
        self._states: list[GroupState] = []
        self._index = -1
        self._batch: int | None = None
        self._totals = (0, 0, 0, 0)  # groups, decided outside the batch, AI agreed, compared
        self._open_batch(*self._saved_position())

    # -- what the view reads -----------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when no open group is left (every batch finalized)."""
        return not self._states

    def groups(self) -> tuple[GroupState, ...]:
        """The open batch's groups, in order."""
        return tuple(self._states)

    def current(self) -> GroupState | None:
        """The group the keys act on; None when done."""
        return self._states[self._index] if self._states else None

    def key_help(self) -> list[tuple[str, str]]:
        """(keys, description) pairs of this session's key map."""
        return key_help(self.keymap)

    def proposals_needed(self, ahead: int = 8) -> list[tuple[int, list[Path]]]:
        """(group pk, paths) of the next groups without a proposal, for a prefetcher."""
        order = self._states[self._index :] + self._states[: self._index]
        return [(g.pk, g.paths) for g in order if g.proposal is None][:ahead]

    def progress(self) -> Progress:
        """Groups decided and AI agreement for the status line, without a database query."""
        groups, elsewhere, agreed, compared = self._totals
        staged = [g.staged for g in self._states if g.staged is not None]
        flags = [
            selection_match(c.user_action, c.ai_selected_index, c.user_selected_index)
            for c in staged
        ]
        b_agreed, b_compared = sum(f is True for f in flags), sum(f is not None for f in flags)
        all_agreed, all_compared = agreed + b_agreed, compared + b_compared
        return Progress(
            self._batch,
            len(self._states),
            len(staged),
            groups,
            elsewhere + len(staged),
            b_agreed / b_compared if b_compared else None,
            all_agreed / all_compared if all_compared else None,
        )

    # -- input -------------------------------------------------------------------------------

    def handle(self, key_name: str) -> Change:
        """The change a key (a Qt-free name: "1", "q", "Ctrl+Z") makes; unbound keys pass."""
        action = self._keys.get(key_name.casefold())
        if action is None:
            return Change(ChangeKind.NOTHING, self._index, handled=False)
        return self.perform(action)

    def perform(self, action: Action) -> Change:
        """The change an action makes, whether it came from a key or a button."""
        kind, last = action.kind, len(self._states) - 1
        if kind == ActionKind.UNDO:
            return self._undo_one()
        if self.done:
            return self._nothing("Every group is decided; rescan to add new images.")
        if kind in (ActionKind.APPROVE, ActionKind.CROP, ActionKind.REJECT):
            return self._choose(kind.name.lower(), action.index)
        if kind == ActionKind.TOGGLE_OVERLAY:
            return self._toggle_overlay()
        if kind == ActionKind.FINALIZE:
            return self._finalize()
        moves = {
            ActionKind.PREVIOUS: self._index - 1,
            ActionKind.NEXT: self._index + 1,
            ActionKind.FIRST: 0,
            ActionKind.LAST: last,
        }
        return self.go_to(min(last, max(0, moves[kind])))

    def go_to(self, index: int) -> Change:
        """The change after making group `index` of the batch current (position saved)."""
        if not 0 <= index < len(self._states) or index == self._index:
            return Change(ChangeKind.NOTHING, self._index)
        self._save_position(self._states[index].pk)  # autocommit: one small write
        self._index = index
        return Change(ChangeKind.MOVED, index)

    def set_proposal(self, group_pk: int, proposal: AIProposal) -> Change:
        """The change after caching a prefetched proposal (that group repaints if open)."""
        self._proposals[group_pk] = proposal
        return self._repaint(group_pk)

    def forget_proposals(self) -> Change:
        """The change after dropping the proposals of undecided groups (a new champion
        proposes them again); a decided group keeps the proposal its choice recorded."""
        decided = {g.pk for g in self._states if g.staged is not None}
        self._proposals = {pk: p for pk, p in self._proposals.items() if pk in decided}
        for i in range(len(self._states)):
            self._refresh(i)
        return Change(ChangeKind.GROUPS, self._index, changed=tuple(range(len(self._states))))

    def set_problem(self, group_pk: int, image_index: int, problem: str | None) -> Change:
        """The change after an image was found unreadable (None: readable after all)."""
        if problem is None:
            self._problems.pop((group_pk, image_index), None)
        else:
            self._problems[(group_pk, image_index)] = problem
        return self._repaint(group_pk)

    # -- actions -----------------------------------------------------------------------------

    def _choose(self, action: str, index: int) -> Change:
        state = self._states[self._index]
        n = len(state.images)
        if index >= n:
            return self._nothing(f"Group has only {n} images")
        if action != "reject" and state.images[index].problem:
            return self._nothing(
                f"Image {index + 1} cannot be chosen ({state.images[index].problem}); "
                "choose another image or reject the group (X)."
            )
        proposal, note = self._proposal_for(state)
        ai = proposal.selected_index if (proposal.selected_index or 0) < n else None
        choice = fz.StagedChoice(
            user_action=action,
            user_selected_index=(ai or 0) if action == "reject" else index,
            crop_overlay_on=state.overlay_on,
            ai_selected_index=ai,
            ai_crop=proposal.crop if ai is not None else None,
            ai_confidence=proposal.confidence,
            ranker_version=proposal.ranker_version,
            crop_version=proposal.crop_version,
        )
        target = min(self._index + 1, len(self._states) - 1)
        change = self._stage(state, choice, target, state.overlay_on)
        if change.kind == ChangeKind.NOTHING:
            return change
        if target != state.index:
            return replace(change, message=note)
        undecided = sum(g.staged is None for g in self._states)
        end = (
            f"Last group of the batch: {undecided} group(s) still undecided."
            if undecided
            else "Batch complete: Ctrl+Enter finalizes"
        )
        return replace(change, message=f"{note} {end}" if note else end)

    def _toggle_overlay(self) -> Change:
        state = self._states[self._index]
        if state.staged is None:  # nothing committed yet: the choice will carry it
            self._overlay[state.pk] = not state.overlay_on
            self._refresh(self._index)
            return Change(ChangeKind.GROUPS, self._index, changed=(self._index,))
        choice = replace(state.staged, crop_overlay_on=not state.overlay_on)
        return self._stage(state, choice, self._index, not state.overlay_on)

    def _stage(
        self, state: GroupState, choice: fz.StagedChoice, target: int, overlay: bool
    ) -> Change:
        """Commit the choice and the new position together, before anything is shown."""
        try:
            with transaction(self.conn):
                fz.stage_choice(self.conn, state.pk, choice)
                self._save_position(self._states[target].pk)
        except WorkbenchError as exc:
            return self._nothing(exc.message)
        self._undo.append(_ChoiceUndo(state.pk, state.staged, state.overlay_on))
        self._overlay[state.pk] = overlay
        self._states[state.index] = self._build(state.index, state, choice)
        self._index = target
        return Change(ChangeKind.GROUPS, target, changed=(state.index,))

    def _finalize(self) -> Change:
        undecided = [g.index + 1 for g in self._states if g.staged is None]
        if undecided:
            return self._nothing(
                f"{len(undecided)} group(s) are undecided (the first is group {undecided[0]}); "
                "decide them before finalizing."
            )
        batch = self._batch
        try:
            result = fz.finalize_groups(self.project, self.conn, [g.pk for g in self._states])
        except WorkbenchError as exc:  # e.g. a file gone since the batch opened
            self._check_files((g.pk, g.images) for g in self._states)
            for g in self._states:
                self._refresh(g.index)
            broken = [g.index for g in self._states if any(im.problem for im in g.images)]
            self.go_to(broken[0] if broken else self._index)
            return Change(
                ChangeKind.BATCH,
                self._index,
                f"Nothing was finalized: {exc.message} "
                "Put the file back, or reject its group (X) and restore it later.",
                batch_changed=True,
            )
        self._undo.append(_FinalizeUndo(result.operation_id))
        self._open_batch(None, None)
        if self._states:
            self._save_position(self._states[self._index].pk)
        counts = ", ".join(f"{n} to {folder}/" for folder, n in sorted(result.counts.items()))
        message = f"Batch {batch} finalized: {counts}."
        if self.done:
            return Change(ChangeKind.DONE, -1, f"{message} Every group is decided.", result, True)
        return Change(ChangeKind.BATCH, self._index, message, result, True)

    def _undo_one(self) -> Change:
        if not self._undo:
            return self._undo_finalize(None)
        entry = self._undo.pop()
        if isinstance(entry, _FinalizeUndo):
            return self._undo_finalize(entry)
        pk = entry.group_pk
        sql = "SELECT batch_number FROM groups WHERE id = ? AND group_id IS NULL"
        row = self.conn.execute(sql, (pk,)).fetchone()
        if row is None:
            return self._nothing("That choice was finalized meanwhile; it cannot be undone here.")
        if pk not in {g.pk for g in self._states}:
            self._open_batch(pk, int(row[0]))
        index = next((g.index for g in self._states if g.pk == pk), None)
        if index is None:  # only when a smaller batch_size left it out of the batch
            return self._nothing("That choice's group is not in the open batch; nothing undone.")
        try:
            with transaction(self.conn):
                if entry.previous is None:
                    fz.unstage_choice(self.conn, pk)
                else:
                    fz.stage_choice(self.conn, pk, entry.previous)
                self._save_position(pk)
        except WorkbenchError as exc:
            return self._nothing(f"Nothing was undone: {exc.message}")
        self._overlay[pk] = entry.overlay_before
        self._states[index] = self._build(index, self._states[index], entry.previous)
        self._index = index
        return Change(ChangeKind.GROUPS, index, "Choice undone.", changed=(index,))

    def _undo_finalize(self, entry: _FinalizeUndo | None) -> Change:
        journal = fz.journal_for(self.project, self.conn)
        newest = journal.undoable(limit=1)
        if entry is not None:
            sql = "SELECT state FROM file_operations WHERE id = ?"
            row = self.conn.execute(sql, (entry.operation_id,)).fetchone()
            if row is None or row[0] != "done":
                return self._nothing("That finalize was already undone.")
            if newest and newest[0][0] != entry.operation_id:
                self._undo.append(entry)  # still ours once the newer operation is undone
                return self._nothing(f"Nothing was undone: '{newest[0][1]}' is newer.")
        payload = journal.payload(newest[0][0]) if newest else {}
        if payload.get("kind") != "finalize":
            what = f"the last file operation is '{newest[0][1]}'" if newest else "nothing to undo"
            return self._nothing(f"Nothing was undone: {what}.")
        try:
            fz.undo_last(self.project, self.conn, 1)
        except WorkbenchError as exc:
            if entry is not None:
                self._undo.append(entry)
            return self._nothing(exc.message)
        pks = [int(pk) for pk in payload.get("group_pks", [])]
        sql = "SELECT batch_number FROM groups WHERE id = ? AND group_id IS NULL"
        row = self.conn.execute(sql, (pks[-1],)).fetchone() if pks else None
        self._open_batch(pks[-1] if row else None, int(row[0]) if row else None)
        if self._states:
            self._save_position(self._states[self._index].pk)
        message = f"Finalize undone: {len(pks)} group(s) and their files are back."
        return Change(ChangeKind.BATCH, self._index, message, batch_changed=True)

    # -- batches, states, position -----------------------------------------------------------

    def _open_batch(self, focus_pk: int | None, batch: int | None) -> None:
        """Load a batch (the first open one when `batch` is None); `focus_pk` becomes current."""
        if batch is None:
            row = self.conn.execute(
                "SELECT batch_number FROM groups WHERE group_id IS NULL"
                " ORDER BY batch_number, position LIMIT 1"
            ).fetchone()
            batch = int(row[0]) if row else None
        stored = [] if batch is None else load_groups(self.conn, batch)
        stored = [g for g in stored if g.group_id is None][: self.batch_size]
        staged = fz.staged_choices(self.conn, [g.pk for g in stored])
        self._batch = batch if stored else None
        self._states = []
        for i, g in enumerate(stored):
            images = [
                ImageState(Path(im.path), im.width, im.height, im.size_bytes) for im in g.images
            ]
            self._check_files([(g.pk, images)])
            if g.pk in staged:
                self._overlay[g.pk] = staged[g.pk].crop_overlay_on
            base = GroupState(
                g.pk, g.batch_number, g.position, i, g.reason, tuple(images), None, True, None, None
            )
            self._states.append(self._build(i, base, staged.get(g.pk)))
        pks = [g.pk for g in self._states]
        first_open = next((g.index for g in self._states if g.staged is None), 0)
        self._index = -1 if not pks else pks.index(focus_pk) if focus_pk in pks else first_open
        # One query for the status line's totals; progress() then needs none.
        groups, elsewhere, agreed, compared = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM groups), (SELECT COUNT(group_id) FROM groups)"
            " + (SELECT COUNT(*) FROM staged_choices s JOIN groups g ON g.id = s.group_pk"
            "    WHERE g.group_id IS NULL),"
            # The ai_performance view's definition: a NULL selection_match is not compared.
            " (SELECT COALESCE(SUM(selection_match = 1), 0) FROM ai_decisions"
            "  WHERE project_id = :p),"
            " (SELECT COUNT(selection_match) FROM ai_decisions WHERE project_id = :p)",
            {"p": self.project.name},
        ).fetchone()
        self._totals = (groups, elsewhere - len(staged), agreed, compared)

    def _build(self, index: int, base: GroupState, choice: fz.StagedChoice | None) -> GroupState:
        images = tuple(
            replace(im, problem=self._problems.get((base.pk, j)))
            for j, im in enumerate(base.images)
        )
        route = fz.route_for(choice)[0] if choice is not None else None
        overlay = self._overlay.get(base.pk, True)
        return replace(
            base,
            index=index,
            images=images,
            proposal=self._proposals.get(base.pk),
            overlay_on=overlay,
            staged=choice,
            route=route,
        )

    def _check_files(self, groups: Iterable[tuple[int, Sequence[ImageState]]]) -> None:
        """Mark images whose file is gone (or back): a stat each, never on a key's fast path."""
        for pk, images in groups:
            for j, im in enumerate(images):
                if not os.path.isfile(im.path):
                    self._problems[(pk, j)] = MISSING
                elif self._problems.get((pk, j)) == MISSING:
                    del self._problems[(pk, j)]

    def _refresh(self, index: int) -> None:
        self._states[index] = self._build(index, self._states[index], self._states[index].staged)

    def _repaint(self, group_pk: int) -> Change:
        for g in self._states:
            if g.pk == group_pk:
                self._refresh(g.index)
                return Change(ChangeKind.GROUPS, self._index, changed=(g.index,))
        return Change(ChangeKind.NOTHING, self._index)

    def _proposal_for(self, state: GroupState) -> tuple[AIProposal, str | None]:
        """The cached proposal, else the provider's now, so the staged choice records it."""
        cached = self._proposals.get(state.pk)
        if cached is not None:
            return cached, None
        try:
            proposal = self.provider(state.paths)
        except Exception as exc:  # any predictor failure: the user must still be able to decide
            # Not cached, so the next action on this group asks the predictor again.
            return NO_PROPOSAL, f"No AI proposal for this group ({exc}); your choice was kept."
        self._proposals[state.pk] = proposal
        return proposal, None

    def _saved_position(self) -> tuple[int | None, int | None]:
        """(group pk, batch) of the saved position while that group is still open."""
        try:
            pk = int(json.loads(get_meta(self.conn, POSITION_KEY) or "{}")["group_pk"])
        except (ValueError, TypeError, KeyError):
            return None, None
        sql = "SELECT batch_number FROM groups WHERE id = ? AND group_id IS NULL"
        row = self.conn.execute(sql, (pk,)).fetchone()
        return (pk, int(row[0])) if row else (None, None)

    def _save_position(self, group_pk: int) -> None:
        batch = next((g.batch_number for g in self._states if g.pk == group_pk), self._batch)
        set_meta(self.conn, POSITION_KEY, json.dumps({"batch": batch, "group_pk": group_pk}))

    def _nothing(self, message: str) -> Change:
        return Change(ChangeKind.NOTHING, self._index, message)
