"""Restore from delete_staging/: listing, moving back, never overwriting, path checks, undo."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_review import FakeAI, new_project
from workbench.core.errors import InvalidInput, UnsafePath
from workbench.core.finalize import undo_last
from workbench.core.project import Project, ProjectStore
from workbench.core.restore import restore, staged_for_deletion
from workbench.core.review import ReviewSession


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    return new_project(store, source_dir, [3, 2], batch=2)


@pytest.fixture
def conn(project: Project) -> Iterator[sqlite3.Connection]:
    c = project.connect()
    yield c
    c.close()


@pytest.fixture
def rejected(project: Project, conn: sqlite3.Connection) -> list[Path]:
    """Group 0 rejected (its image 0 has a companion .txt), group 1 approved; finalized."""
    session = ReviewSession(project, conn, FakeAI())
    paths = session.groups()[0].paths
    paths[0].with_suffix(".txt").write_text("notes")
    session.handle("x")
    session.handle("1")
    assert session.handle("Ctrl+Return").finalized is not None
    return paths


def decision_file(conn: sqlite3.Connection, original: Path) -> tuple[str, str]:
    sql = "SELECT group_id, current_path FROM decision_files WHERE original_path = ?"
    return tuple(conn.execute(sql, (str(original),)).fetchone())


def test_staged_for_deletion_lists_files_with_their_origin(project, conn, rejected):
    staging = project.folder("delete_staging")
    (staging / "stray.png").write_bytes(b"not from a decision")
    listed = {f.path.name: f for f in staged_for_deletion(project, conn)}
    # Group 0's three images and group 1's second image; the companion rides with its image.
    assert len(listed) == 5 and "stray.png" in listed
    first = listed[rejected[0].name]
    assert first.original_path == rejected[0] and first.image_index == 0
    assert first.companions == (staging / rejected[0].with_suffix(".txt").name,)
    assert first.group_id == decision_file(conn, rejected[0])[0]
    stray = listed["stray.png"]
    assert (stray.group_id, stray.image_index, stray.original_path) == (None, None, None)


def test_restore_moves_a_rejected_image_back_and_keeps_the_decision(project, conn, rejected):
    chosen = rejected[1]  # the AI's pick, which the reject sent to delete_staging/
    staged = project.folder("delete_staging") / chosen.name
    gid, current = decision_file(conn, chosen)
    assert current == str(staged) and not chosen.exists()
    rows_before = conn.execute("SELECT * FROM ai_decisions").fetchall()

    result = restore(project, conn, [staged])
    assert [(r.src, r.dst, r.group_id, r.image_index) for r in result.restored] == [
        (staged, chosen, gid, 1)
    ]
    assert chosen.is_file() and not staged.exists() and result.moved == 1
    assert decision_file(conn, chosen) == (gid, str(chosen))
    assert conn.execute("SELECT * FROM ai_decisions").fetchall() == rows_before
    label = conn.execute("SELECT payload FROM file_operations WHERE id = ?", (result.operation_id,))
    assert '"kind": "restore"' in label.fetchone()[0]


def test_a_companion_comes_back_with_its_image(project, conn, rejected):
    staging = project.folder("delete_staging")
    note = staging / rejected[0].with_suffix(".txt").name
    result = restore(project, conn, [staging / rejected[0].name, note])  # asked twice: once
    assert result.moved == 2 and len(result.restored) == 1
    assert rejected[0].with_suffix(".txt").read_text() == "notes"


def test_a_taken_name_gets_a_new_stem_and_nothing_is_overwritten(project, conn, rejected):
    original = rejected[2]
    original.write_bytes(b"a newcomer")
    restore(project, conn, [project.folder("delete_staging") / original.name])
    back = original.with_name(f"{original.stem}__2{original.suffix}")
    assert original.read_bytes() == b"a newcomer" and back.is_file()
    assert decision_file(conn, original)[1] == str(back)


def test_an_unknown_file_goes_to_the_source_root(project, conn, rejected):
    stray = project.folder("delete_staging") / "stray.png"
    stray.write_bytes(b"x")
    result = restore(project, conn, [stray])
    assert result.restored[0].dst == project.source / "stray.png"
    assert result.restored[0].group_id is None


def test_only_files_in_delete_staging_can_be_restored(project, conn, rejected, tmp_path):
    outside = [
        project.folder("selected") / "anything.png",
        project.folder("delete_staging") / ".." / "selected" / "x.png",
        project.source / rejected[0].name,
        tmp_path / "elsewhere.png",
    ]
    before = staged_for_deletion(project, conn)
    for path in outside:
        with pytest.raises(UnsafePath):
            restore(project, conn, [path])
    assert staged_for_deletion(project, conn) == before
    assert conn.execute("SELECT COUNT(*) FROM file_operations").fetchone()[0] == 1


def test_undo_puts_the_file_and_its_row_back(project, conn, rejected):
    staged = project.folder("delete_staging") / rejected[1].name
    restore(project, conn, [staged])
    assert undo_last(project, conn, 1) == ["restore 1 file(s) from delete_staging"]
    assert staged.is_file() and not rejected[1].exists()
    assert decision_file(conn, rejected[1])[1] == str(staged)
    # The reviewer's Ctrl+Z undoes only finalizes; the restore is gone, so it reaches it.
    session = ReviewSession(project, conn, FakeAI())
    assert session.handle("Ctrl+Z").message.startswith("Finalize undone")
    assert rejected[1].is_file()


def test_the_reviewer_does_not_undo_a_restore(project, conn, rejected):
    restore(project, conn, [project.folder("delete_staging") / rejected[1].name])
    change = ReviewSession(project, conn, FakeAI()).handle("Ctrl+Z")
    assert change.message == (
        "Nothing was undone: the last file operation is 'restore 1 file(s) from delete_staging'."
    )


def test_a_link_in_delete_staging_is_never_followed(project, conn, rejected, tmp_path):
    target = tmp_path / "outside.png"
    target.write_bytes(b"not ours")
    link = project.folder("delete_staging") / "link.png"
    link.symlink_to(target)
    assert "link.png" not in {f.path.name for f in staged_for_deletion(project, conn)}
    with pytest.raises(InvalidInput, match="not a file in delete_staging"):
        restore(project, conn, [link])
    assert target.read_bytes() == b"not ours" and link.is_symlink()
