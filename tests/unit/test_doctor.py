"""The doctor compares database, files and sidecars, and repairs only what is safe."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.unit.test_finalize import AI_CROP, build_groups, tree
from workbench.core import doctor
from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice, undo_last
from workbench.core.project import Project, ProjectStore


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    return store.create("doc", source_dir)


@pytest.fixture
def conn(project: Project) -> sqlite3.Connection:
    c = project.connect()
    yield c
    c.close()


CHOICES = [
    StagedChoice("crop", 0, True, 1, AI_CROP),  # -> crop/ + sidecar, waits for a crop
    StagedChoice("approve", 1, True, 1, AI_CROP),  # -> crop_auto/ + sidecar
    StagedChoice("approve", 0),  # -> selected/
    StagedChoice("reject", 0, True, 1),  # -> delete_staging/
]


def finalize_all(project: Project, conn: sqlite3.Connection, **kw) -> list[str]:
    pks = build_groups(project, conn, [2] * len(CHOICES))
    for pk, choice in zip(pks, CHOICES, strict=True):
        stage_choice(conn, pk, choice)
    return finalize_groups(project, conn, pks, **kw).group_ids


def current(conn: sqlite3.Connection, gid: str, index: int) -> Path:
    row = conn.execute(
        "SELECT current_path FROM decision_files WHERE group_id = ? AND image_index = ?",
        (gid, index),
    ).fetchone()
    return Path(row[0])


def test_a_fresh_finalize_is_clean_and_lists_crops_waiting(project, conn):
    gids = finalize_all(project, conn)
    report = doctor.check(project, conn)
    assert report.clean, report.findings
    assert report.kinds() == ["incomplete_crop"]
    (finding,) = report.findings
    assert finding["path"] == str(current(conn, gids[0], 0))
    assert gids[0] in finding["message"] and "with its sidecar" in finding["message"]
    assert finding["repairable"] is False
    data = report.to_dict()
    assert data["clean"] is True and data["problems"] == 0
    assert set(data["findings"][0]) == {"kind", "path", "message", "repairable"}
    json.dumps(data)  # the CLI prints it as JSON


def test_unfinished_journal_entries_are_reported_and_rolled_forward(project, conn):
    def crash(step: str, ident: int) -> None:
        if step == "marked_moved":
            raise KeyboardInterrupt  # stands in for a kill between two journal steps

    with pytest.raises(KeyboardInterrupt):
        finalize_all(project, conn, step_hook=crash)
    report = doctor.check(project, conn)
    assert not report.clean
    assert "unfinished_move" in report.kinds()
    assert all(f["repairable"] for f in report.findings if f["kind"] == "unfinished_move")
    fixed = doctor.repair(project, conn)
    assert fixed.clean, fixed.findings
    assert any("interrupted" in line for line in fixed.repaired)


def test_a_missing_sidecar_is_rewritten_from_the_database(project, conn):
    gids = finalize_all(project, conn)
    sidecar = current(conn, gids[1], 1).with_suffix(".decision")
    original = sidecar.read_bytes()
    sidecar.unlink()
    report = doctor.check(project, conn)
    assert report.kinds().count("missing_sidecar") == 1 and not report.clean
    assert doctor.repair(project, conn).clean
    assert sidecar.read_bytes() == original


def test_untrusted_sidecars_are_reported_with_a_reason_and_left_in_place(project, conn):
    gids = finalize_all(project, conn)
    crop = project.folder("crop")
    image = current(conn, gids[0], 0)
    (crop / "loose.png").write_bytes(b"png?")
    bad = {
        "broken.decision": b"{not json",
        "foreign.decision": json.dumps(
            {"group_id": gids[0], "project_id": "other", "needs_crop": True}
        ).encode(),
        "unknown.decision": json.dumps(
            {"group_id": "doc_group_x", "project_id": "doc", "needs_crop": True}
        ).encode(),
        "noimage.decision": json.dumps(
            {"group_id": gids[0], "project_id": "doc", "needs_crop": True, "image": "gone.png"}
        ).encode(),
        "loose.decision": json.dumps(
            {"group_id": gids[0], "project_id": "doc", "needs_crop": True, "image": "loose.png"}
        ).encode(),
    }
    for name, data in bad.items():
        (crop / name).write_bytes(data)
    before = tree(project.root)
    report = doctor.check(project, conn)
    found = {Path(f["path"]).name: f for f in report.findings if f["kind"] != "incomplete_crop"}
    assert set(found) == set(bad)
    assert found["broken.decision"]["kind"] == "invalid_sidecar"
    assert "not valid JSON" in found["broken.decision"]["message"]
    assert "foreign" in found["foreign.decision"]["message"]
    assert found["unknown.decision"]["kind"] == "orphan_sidecar"
    assert "not a decision" in found["unknown.decision"]["message"]
    assert "not beside it" in found["noimage.decision"]["message"]
    assert "elsewhere" in found["loose.decision"]["message"]
    assert not any(f["repairable"] for f in found.values())
    assert all("left in place" in f["message"] for f in found.values())
    after = doctor.repair(project, conn)
    assert not after.clean and sorted(after.kinds()) == sorted(report.kinds())
    assert tree(project.root) == {**before, **_db_files(project)}
    assert image.with_suffix(".decision").exists()


def _db_files(project: Project) -> dict[str, bytes]:
    """The database files change on every write; compare the rest of the project."""
    return {k: v for k, v in tree(project.root).items() if k.startswith(f"{project.name}.db")}


def test_a_file_moved_within_the_project_is_found_by_name_and_size(project, conn):
    gids = finalize_all(project, conn)
    moved = current(conn, gids[2], 1)  # in delete_staging/
    assert moved.parent == project.folder("delete_staging")
    target = project.folder("exports") / "kept" / moved.name
    target.parent.mkdir()
    moved.rename(target)
    # exports/ is not a routing folder: a file there is not found, so not repairable.
    (finding,) = [f for f in doctor.check(project, conn).findings if f["kind"] == "missing_file"]
    assert not finding["repairable"] and "put it back or undo" in finding["message"]
    sub = project.folder("selected") / "kept"
    sub.mkdir()
    target.rename(sub / moved.name)
    (finding,) = [f for f in doctor.check(project, conn).findings if f["kind"] == "missing_file"]
    assert finding["repairable"] and str(sub / moved.name) in finding["message"]
    fixed = doctor.repair(project, conn)
    assert fixed.clean, fixed.findings
    assert current(conn, gids[2], 1) == sub / moved.name
    # the journal followed the file: undo brings it back to the source from where it is now
    undo_last(project, conn, 1)
    assert not (sub / moved.name).exists()
    assert (project.source / moved.name).is_file()
    assert doctor.check(project, conn).clean


def test_a_missing_file_with_two_candidates_is_not_guessed(project, conn):
    gids = finalize_all(project, conn)
    moved = current(conn, gids[3], 0)
    data = moved.read_bytes()
    moved.unlink()
    for folder in ("selected", "crop_cropped"):
        (project.folder(folder) / moved.name).write_bytes(data)
    (finding,) = [f for f in doctor.check(project, conn).findings if f["kind"] == "missing_file"]
    assert not finding["repairable"]
    assert not doctor.repair(project, conn).clean
    assert current(conn, gids[3], 0) == moved


def test_stray_partial_copies_are_removed_and_nothing_else(project, conn):
    finalize_all(project, conn)
    stray = project.folder("selected") / ".g02_0.png.wbpart"
    stray.write_bytes(b"half a copy")
    # beside a file the journal moved out of the source: ours (an interrupted move back)
    moved_src = Path(
        conn.execute("SELECT src FROM file_moves WHERE src != '' LIMIT 1").fetchone()[0]
    )
    in_source = moved_src.parent / f".{moved_src.name}.wbpart"
    in_source.write_bytes(b"half")
    unexplained = project.source / "sub" / ".x.jpg.wbpart"  # no journal entry: not ours
    unexplained.parent.mkdir()
    unexplained.write_bytes(b"half")
    users = project.folder("selected") / "notes.wbpart"  # not our naming: a user's file
    users.write_bytes(b"mine")
    report = doctor.check(project, conn)
    assert sorted(f["path"] for f in report.findings if f["kind"] == "stray_partial") == sorted(
        [str(stray), str(in_source)]
    )
    assert doctor.repair(project, conn).clean
    assert not stray.exists() and not in_source.exists() and users.read_bytes() == b"mine"
    assert unexplained.read_bytes() == b"half"
