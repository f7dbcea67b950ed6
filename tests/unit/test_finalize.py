"""Finalize routes every group per ARCHITECTURE.md's routing table; undo reverses it."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from workbench.core import db
from workbench.core.crops import CropBox
from workbench.core.decisions import GROUP_ID_RE
from workbench.core.errors import InvalidInput
from workbench.core.fileops import FileJournal
from workbench.core.finalize import (
    REVERTERS,
    StagedChoice,
    finalize_groups,
    stage_choice,
    staged_choices,
    undo_last,
)
from workbench.core.project import ROUTING_FOLDERS, Project, ProjectStore
from workbench.core.sidecar import read_sidecar
from workbench.core.timeutil import iso_utc

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
AI_CROP = CropBox(0.1, 0.2, 0.8, 0.9)


def image_size(group: int, index: int) -> tuple[int, int]:
    """Every image has its own size, so a row's size says which image it came from."""
    return 16 + group, 8 + index


def build_groups(
    project: Project, conn: sqlite3.Connection, sizes: list[int], *, companions: bool = True
) -> list[int]:
    """Group pks of new groups (batch 1) of real PNGs in the source; image 0 has a .txt."""
    pks = []
    with db.transaction(conn):
        for g, n in enumerate(sizes):
            cur = conn.execute(
                "INSERT INTO groups(batch_number, position, reason, created_at)"
                " VALUES (1, ?, 'test', ?)",
                (g, iso_utc()),
            )
            pk = int(cur.lastrowid or 0)
            pks.append(pk)
            for i in range(n):
                path = project.source / f"g{g:02d}_{i}.png"
                w, h = image_size(g, i)
                Image.new("RGB", (w, h), (g * 9 % 256, i * 60, 100)).save(path)
                if companions and i == 0:
                    path.with_suffix(".txt").write_text(f"notes for group {g}")
                st = path.stat()
                conn.execute(
                    "INSERT INTO group_images(group_pk, position, path, width, height,"
                    " size_bytes, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (pk, i, str(path), w, h, st.st_size, st.st_mtime_ns),
                )
    return pks


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def routed(project: Project) -> dict[str, list[str]]:
    return {f: sorted(os.listdir(project.folder(f))) for f in ROUTING_FOLDERS}


def snapshot(project: Project, conn: sqlite3.Connection) -> tuple[object, ...]:
    tables = ("ai_decisions", "decision_files", "groups", "staged_choices", "file_moves",
              "file_operations", "group_images")  # fmt: skip
    rows = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t}")] for t in tables}
    return rows, tree(project.source), routed(project)


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    return store.create("fin", source_dir)


@pytest.fixture
def conn(project: Project) -> sqlite3.Connection:
    c = project.connect()
    yield c
    c.close()


@dataclass(frozen=True)
class Case:
    """One row of the routing table, as a staged choice and what must follow from it."""

    choice: StagedChoice
    folder: str
    chosen: int
    sidecar: bool
    accepted: bool | None
    selection_match: bool | None


CASES = {
    "approve AI pick, crop, overlay on": Case(
        StagedChoice("approve", 1, True, 1, AI_CROP, 0.9), "crop_auto", 1, True, True, True
    ),
    "approve AI pick, crop, overlay off": Case(
        StagedChoice("approve", 1, False, 1, AI_CROP, 0.9), "selected", 1, False, False, True
    ),
    "approve another image than the AI's": Case(
        StagedChoice("approve", 0, True, 1, AI_CROP, 0.6), "selected", 0, False, None, False
    ),
    "approve AI pick without a crop": Case(
        StagedChoice("approve", 2, True, 2, None, 0.7), "selected", 2, False, None, True
    ),
    "approve with no AI pick": Case(
        StagedChoice("approve", 0), "selected", 0, False, None, None
    ),
    "crop, AI had a crop": Case(
        StagedChoice("crop", 0, True, 1, AI_CROP, 0.5), "crop", 0, True, None, False
    ),
    "crop, AI had no crop": Case(
        StagedChoice("crop", 1, True, 1, None, 0.5), "crop", 1, True, None, True
    ),
    "reject, AI picked image 2": Case(
        StagedChoice("reject", 0, True, 1, AI_CROP, 0.4), "delete_staging", 1, False, None, None
    ),
    "reject, no AI pick": Case(
        StagedChoice("reject", 2), "delete_staging", 0, False, None, None
    ),
}  # fmt: skip


@pytest.fixture
def finalized(project, conn):
    """Every routing case staged on its own group of three, then finalized."""
    pks = build_groups(project, conn, [3] * len(CASES))
    before = tree(project.source)
    for pk, case in zip(pks, CASES.values(), strict=True):
        stage_choice(conn, pk, case.choice)
    result = finalize_groups(project, conn, pks, now=NOW)
    return pks, before, result


