"""The project database: seed 002's ai_decisions table, its checks, indexes and views."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.core import db
from workbench.core.crops import CropBox
from workbench.core.db import transaction
from workbench.core.decisions import COLUMNS, Decision, insert_decision
from workbench.core.errors import SchemaTooNew, WorkbenchError

# Seed 002's table, column by column: (name, declared type, NOT NULL, primary key).
SEED_COLUMNS = [
    ("group_id", "TEXT", 0, 1),
    ("timestamp", "TEXT", 1, 0),
    ("project_id", "TEXT", 1, 0),
    ("directory", "TEXT", 0, 0),
    ("batch_number", "INTEGER", 0, 0),
    ("images", "TEXT", 1, 0),
    ("ai_selected_index", "INTEGER", 0, 0),
    ("ai_crop_coords", "TEXT", 0, 0),
    ("ai_confidence", "REAL", 0, 0),
    ("user_selected_index", "INTEGER", 1, 0),
    ("user_action", "TEXT", 1, 0),
    ("ai_crop_accepted", "BOOLEAN", 0, 0),
    ("final_crop_coords", "TEXT", 0, 0),
    ("crop_timestamp", "TEXT", 0, 0),
    ("image_width", "INTEGER", 1, 0),
    ("image_height", "INTEGER", 1, 0),
    ("selection_match", "BOOLEAN", 0, 0),
    ("crop_match", "BOOLEAN", 0, 0),
]
SEED_INDEXES = {
    "idx_project_id": "project_id",
    "idx_timestamp": "timestamp",
    "idx_selection_match": "selection_match",
    "idx_crop_match": "crop_match",
    "idx_user_action": "user_action",
    "idx_batch_number": "batch_number",
}


def raw_row(**overrides):
    """A valid ai_decisions row as plain values, for inserts that bypass Decision."""
    row = {
        "group_id": "g",
        "timestamp": "2025-10-21T23:45:30Z",
        "project_id": "p",
        "directory": None,
        "batch_number": 1,
        "images": '["a.png", "b.png", "c.png", "d.png"]',
        "ai_selected_index": 0,
        "ai_crop_coords": None,
        "ai_confidence": 0.5,
        "user_selected_index": 0,
        "user_action": "approve",
        "ai_crop_accepted": None,
        "final_crop_coords": None,
        "crop_timestamp": None,
        "image_width": 100,
        "image_height": 100,
        "selection_match": 1,
        "crop_match": None,
    }
    row.update(overrides)
    return row


def insert_raw(conn, row) -> None:
    cols = ", ".join(row)
    conn.execute(
        f"INSERT INTO ai_decisions ({cols}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )


# -- the table --------------------------------------------------------------------------


def test_ai_decisions_has_the_seed_columns_in_order(conn):
    info = conn.execute("PRAGMA table_info(ai_decisions)").fetchall()
    got = [(r["name"], r["type"], r["notnull"], r["pk"]) for r in info]
    assert got == SEED_COLUMNS
    assert [c[0] for c in SEED_COLUMNS] == list(COLUMNS)


def test_the_six_indexes_exist_on_their_columns(conn):
    names = {r["name"] for r in conn.execute("PRAGMA index_list(ai_decisions)")}
    assert set(SEED_INDEXES) <= names
    for index, column in SEED_INDEXES.items():
        cols = [r["name"] for r in conn.execute(f"PRAGMA index_info({index})")]
        assert cols == [column]


def test_the_three_views_exist(conn):
    views = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert {"ai_performance", "incomplete_crops", "ai_mistakes"} <= views


@pytest.mark.parametrize(
    "overrides",
    [
        {"user_action": "delete"},
        {"user_action": "APPROVE"},
        {"ai_selected_index": -1},
        {"ai_selected_index": 4},
        {"user_selected_index": 4},
        {"user_selected_index": -1},
        {"ai_confidence": 1.5},
        {"ai_confidence": -0.1},
        {"image_width": 0},
        {"image_height": -1},
        {"image_height": 0},
        # NOT NULL columns
        {"timestamp": None},
        {"project_id": None},
        {"images": None},
        {"user_selected_index": None},
        {"user_action": None},
        {"image_width": None},
        {"image_height": None},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_every_check_rejects_a_bad_row(conn, overrides):
    with pytest.raises(sqlite3.IntegrityError):
        insert_raw(conn, raw_row(**overrides))
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"user_action": "approve"},
        {"user_action": "crop"},
        {"user_action": "reject"},
        {"ai_selected_index": 0},
        {"ai_selected_index": 3},
        {"ai_selected_index": None},
        {"user_selected_index": 0},
        {"user_selected_index": 3},
        {"ai_confidence": 0.0},
        {"ai_confidence": 1.0},
        {"ai_confidence": None},
        {"image_width": 1, "image_height": 1},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_checks_accept_the_boundary_values(conn, overrides):
    insert_raw(conn, raw_row(**overrides))
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 1


def test_group_id_is_unique(conn):
    insert_raw(conn, raw_row())
    with pytest.raises(sqlite3.IntegrityError):
        insert_raw(conn, raw_row())


# -- connection settings and migrations ---------------------------------------------------


def test_connection_pragmas(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS > 0


def test_user_version_is_the_schema_version(conn, project):
    assert db.schema_version(conn) == db.SCHEMA_VERSION == len(db.MIGRATIONS)
    assert project.settings.schema_version == db.SCHEMA_VERSION


def test_reopening_keeps_data_and_version(project, conn):
    insert_raw(conn, raw_row())
    again = project.connect()
    try:
        assert db.schema_version(again) == db.SCHEMA_VERSION
        assert again.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 1
    finally:
        again.close()


def test_newer_database_raises_schema_too_new(tmp_path):
    path = tmp_path / "future.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(SchemaTooNew) as info:
        db.connect(path)
    assert "Update Workbench" in info.value.message
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION + 1
    raw.close()


def test_failing_migration_leaves_user_version_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "p.db"
    db.connect(path, create=True).close()  # at the current version

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration failed halfway")

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, broken])
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(db.MIGRATIONS))
    with pytest.raises(RuntimeError):
        db.connect(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS) - 1
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables and "ai_decisions" in tables
    finally:
        raw.close()


def test_failing_first_migration_leaves_an_empty_database(tmp_path, monkeypatch):
    def broken(conn: sqlite3.Connection) -> None:
        db._schema_v1(conn)
        raise RuntimeError("boom")

    monkeypatch.setattr(db, "MIGRATIONS", [broken])
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    path = tmp_path / "fresh.db"
    with pytest.raises(RuntimeError):
        db.connect(path, create=True)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 0
        assert raw.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        raw.close()


def test_not_a_database_is_a_workbench_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkbenchError):
        db.connect(path)


def test_missing_or_empty_database_is_never_recreated(tmp_path):
    path = tmp_path / "gone.db"
    with pytest.raises(WorkbenchError) as info:
        db.connect(path)
    assert info.value.code == "database_missing" and not path.exists()
    path.write_bytes(b"")
    with pytest.raises(WorkbenchError, match="empty"):
        db.connect(path)
    assert path.stat().st_size == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("database or disk is full", "disk_full"),
        ("attempt to write a readonly database", "database_read_only"),
        ("database disk image is malformed", "database_damaged"),
        ("database is locked", "database_busy"),
        ("something else", "database_error"),
    ],
)
def test_sqlite_failures_become_sentences(text, code):
    err = db.database_error(sqlite3.OperationalError(text), "p.db")
    assert err.code == code and err.message.endswith((".", ")"))


def test_split_statements():
    sql = "-- note\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE VIEW v AS\nSELECT 1;\n"
    assert db.split_statements(sql) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE VIEW v AS\nSELECT 1;",
    ]
    with pytest.raises(ValueError):
        db.split_statements("CREATE TABLE a (x")


def test_transaction_rolls_back_on_error(conn):
    with pytest.raises(RuntimeError):
        with transaction(conn):
            insert_raw(conn, raw_row())
            raise RuntimeError("stop")
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0
    assert not conn.in_transaction


def test_foreign_keys_cascade_to_side_tables(conn):
    with transaction(conn):
        insert_decision(conn, _d("g1", "approve", ai=0, user=0))
    conn.execute("DELETE FROM ai_decisions WHERE group_id = 'g1'")
    assert conn.execute("SELECT COUNT(*) FROM decision_extras").fetchone()[0] == 0


# -- the views ----------------------------------------------------------------------------

BOX = CropBox(0.1, 0.1, 0.9, 0.9)


def _d(gid, action, *, ai=None, user=0, ai_crop=None, final=None, project="p", n=4):
    return Decision(
        group_id=gid,
        timestamp="2025-10-21T23:45:30Z",
        project_id=project,
        images=[f"{i}.png" for i in range(n)],
        user_selected_index=user,
        user_action=action,
        image_width=3072,
        image_height=3072,
        ai_selected_index=ai,
        ai_crop=ai_crop,
        final_crop=final,
    )


@pytest.fixture
def populated(conn):
    rows = [
        # AI right on both counts
        _d("r1", "approve", ai=1, user=1, ai_crop=BOX, final=CropBox(0.11, 0.09, 0.91, 0.88)),
        # AI wrong on both counts
        _d("r2", "crop", ai=0, user=2, ai_crop=BOX, final=CropBox(0.3, 0.0, 0.7, 0.6)),
        # reject: selection_match NULL, must not count toward selection accuracy
        _d("r3", "reject", ai=0, user=0, ai_crop=BOX),
        # no AI pick at all: NULL
        _d("r4", "approve", ai=None, user=2),
        # crop still waiting for its final crop
        _d("r5", "crop", ai=3, user=3, ai_crop=BOX),
        # another project's row (views group by project)
        _d("q1", "approve", ai=0, user=1, project="q"),
    ]
    with transaction(conn):
        for d in rows:
            insert_decision(conn, d)
    return conn


def test_ai_performance(populated):
    perf = {r["project_id"]: dict(r) for r in populated.execute("SELECT * FROM ai_performance")}
    p = perf["p"]
    assert p["decisions"] == 5
    assert p["selection_correct"] == 2  # r1, r5
    assert p["selection_accuracy"] == pytest.approx(2 / 3)  # r1, r2, r5 have a flag
    assert p["decisions_with_both_crops"] == 2  # r1, r2
    assert p["crop_correct"] == 1
    assert p["crop_accuracy"] == pytest.approx(0.5)
    q = perf["q"]
    assert (q["decisions"], q["selection_correct"], q["selection_accuracy"]) == (1, 0, 0.0)
    assert q["crop_accuracy"] is None  # no crops: no accuracy rather than 0


def test_ai_performance_with_only_rejects_has_no_accuracy(conn):
    with transaction(conn):
        insert_decision(conn, _d("x", "reject", ai=0, user=0))
    row = conn.execute("SELECT * FROM ai_performance").fetchone()
    assert row["decisions"] == 1 and row["selection_accuracy"] is None


def test_incomplete_crops(populated):
    ids = [r["group_id"] for r in populated.execute("SELECT group_id FROM incomplete_crops")]
    assert ids == ["r5"]


def test_ai_mistakes(populated):
    ids = sorted(r["group_id"] for r in populated.execute("SELECT group_id FROM ai_mistakes"))
    assert ids == ["q1", "r2"]


def test_views_have_every_column_of_the_table(populated):
    for view in ("incomplete_crops", "ai_mistakes"):
        cols = [r["name"] for r in populated.execute(f"PRAGMA table_info({view})")]
        assert cols == list(COLUMNS)


def test_database_file_lives_in_the_project(project):
    assert project.db_path == project.root / "p.db"
    assert Path(project.db_path).is_file()
