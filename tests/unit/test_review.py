"""The reviewer's state machine, driven by key names: staged rows, finalize routing, undo, resume."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from workbench.core.crops import CropBox
from workbench.core.db import get_meta
from workbench.core.finalize import StagedChoice
from workbench.core.project import ROUTING_FOLDERS, Project, ProjectStore
from workbench.core.review import (
    DEFAULT_KEYMAP,
    POSITION_KEY,
    Action,
    ActionKind,
    AIProposal,
    ChangeKind,
    ReviewSession,
    key_help,
)
from workbench.core.scan_store import scan_project
from workbench.core.sidecar import read_sidecar

AI_CROP = CropBox(0.1, 0.2, 0.8, 0.9)
AI_PICK = 1  # the fake AI always keeps the second image


class FakeAI:
    """A deterministic predictor that records every synchronous call."""

    def __init__(self, pick: int | None = AI_PICK, fail: bool = False) -> None:
        self.pick, self.fail = pick, fail
        self.calls: list[list[Path]] = []

    def __call__(self, paths: list[Path]) -> AIProposal:
        self.calls.append(list(paths))
        if self.fail:
            raise RuntimeError("model file is damaged")
        scores = [0.1] * len(paths)
        if self.pick is not None:
            scores[self.pick] = 1.0 - 0.1 * (len(paths) - 1)
        crop = AI_CROP if self.pick is not None else None
        return AIProposal(self.pick, scores, 0.8, crop, "heuristic", "smartcrop")


def make_source(folder: Path, sizes: list[int]) -> Path:
    """Real PNGs named by timestamp: 2 s apart inside a group, 5 min between groups."""
    start = datetime(2025, 7, 5, 22, 0, 0)
    for g, n in enumerate(sizes):
        for i in range(n):
            stamp = start + timedelta(minutes=5 * g, seconds=2 * i)
            name = stamp.strftime("%Y%m%d_%H%M%S") + "_shot.png"
            Image.new("RGB", (40 + i, 30 + g), (20 * g % 256, 60 * i, 90)).save(folder / name)
    return folder


def new_project(store: ProjectStore, source: Path, sizes: list[int], batch: int) -> Project:
    make_source(source, sizes)
    project = store.create("rev", source)
    project.settings.batch_size = batch
    conn = project.connect()
    summary = scan_project(project, conn)
    conn.close()
    assert summary.groups == len(sizes)
    return project


def staged_rows(conn: sqlite3.Connection) -> dict[int, tuple]:
    rows = conn.execute(
        "SELECT group_pk, user_action, user_selected_index, crop_overlay_on, ai_selected_index"
        " FROM staged_choices"
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def routed(project: Project) -> dict[str, list[str]]:
    return {f: sorted(os.listdir(project.folder(f))) for f in ROUTING_FOLDERS}


# Ten groups, one per key: (key, group size, staged row, folder of the chosen image,
# ai_crop_accepted, selection_match); "T2" toggles the overlay off first.
KEYS = [
    ("2", 2, ("approve", 1, 1, 1), "crop_auto", True, True),
    ("T2", 3, ("approve", 1, 0, 1), "selected", False, True),
    ("3", 3, ("approve", 2, 1, 1), "selected", None, False),
    ("4", 4, ("approve", 3, 1, 1), "selected", None, False),
    ("q", 2, ("crop", 0, 1, 1), "crop", None, False),
    ("W", 2, ("crop", 1, 1, 1), "crop", None, True),
    ("e", 3, ("crop", 2, 1, 1), "crop", None, False),
    ("R", 4, ("crop", 3, 1, 1), "crop", None, False),
    ("x", 3, ("reject", 1, 1, 1), "delete_staging", None, None),
    ("1", 2, ("approve", 0, 1, 1), "selected", None, False),
]


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    # Batch 1: the ten groups of KEYS; batch 2: two more groups.
    return new_project(store, source_dir, [k[1] for k in KEYS] + [2, 3], batch=len(KEYS))


@pytest.fixture
def conn(project: Project) -> Iterator[sqlite3.Connection]:
    c = project.connect()
    yield c
    c.close()


def decide_all(session: ReviewSession) -> None:
    for key, *_ in KEYS:
        for k in [key] if key != "T2" else ["T", "2"]:
            assert session.handle(k).handled


def test_every_key_stages_then_finalize_routes_like_the_table(project, conn):
    ai = FakeAI()
    session = ReviewSession(project, conn, ai)
    states = session.groups()
    assert [len(g.images) for g in states] == [k[1] for k in KEYS]
    before = {g.pk: g.paths for g in states}
    for i, (key, _, row, folder, _, _) in enumerate(KEYS):
        assert session.current().index == i
        if key == "T2":
            change = session.handle("T")
            assert change.kind == ChangeKind.GROUPS and not session.current().overlay_on
            assert states[i].pk not in staged_rows(conn)  # nothing staged yet to re-stage
            key = "2"
        change = session.handle(key)
        assert change.changed == (i,)
        assert staged_rows(conn)[states[i].pk] == row  # committed before the next group shows
        assert session.groups()[i].route == folder
        assert change.group_index == min(i + 1, len(KEYS) - 1)
    assert change.message == "Batch complete: Ctrl+Enter finalizes"
    assert len(ai.calls) == len(KEYS)  # no proposal was prefetched: asked at each choice

    change = session.handle("ctrl+return")
    assert change.kind == ChangeKind.BATCH and change.batch_changed and change.finalized
    assert session.progress().batch_number == 2 and len(session.groups()) == 2
    for (key, _, row, folder, accepted, match), pk in zip(KEYS, before, strict=True):
        gid = conn.execute("SELECT group_id FROM groups WHERE id = ?", (pk,)).fetchone()[0]
        d = conn.execute("SELECT * FROM ai_decisions WHERE group_id = ?", (gid,)).fetchone()
        assert (d["user_action"], d["user_selected_index"]) == row[:2], key
        assert d["ai_selected_index"] == AI_PICK and d["ai_confidence"] == 0.8
        assert d["ai_crop_accepted"] == (None if accepted is None else int(accepted)), key
        assert d["selection_match"] == (None if match is None else int(match)), key
        assert d["image_width"] == 40 + row[1]
        extras = conn.execute(
            "SELECT ranker_version, crop_version FROM decision_extras WHERE group_id = ?", (gid,)
        ).fetchone()
        assert tuple(extras) == ("heuristic", "smartcrop")
        for index, original in enumerate(before[pk]):
            want = folder if index == row[1] else "delete_staging"
            assert (project.folder(want) / original.name).is_file(), (key, index)
            assert not original.exists()
            sidecar = (project.folder(want) / original.name).with_suffix(".decision")
            assert sidecar.exists() == (index == row[1] and want in ("crop", "crop_auto"))
            if sidecar.exists():
                assert read_sidecar(sidecar, project=project).group_id == gid
    assert change.finalized.counts == {
        "crop_auto": 1,
        "selected": 4,
        "crop": 4,
        "delete_staging": 1,
    }


def test_moves_home_end_and_the_saved_position(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    pks = [g.pk for g in session.groups()]
    assert session.handle("Left").kind == ChangeKind.NOTHING  # already at the first group
    assert session.handle("Right").kind == ChangeKind.MOVED
    assert session.handle("right").group_index == 2
    assert session.handle("End").group_index == len(pks) - 1
    assert session.handle("Right").kind == ChangeKind.NOTHING
    assert session.handle("Home").group_index == 0
    session.handle("End")
    assert session.handle("Left").group_index == len(pks) - 2
    assert json.loads(get_meta(conn, POSITION_KEY))["group_pk"] == pks[-2]
    assert staged_rows(conn) == {}  # moving decides nothing
    unbound = session.handle("F5")
    assert not unbound.handled and unbound.kind == ChangeKind.NOTHING


def test_reopening_resumes_where_the_user_left_off(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    session.handle("1")
    session.handle("2")
    session.handle("Right")
    pk = session.current().pk
    conn.close()
    again = project.connect()
    try:
        resumed = ReviewSession(project, again, FakeAI())
        assert resumed.current().pk == pk and resumed.current().index == 3
        assert [g.staged is not None for g in resumed.groups()][:4] == [True, True, False, False]
        assert resumed.groups()[0].staged.user_selected_index == 0
    finally:
        again.close()


def test_without_a_saved_position_it_opens_at_the_first_undecided_group(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    session.handle("1")
    session.handle("1")
    conn.execute("DELETE FROM meta WHERE key = ?", (POSITION_KEY,))
    assert ReviewSession(project, conn, FakeAI()).current().index == 2


def test_a_key_beyond_the_group_changes_nothing(project, conn):
    session = ReviewSession(project, conn, FakeAI())  # the first group has two images
    for key in ("3", "4", "E", "r"):
        change = session.handle(key)
        assert change.kind == ChangeKind.NOTHING and change.message == "Group has only 2 images"
        assert change.group_index == 0
    assert staged_rows(conn) == {}


def test_finalize_is_refused_while_groups_are_undecided(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    session.handle("1")
    change = session.handle("Ctrl+Return")
    assert change.kind == ChangeKind.NOTHING and change.finalized is None
    assert change.message.startswith("9 group(s) are undecided (the first is group 2)")
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0
    assert all(v == [] for v in routed(project).values())


def test_undo_walks_back_choices_across_groups(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    pks = [g.pk for g in session.groups()]
    session.handle("1")  # group 0
    session.handle("x")  # group 1
    session.handle("Home")
    session.handle("T")  # group 0 is staged: re-staged with the overlay off
    assert staged_rows(conn)[pks[0]] == ("approve", 0, 0, 1)
    session.handle("2")  # replaces group 0's choice
    assert staged_rows(conn)[pks[0]] == ("approve", 1, 0, 1)
    session.handle("End")

    change = session.handle("Ctrl+Z")
    assert change.group_index == 0 and change.changed == (0,)
    assert staged_rows(conn)[pks[0]] == ("approve", 0, 0, 1)
    session.handle("ctrl+z")  # the overlay toggle
    assert staged_rows(conn)[pks[0]] == ("approve", 0, 1, 1) and session.current().overlay_on
    change = session.handle("Ctrl+Z")
    assert change.group_index == 1 and pks[1] not in staged_rows(conn)
    assert session.handle("Ctrl+Z").group_index == 0
    assert staged_rows(conn) == {}
    assert json.loads(get_meta(conn, POSITION_KEY))["group_pk"] == pks[0]
    assert session.handle("Ctrl+Z").message == "Nothing was undone: nothing to undo."


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_undo_of_a_finalize_brings_back_files_and_rows_then_refinalizes(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    source_before = tree(project.source)
    batch1 = [g.pk for g in session.groups()]
    decide_all(session)
    choices = staged_rows(conn)
    session.handle("Ctrl+Return")
    session.handle("1")  # a choice in batch 2, undone first
    assert len(staged_rows(conn)) == len(KEYS) + 1

    assert session.handle("Ctrl+Z").changed == (0,) and len(staged_rows(conn)) == len(KEYS)
    change = session.handle("Ctrl+Z")
    assert change.kind == ChangeKind.BATCH and change.message.startswith("Finalize undone")
    assert tree(project.source) == source_before
    assert all(v == [] for v in routed(project).values())
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0
    assert staged_rows(conn) == choices  # the batch comes back with every choice
    assert [g.pk for g in session.groups()] == batch1
    assert session.current().index == len(KEYS) - 1  # at its last group

    session.handle("Ctrl+Z")  # then the batch's own choices, newest first
    assert batch1[-1] not in staged_rows(conn)
    session.handle("1")
    assert session.handle("Ctrl+Return").finalized is not None
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == len(KEYS)


def test_after_reopening_undo_reaches_the_last_finalize_in_the_journal(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    decide_all(session)
    session.handle("Ctrl+Return")
    reopened = ReviewSession(project, conn, FakeAI())
    assert reopened.progress().batch_number == 2
    change = reopened.handle("Ctrl+Z")
    assert change.kind == ChangeKind.BATCH and reopened.progress().batch_number == 1
    assert reopened.current().index == len(KEYS) - 1
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0


def test_finalizing_the_last_batch_leaves_a_done_state(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    decide_all(session)
    session.handle("Ctrl+Return")
    session.handle("1")
    session.handle("x")
    change = session.handle("Ctrl+Return")
    assert change.kind == ChangeKind.DONE and "Every group is decided" in change.message
    assert session.done and session.current() is None
    assert session.handle("1").kind == ChangeKind.NOTHING
    assert ReviewSession(project, conn, FakeAI()).done
    assert session.handle("Ctrl+Z").kind == ChangeKind.BATCH  # undo still works when done
    assert session.progress().batch_number == 2


def test_the_provider_is_asked_only_when_no_proposal_was_set(project, conn):
    ai = FakeAI()
    session = ReviewSession(project, conn, ai)
    first, second = session.groups()[:2]
    assert session.proposals_needed(2) == [(first.pk, first.paths), (second.pk, second.paths)]
    prefetched = AIProposal(0, [0.7, 0.3], 0.7, None, "v3", "v2")
    change = session.set_proposal(first.pk, prefetched)
    assert change.changed == (0,) and session.current().proposal == prefetched
    session.handle("1")
    assert ai.calls == []
    staged = session.groups()[0].staged
    assert (staged.ai_selected_index, staged.ranker_version, staged.crop_version) == (0, "v3", "v2")
    session.handle("1")
    assert ai.calls == [second.paths]  # synchronous, with the group's images in order
    assert session.groups()[1].proposal is not None
    assert session.groups()[1].staged.ai_crop == AI_CROP


def test_a_failing_provider_does_not_block_the_choice(project, conn):
    session = ReviewSession(project, conn, FakeAI(fail=True))
    change = session.handle("1")
    assert change.kind == ChangeKind.GROUPS and "model file is damaged" in change.message
    assert session.groups()[0].staged == StagedChoice("approve", 0, True, None, None, None,
                                                      "unavailable", "unavailable")  # fmt: skip


def test_progress_and_agreement(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    p = session.progress()
    assert (p.batch_number, p.groups_in_batch, p.decided_in_batch) == (1, len(KEYS), 0)
    assert (p.total_groups, p.total_decided, p.batch_agreement, p.overall_agreement) == (
        len(KEYS) + 2, 0, None, None)  # fmt: skip
    session.handle("2")  # agrees with the AI
    session.handle("1")  # disagrees
    session.handle("x")  # a reject is not compared
    p = session.progress()
    assert (p.decided_in_batch, p.total_decided) == (3, 3)
    assert p.batch_agreement == p.overall_agreement == 0.5
    session.handle("Home")
    session.handle("Home")
    decide_all(session)  # KEYS: 3 agree, 6 disagree, 1 reject
    session.handle("Ctrl+Return")
    p = session.progress()
    assert (p.total_decided, p.batch_agreement, p.overall_agreement) == (len(KEYS), None, 3 / 9)
    session.handle("2")
    p = session.progress()
    assert p.batch_agreement == 1.0 and p.overall_agreement == 4 / 10
    assert (p.decided_in_batch, p.total_decided) == (1, len(KEYS) + 1)


def test_a_missing_image_shows_its_problem_and_the_group_can_be_rejected(project, conn):
    victim = ReviewSession(project, conn, FakeAI()).groups()[0].paths[0]
    victim.unlink()
    session = ReviewSession(project, conn, FakeAI())
    images = session.current().images
    assert images[0].problem and "missing" in images[0].problem and images[1].problem is None
    change = session.handle("1")
    assert change.kind == ChangeKind.NOTHING and "reject the group (X)" in change.message
    assert session.handle("x").kind == ChangeKind.GROUPS
    assert staged_rows(conn)[session.groups()[0].pk] == ("reject", 1, 1, 1)
    for key, *_ in KEYS[1:]:
        session.go_to([g.staged for g in session.groups()].index(None))
        for k in [key] if key != "T2" else ["T", "2"]:
            session.handle(k)
    change = session.handle("Ctrl+Return")  # the missing file does not block the batch
    assert change.finalized is not None
    gid = change.finalized.group_ids[0]
    indexes = [r[0] for r in conn.execute(
        "SELECT image_index FROM decision_files WHERE group_id = ? ORDER BY image_index", (gid,)
    )]  # fmt: skip
    assert 0 not in indexes and not victim.exists()


def test_a_decode_failure_reported_by_the_view_blocks_only_that_image(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    pk = session.current().pk
    assert session.set_problem(pk, 1, "corrupt: image file is truncated").changed == (0,)
    assert session.current().images[1].problem == "corrupt: image file is truncated"
    assert session.handle("2").kind == ChangeKind.NOTHING
    assert session.handle("1").kind == ChangeKind.GROUPS
    assert session.set_problem(999_999, 0, "x").kind == ChangeKind.NOTHING


def test_key_help_and_a_custom_keymap(project, conn):
    help_rows = dict((desc, keys) for keys, desc in key_help())
    assert help_rows["approve image N"] == "1 / 2 / 3 / 4"
    assert help_rows["send image N to cropping"] == "Q / W / E / R"
    assert help_rows["finalize the batch"] == "Ctrl+Return / Ctrl+Enter"
    assert len(key_help()) == len(ActionKind)
    keymap = {**DEFAULT_KEYMAP, "A": Action(ActionKind.APPROVE, 0)}
    del keymap["1"]
    session = ReviewSession(project, conn, FakeAI(), keymap=keymap)
    assert not session.handle("1").handled
    assert session.handle("a").kind == ChangeKind.GROUPS
    assert dict((d, k) for k, d in session.key_help())["approve image N"] == "A / 2 / 3 / 4"


def test_a_smaller_batch_size_splits_a_scan_batch(project, conn):
    session = ReviewSession(project, conn, FakeAI(), batch_size=4)
    assert len(session.groups()) == 4
    for key in ("1", "1", "1", "1"):
        session.handle(key)
    change = session.handle("Ctrl+Return")
    assert change.kind == ChangeKind.BATCH
    assert [g.position for g in session.groups()] == [4, 5, 6, 7]
    assert session.progress().batch_number == 1


def test_a_new_champion_proposes_undecided_groups_again(project, conn):
    session = ReviewSession(project, conn, FakeAI())
    first, second = session.groups()[:2]
    old = AIProposal(1, [0.3, 0.7], 0.7, None, "heuristic", "heuristic")
    session.set_proposal(first.pk, old)
    session.set_proposal(second.pk, old)
    session.handle("1")  # the first group is decided with the old proposal
    change = session.forget_proposals()
    assert change.kind == ChangeKind.GROUPS and set(change.changed) >= {0, 1}
    assert session.groups()[0].proposal == old  # what its choice recorded stays
    assert session.groups()[1].proposal is None  # asked again, of the new champion
    assert (second.pk, second.paths) in session.proposals_needed(4)
