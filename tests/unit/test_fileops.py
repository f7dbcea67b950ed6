"""Journaled moves: companions, collisions, path rules, cross-device copies, undo, recovery."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.core import db, safe_io
from workbench.core.errors import FileOperationError, UnsafePath
from workbench.core.fileops import FileJournal, Move, partial_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("src", "dst", "other"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def conn(root: Path) -> sqlite3.Connection:
    c = db.connect(root / "journal.db", create=True)
    yield c
    c.close()


def inside(root: Path) -> Callable[[Path], bool]:
    roots = [(root / name).resolve() for name in ("src", "dst")]  # as a project and its source
    return lambda p: any(Path(p).resolve().is_relative_to(r) for r in roots)


def journal(conn: sqlite3.Connection, root: Path, **kw) -> FileJournal:
    return FileJournal(conn, inside(root), removable=lambda p: p.suffix == ".decision", **kw)


def put(path: Path, text: str | None = None) -> Path:
    path.write_bytes((text if text is not None else f"bytes of {path.name}").encode())
    return path


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def plan(j: FileJournal, src: Path, dst_dir: Path, **kw) -> tuple[int, Path]:
    with db.transaction(j.conn):
        op = j.open_operation("test move")
        new = j.plan_move(op, src, dst_dir, **kw)
    return op, new


def op_state(conn: sqlite3.Connection, op: int) -> str:
    return conn.execute("SELECT state FROM file_operations WHERE id = ?", (op,)).fetchone()[0]


# -- moves and companions ----------------------------------------------------------------


def test_move_takes_companions_but_not_images_sidecars_or_other_stems(root, conn):
    src, dst = root / "src", root / "dst"
    names = ("a.png", "a.txt", "a.json", "a.XMP", "a.CR2", "a.jpg", "a.decision", "b.txt", "ab.txt")
    for name in names:
        put(src / name)
    before = tree(src)
    op, new = plan(journal(conn, root), src / "a.png", dst)
    assert new == dst / "a.png"
    assert journal(conn, root).execute(op) == 5
    # a RAW file we cannot decode travels with its image; a decodable image never does
    assert sorted(os.listdir(dst)) == ["a.CR2", "a.XMP", "a.json", "a.png", "a.txt"]
    assert sorted(os.listdir(src)) == ["a.decision", "a.jpg", "ab.txt", "b.txt"]
    assert all(before[name] == data for name, data in tree(dst).items())
    assert op_state(conn, op) == "done"
    assert {m.state for m in journal(conn, root).moves(op)} == {"done"}


def test_companion_shared_by_two_images_moves_once(root, conn):
    src, dst = root / "src", root / "dst"
    for name in ("a.png", "a.jpg", "a.txt"):
        put(src / name)
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("two images, one stem")
        j.plan_move(op, src / "a.png", dst)
        second = j.plan_move(op, src / "a.jpg", dst)
    assert second == dst / "a.jpg"
    j.execute(op)
    assert sorted(os.listdir(dst)) == ["a.jpg", "a.png", "a.txt"]
    assert os.listdir(src) == []


def test_keep_out_files_never_ride_along(root, conn):
    src, dst = root / "src", root / "dst"
    put(src / "a.png"), put(src / "a.raw9"), put(src / "a.txt")
    j = journal(conn, root, keep_out=lambda p: p.name == "a.raw9")
    op, _ = plan(j, src / "a.png", dst)
    j.execute(op)
    assert sorted(os.listdir(src)) == ["a.raw9"]


def test_symbolic_links_are_refused_or_left_in_place(root, conn):
    src, dst = root / "src", root / "dst"
    put(src / "a.png")
    outside = put(root / "other" / "secret.txt")
    (src / "a.txt").symlink_to(outside)
    (src / "b.png").symlink_to(src / "a.png")
    j = journal(conn, root)
    with pytest.raises(FileOperationError, match="is a link"):
        plan(j, src / "b.png", dst)
    op, _ = plan(j, src / "a.png", dst)
    j.execute(op)
    assert os.listdir(dst) == ["a.png"]
    assert (src / "a.txt").is_symlink() and outside.read_text() == "bytes of secret.txt"


# -- collisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taken", "reserve"),
    [("a.png", ()), ("a.txt", ()), ("a.decision", (".decision",))],
    ids=["the image's name", "a companion's name", "the name reserved for its sidecar"],
)
def test_collision_gives_the_whole_group_a_new_stem_and_overwrites_nothing(
    root, conn, taken, reserve
):
    src, dst = root / "src", root / "dst"
    put(src / "a.png"), put(src / "a.txt")
    put(dst / taken, "already here")
    put(dst / "a__2.png", "also already here")
    op, new = plan(journal(conn, root), src / "a.png", dst, reserve_suffixes=reserve)
    assert new == dst / "a__3.png"
    journal(conn, root).execute(op)
    assert (dst / taken).read_text() == "already here"
    assert (dst / "a__2.png").read_text() == "also already here"
    assert (dst / "a__3.png").read_text() == "bytes of a.png"
    assert (dst / "a__3.txt").read_text() == "bytes of a.txt"
    assert not (dst / "a__3.decision").exists()  # reserved, not written by a move


def test_names_planned_in_the_same_operation_or_pending_elsewhere_are_taken(root, conn):
    src, other = root / "src", root / "src" / "sub"
    other.mkdir()
    put(src / "a.png", "first"), put(other / "a.png", "second"), put(src / "c.png", "third")
    dst = root / "dst"
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("same names")
        assert j.plan_move(op, src / "a.png", dst) == dst / "a.png"
        assert j.plan_move(op, other / "a.png", dst) == dst / "a__2.png"
    # An unfinished operation's destination counts as taken for the next plan.
    put(src / "sub" / "c.png", "fourth")
    with db.transaction(conn):
        op2 = j.open_operation("later")
        assert j.plan_move(op2, src / "sub" / "c.png", dst) == dst / "c.png"
    with db.transaction(conn):
        op3 = j.open_operation("even later")
        assert j.plan_move(op3, src / "c.png", dst) == dst / "c__2.png"
    for o in (op, op2, op3):
        j.execute(o)
    want = {"a.png": b"first", "a__2.png": b"second", "c.png": b"fourth", "c__2.png": b"third"}
    assert tree(dst) == want


def test_a_file_that_appears_at_the_destination_is_never_overwritten(root, conn):
    src, dst = root / "src", root / "dst"
    put(src / "a.png")
    j = journal(conn, root)
    op, new = plan(j, src / "a.png", dst)
    put(new, "a newcomer")
    with pytest.raises(FileOperationError, match="different content"):
        j.execute(op)
    assert new.read_text() == "a newcomer"
    assert (src / "a.png").read_text() == "bytes of a.png"
    assert op_state(conn, op) == "open"


# -- path rules ----------------------------------------------------------------------------


def test_paths_outside_the_allowed_roots_are_refused(root, conn):
    put(root / "other" / "x.png"), put(root / "src" / "y.png")
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("unsafe")
        with pytest.raises(UnsafePath):
            j.plan_move(op, root / "other" / "x.png", root / "dst")
        with pytest.raises(UnsafePath):
            j.plan_move(op, root / "src" / "y.png", root / "other")
        with pytest.raises(UnsafePath):
            j.plan_move(op, root / "src" / ".." / "other" / "x.png", root / "dst")
        with pytest.raises(UnsafePath):
            j.plan_write(op, root / "other" / "z.decision", b"{}")
    assert (root / "other" / "x.png").exists() and (root / "src" / "y.png").exists()


def test_only_removable_files_may_be_removed(root, conn):
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("remove")
        with pytest.raises(UnsafePath, match="never removed"):
            j.plan_remove(op, root / "src" / "photo.png", b"x")


# -- cross-device moves ----------------------------------------------------------------


def _no_links(monkeypatch) -> None:
    def link(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", link)


def test_cross_device_move_copies_fsyncs_verifies_then_removes(root, conn, monkeypatch):
    src, dst = root / "src", root / "dst"
    put(src / "a.png"), put(src / "a.txt")
    os.utime(src / "a.png", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    _no_links(monkeypatch)
    op, new = plan(journal(conn, root), src / "a.png", dst)
    journal(conn, root).execute(op)
    assert tree(dst) == {"a.png": b"bytes of a.png", "a.txt": b"bytes of a.txt"}
    assert os.listdir(src) == []
    assert new.stat().st_mtime_ns == 1_600_000_000_000_000_000  # time stamps kept
    assert len(synced) >= 2  # each copy was fsynced before its source went
    assert not list(dst.glob("*.wbpart")) and not list(dst.glob(".*"))


def test_cross_device_copy_that_does_not_verify_leaves_the_source(root, conn, monkeypatch):
    src, dst = root / "src", root / "dst"
    put(src / "a.png")
    _no_links(monkeypatch)
    monkeypatch.setattr(safe_io, "same_content", lambda a, b: False)
    j = journal(conn, root)
    op, new = plan(j, src / "a.png", dst)
    with pytest.raises(FileOperationError, match="did not verify"):
        j.execute(op)
    assert (src / "a.png").read_text() == "bytes of a.png"
    assert os.listdir(dst) == []  # neither the copy nor its partial remains
    assert op_state(conn, op) == "open"
    monkeypatch.undo()
    assert j.recover().clean
    assert new.read_text() == "bytes of a.png" and not (src / "a.png").exists()


def test_a_copy_that_runs_out_of_space_gives_the_space_back(root, conn, monkeypatch):
    src, dst = root / "src", root / "dst"
    put(src / "a.png")
    _no_links(monkeypatch)

    def full(fin, fout, length=0):
        fout.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_io.shutil, "copyfileobj", full)
    with pytest.raises(FileOperationError, match="No space left"):
        journal(conn, root).execute(plan(journal(conn, root), src / "a.png", dst)[0])
    assert os.listdir(dst) == [] and (src / "a.png").read_text() == "bytes of a.png"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_source_folder_is_refused_before_anything_is_planned(root, conn):
    put(root / "src" / "a.png")
    (root / "src").chmod(0o555)
    try:
        with pytest.raises(FileOperationError, match="read-only"):
            plan(journal(conn, root), root / "src" / "a.png", root / "dst")
    finally:
        (root / "src").chmod(0o755)
    assert conn.execute("SELECT COUNT(*) FROM file_moves").fetchone()[0] == 0


# -- undo --------------------------------------------------------------------------------


def test_undo_of_the_last_operations_restores_files_exactly(root, conn):
    src, dst = root / "src", root / "dst"
    for name in ("a.png", "a.txt", "b.png", "c.png", "c.txt"):
        put(src / name)
    (src / "deep").mkdir()
    put(src / "deep" / "d.png")
    before = tree(src)
    j = journal(conn, root)
    ops = [plan(j, src / "a.png", dst)[0]]
    with db.transaction(conn):
        ops.append(j.open_operation("two"))
        j.plan_move(ops[1], src / "b.png", dst)
        j.plan_move(ops[1], src / "deep" / "d.png", dst)
        w = j.plan_write(ops[1], dst / "b.decision", b'{"ours": true}')
    ops.append(plan(j, src / "c.png", root / "dst" / "inner")[0])
    for op in ops:
        j.execute(op)
    assert w.exists()
    assert [op for op, _ in j.undoable()] == ops[::-1]
    assert j.undo(2) == [ops[2], ops[1]]
    assert sorted(tree(dst)) == ["a.png", "a.txt"]
    assert j.undo(1) == [ops[0]]
    assert tree(src) == before and tree(dst) == {}
    assert [op_state(conn, op) for op in ops] == ["undone"] * 3
    assert j.undoable() == []  # an undo is not itself undone by the next Ctrl+Z


def test_undo_returns_beside_a_newcomer_keeping_companions_together(root, conn):
    src, dst = root / "src", root / "dst"
    put(src / "a.png"), put(src / "a.txt")
    j = journal(conn, root)
    op, _ = plan(j, src / "a.png", dst)
    j.execute(op)
    put(src / "a.png", "a newcomer")
    back: dict[str, Path] = {}
    j.undo(1, revert_rows=lambda c, op_id, b: back.update(b))
    assert tree(src) == {
        "a.png": b"a newcomer",
        "a__2.png": b"bytes of a.png",
        "a__2.txt": b"bytes of a.txt",
    }
    assert back[str(dst / "a.png")] == src / "a__2.png"


def test_undo_is_refused_with_a_sentence_when_a_file_was_moved_away(root, conn):
    src, dst = root / "src", root / "dst"
    put(src / "a.png"), put(src / "b.png")
    j = journal(conn, root)
    op1, _ = plan(j, src / "a.png", dst)
    op2, _ = plan(j, src / "b.png", dst)
    j.execute(op1), j.execute(op2)
    os.rename(dst / "a.png", root / "other" / "a.png")

    def snapshot() -> tuple[object, ...]:
        journal_rows = [
            tuple(r)
            for t in ("file_operations", "file_moves")
            for r in conn.execute(f"SELECT * FROM {t}")
        ]
        return tree(src), tree(dst), tree(root / "other"), journal_rows

    before = snapshot()
    with pytest.raises(FileOperationError) as info:
        j.undo(2)
    assert "Cannot undo" in info.value.message and "nothing was changed" in info.value.message
    assert str(dst / "a.png") in info.value.message
    assert snapshot() == before
    assert j.undo(1) == [op2]  # the newer operation alone still undoes


def test_undo_waits_for_an_unfinished_operation(root, conn):
    put(root / "src" / "a.png")
    j = journal(conn, root)
    op, _ = plan(j, root / "src" / "a.png", root / "dst")
    with pytest.raises(FileOperationError, match="unfinished"):
        j.undo(1)
    assert op_state(conn, op) == "open"


def test_undo_removes_our_write_only_while_it_holds_our_bytes(root, conn):
    dst = root / "dst"
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("writes")
        j.plan_write(op, dst / "x.decision", b"ours")
        j.plan_write(op, dst / "y.decision", b"ours too")
    j.execute(op)
    (dst / "y.decision").write_bytes(b"edited by someone")
    j.undo(1)
    assert tree(dst) == {"y.decision": b"edited by someone"}


def test_a_write_never_replaces_a_file(root, conn):
    put(root / "dst" / "x.decision", "theirs")
    j = journal(conn, root)
    with db.transaction(conn), pytest.raises(FileOperationError, match="not overwritten"):
        j.plan_write(j.open_operation("w"), root / "dst" / "x.decision", b"ours")


# -- recovery from every journal state --------------------------------------------------


def _planned(conn, root, name: str = "a.png") -> tuple[FileJournal, int, Move]:
    put(root / "src" / name)
    j = journal(conn, root)
    op, _ = plan(j, root / "src" / name, root / "dst", companions=False)
    (move,) = j.moves(op)
    return j, op, move


def _set(conn, move: Move, state: str) -> None:
    conn.execute("UPDATE file_moves SET state = ? WHERE id = ?", (state, move.id))


@pytest.mark.parametrize(
    ("state", "disk"),
    [
        ("intent", "src"),  # killed before the link
        ("intent", "both"),  # linked, not yet marked
        ("moved", "both"),  # marked moved, source not yet removed
        ("intent", "copy"),  # cross-device: a full copy at dst, source still there
        ("moved", "dst"),  # source removed, not yet marked done
        ("intent", "dst"),  # (a lost state update) only the destination
        ("intent", "partial"),  # killed mid-copy: a partial beside the destination
    ],
)
def test_recovery_rolls_every_state_forward(root, conn, state, disk):
    j, op, move = _planned(conn, root)
    assert move.src is not None and move.dst is not None
    if disk in ("both", "dst"):
        os.link(move.src, move.dst)
    if disk == "copy":
        move.dst.write_bytes(move.src.read_bytes())
    if disk == "partial":
        partial_path(move.dst).write_bytes(b"bytes of")
    if disk == "dst":
        move.src.unlink()
    _set(conn, move, state)
    report = FileJournal(conn, inside(root)).recover()
    assert report.clean and report.rolled_forward == 1
    assert not move.src.exists() and move.dst.read_text() == "bytes of a.png"
    assert os.listdir(root / "dst") == ["a.png"]
    assert op_state(conn, op) == "done" and j.unfinished() == []


def test_recovery_reports_a_file_gone_from_both_places_and_keeps_the_entry(root, conn):
    j, op, move = _planned(conn, root)
    assert move.src is not None
    move.src.unlink()
    report = FileJournal(conn, inside(root)).recover()
    assert not report.clean and "neither" in report.problems[0]
    assert op_state(conn, op) == "open" and len(j.unfinished()) == 1


def test_recovery_never_overwrites_a_different_file_at_the_destination(root, conn):
    j, op, move = _planned(conn, root)
    assert move.src is not None and move.dst is not None
    put(move.dst, "someone else's")
    report = FileJournal(conn, inside(root)).recover()
    assert "different content" in report.problems[0]
    assert move.dst.read_text() == "someone else's" and move.src.exists()
    move.dst.rename(root / "dst" / "aside.png")  # the user follows the advice
    assert FileJournal(conn, inside(root)).recover().clean
    assert move.dst.read_text() == "bytes of a.png"


def test_recovery_refuses_journal_paths_outside_the_allowed_roots(root, conn):
    j, op, move = _planned(conn, root)
    conn.execute(
        "UPDATE file_moves SET dst = ? WHERE id = ?", (str(root / "other" / "a.png"), move.id)
    )
    report = FileJournal(conn, inside(root)).recover()
    assert not report.clean and not (root / "other" / "a.png").exists()


@pytest.mark.parametrize("disk", ["missing", "partial", "written", "different"])
def test_recovery_of_a_journaled_write(root, conn, disk):
    target = root / "dst" / "a.decision"
    j = journal(conn, root)
    with db.transaction(conn):
        op = j.open_operation("write")
        j.plan_write(op, target, b'{"group_id": "g"}')
    if disk == "partial":
        partial_path(target).write_bytes(b'{"gro')
    if disk == "written":
        target.write_bytes(b'{"group_id": "g"}')
    if disk == "different":
        target.write_bytes(b"not ours")
    report = FileJournal(conn, inside(root)).recover()
    if disk == "different":
        assert "not overwritten" in report.problems[0] and target.read_bytes() == b"not ours"
        return
    assert report.clean and target.read_bytes() == b'{"group_id": "g"}'
    assert os.listdir(root / "dst") == ["a.decision"]


@pytest.mark.parametrize("disk", ["ours", "gone", "changed"])
def test_recovery_of_a_journaled_remove(root, conn, disk):
    target = put(root / "dst" / "a.decision", "ours")
    j = journal(conn, root)
    with db.transaction(conn):
        j.plan_remove(j.open_operation("remove"), target, b"ours")
    if disk == "gone":
        target.unlink()
    if disk == "changed":
        target.write_text("edited")
    assert FileJournal(conn, inside(root)).recover().clean
    assert (target.read_text() == "edited") if disk == "changed" else not target.exists()


def test_recovery_never_unlinks_a_file_the_journal_names_twice(root, conn):
    j, op, move = _planned(conn, root)
    conn.execute("UPDATE file_moves SET dst = src WHERE id = ?", (move.id,))
    report = FileJournal(conn, inside(root)).recover()
    assert not report.clean and "one file" in report.problems[0]
    assert (root / "src" / "a.png").read_text() == "bytes of a.png"