def test_every_routing_case_gives_the_right_row_files_and_sidecar(project, conn, finalized):
    pks, before, result = finalized
    assert len(result.group_ids) == len(CASES)
    sidecars_seen = set()
    for g, (name, case) in enumerate(CASES.items()):
        gid = result.group_ids[g]
        assert gid == f"fin_group_20250102T030405Z_batch001_img{g:03d}", name
        assert GROUP_ID_RE.match(gid)
        row = conn.execute("SELECT * FROM ai_decisions WHERE group_id = ?", (gid,)).fetchone()
        assert row["user_action"] == case.choice.user_action, name
        assert row["user_selected_index"] == case.chosen, name
        assert (row["image_width"], row["image_height"]) == image_size(g, case.chosen), name
        assert row["ai_crop_accepted"] == case.accepted, name
        assert row["selection_match"] == case.selection_match, name
        assert row["ai_selected_index"] == case.choice.ai_selected_index, name
        assert row["timestamp"] == "2025-01-02T03:04:05Z"
        assert row["directory"] == str(project.source)
        assert json.loads(row["images"]) == [f"g{g:02d}_{i}.png" for i in range(3)]
        files = conn.execute(
            "SELECT image_index, original_path, current_path FROM decision_files"
            " WHERE group_id = ? ORDER BY image_index",
            (gid,),
        ).fetchall()
        assert len(files) == 3
        for index, original, current in files:
            current = Path(current)
            want = case.folder if index == case.chosen else "delete_staging"
            assert current.parent == project.folder(want), (name, index)
            assert current.read_bytes() == before[Path(original).name], (name, index)
            assert not Path(original).exists()
            if index == 0:  # the companion travelled with its image, under the same stem
                assert current.with_suffix(".txt").read_text() == f"notes for group {g}"
            sidecar = current.with_suffix(".decision")
            if index == case.chosen and case.sidecar:
                sc = read_sidecar(sidecar, project=project)
                assert (sc.group_id, sc.project_id, sc.image) == (gid, "fin", current.name)
                assert sc.needs_crop is (case.folder == "crop")
                assert sc.ai_crop_coords == case.choice.ai_crop
                sidecars_seen.add(sidecar)
            else:
                assert not sidecar.exists(), (name, index)
    all_sidecars = {p for f in ROUTING_FOLDERS for p in project.folder(f).glob("*.decision")}
    assert all_sidecars == sidecars_seen and len(sidecars_seen) == 3
    assert os.listdir(project.source) == []
    assert result.counts == {"crop_auto": 1, "selected": 4, "crop": 2, "delete_staging": 2}
    assert FileJournal(conn).unfinished() == []


def test_undo_restores_files_removes_rows_and_sidecars_and_keeps_choices(project, conn, finalized):
    pks, before, result = finalized
    assert undo_last(project, conn) == [f"finalize {len(CASES)} group(s)"]
    assert tree(project.source) == before
    assert all(v == [] for v in routed(project).values())
    for table in ("ai_decisions", "decision_files", "decision_extras"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM groups WHERE group_id IS NOT NULL").fetchone()[0] == 0
    assert staged_choices(conn, pks) == {
        pk: c.choice for pk, c in zip(pks, CASES.values(), strict=True)
    }
    again = finalize_groups(project, conn, pks, now=NOW)  # the choices are still good
    assert again.group_ids == result.group_ids
    assert undo_last(project, conn) and undo_last(project, conn) == []


def test_undo_points_the_group_at_its_image_when_a_newcomer_took_the_name(project, conn):
    (pk,) = build_groups(project, conn, [2])
    original = project.source / "g00_0.png"
    image = original.read_bytes()
    stage_choice(conn, pk, StagedChoice("approve", 0))
    finalize_groups(project, conn, [pk])
    original.write_bytes(b"a newcomer, not part of the group")
    undo_last(project, conn)
    returned = project.source / "g00_0__2.png"
    assert returned.read_bytes() == image
    assert (project.source / "g00_0__2.txt").read_text() == "notes for group 0"
    paths = [r[0] for r in conn.execute("SELECT path FROM group_images ORDER BY position")]
    assert paths == [str(returned), str(project.source / "g00_1.png")]
    finalize_groups(project, conn, [pk])  # moves the group's image, never the newcomer
    assert original.read_bytes() == b"a newcomer, not part of the group"
    assert (project.folder("selected") / "g00_0__2.png").read_bytes() == image


def test_undo_removes_only_our_sidecars_in_crop_folders(project, conn, monkeypatch):
    # an operation kind that touches files only, registered as later modules register theirs
    monkeypatch.setitem(REVERTERS, "files", lambda c, payload, back: None)
    journal = FileJournal(conn, project.is_allowed)
    with db.transaction(conn):
        op = journal.open_operation("someone else's writes", {"kind": "files"})
        journal.plan_write(op, project.folder("crop") / "y.decision", b"{}")
        journal.plan_write(op, project.folder("selected") / "x.decision", b"{}")
        journal.plan_write(op, project.source / "z.decision", b"{}")
    journal.execute(op)
    undo_last(project, conn)
    assert not (project.folder("crop") / "y.decision").exists()
    assert (project.folder("selected") / "x.decision").exists()
    assert (project.source / "z.decision").exists()


def test_a_sidecar_name_already_taken_gives_the_image_a_new_stem(project, conn):
    (pk,) = build_groups(project, conn, [2])
    theirs = project.folder("crop") / "g00_1.decision"
    theirs.write_text("a user's file")
    stage_choice(conn, pk, StagedChoice("crop", 1, True, 1, AI_CROP))
    result = finalize_groups(project, conn, [pk])
    assert result.routes[0].chosen == project.folder("crop") / "g00_1__2.png"
    assert theirs.read_text() == "a user's file"
    sc = read_sidecar(project.folder("crop") / "g00_1__2.decision", project=project)
    assert sc.image == "g00_1__2.png" and sc.group_id == result.group_ids[0]


def test_finalize_refuses_groups_without_choices_and_changes_nothing(project, conn):
    pks = build_groups(project, conn, [2, 3, 2])
    stage_choice(conn, pks[0], StagedChoice("approve", 0))
    stage_choice(conn, pks[2], StagedChoice("reject", 0))
    before = snapshot(project, conn)
    with pytest.raises(InvalidInput, match="1 group\\(s\\) have no decision yet"):
        finalize_groups(project, conn, pks)
    assert snapshot(project, conn) == before
    with pytest.raises(InvalidInput, match="no groups"):
        finalize_groups(project, conn, [])


def test_finalize_refuses_a_missing_kept_image_or_a_finalized_group_and_changes_nothing(
    project, conn
):
    pks = build_groups(project, conn, [2, 2])
    stage_choice(conn, pks[0], StagedChoice("approve", 0))
    stage_choice(conn, pks[1], StagedChoice("approve", 1))
    finalize_groups(project, conn, pks[:1])
    (project.source / "g01_1.png").rename(project.root / "exports" / "g01_1.png")
    before = snapshot(project, conn)
    with pytest.raises(InvalidInput, match="missing"):
        finalize_groups(project, conn, pks[1:])
    with pytest.raises(InvalidInput, match="already finalized"):
        finalize_groups(project, conn, pks)
    assert snapshot(project, conn) == before


def test_a_missing_image_the_user_did_not_keep_does_not_block_finalize(project, conn):
    pks = build_groups(project, conn, [3, 2])
    stage_choice(conn, pks[0], StagedChoice("approve", 0))
    stage_choice(conn, pks[1], StagedChoice("reject", 0, ai_selected_index=1))
    (project.source / "g00_2.png").unlink()
    (project.source / "g01_1.png").unlink()  # the AI's pick of a rejected group
    result = finalize_groups(project, conn, pks)
    rows = conn.execute(
        "SELECT group_id, image_index FROM decision_files ORDER BY group_id, image_index"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (result.group_ids[0], 0),
        (result.group_ids[0], 1),
        (result.group_ids[1], 0),
    ]
    assert (project.folder("selected") / "g00_0.png").is_file()
    staged = sorted(p.name for p in project.folder("delete_staging").iterdir())
    assert staged == ["g00_1.png", "g01_0.png", "g01_0.txt"]  # with its companion
    reject = conn.execute(
        "SELECT user_selected_index FROM ai_decisions WHERE group_id = ?", (result.group_ids[1],)
    ).fetchone()[0]
    assert reject == 1


def test_stage_choice_validates_and_replaces(project, conn):
    (pk,) = build_groups(project, conn, [2])
    with pytest.raises(InvalidInput, match="Image 3 does not exist"):
        stage_choice(conn, pk, StagedChoice("approve", 2))
    with pytest.raises(InvalidInput, match="Unknown action"):
        stage_choice(conn, pk, StagedChoice("keep", 0))
    stage_choice(conn, pk, StagedChoice("approve", 0))
    stage_choice(conn, pk, StagedChoice("crop", 1, ai_crop=AI_CROP))
    assert staged_choices(conn, [pk])[pk] == StagedChoice("crop", 1, ai_crop=AI_CROP)
