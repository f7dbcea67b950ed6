"""SQLite connections for a project database: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from workbench.core.errors import SchemaTooNew, WorkbenchError

BUSY_TIMEOUT_MS = 10_000


def _schema_v1(conn: sqlite3.Connection) -> None:
    sql = resources.files("workbench.core").joinpath("schema.sql").read_text(encoding="utf-8")
    for statement in split_statements(sql):
        conn.execute(statement)


def split_statements(sql: str) -> list[str]:
    """Complete SQL statements of a script, so they can run inside one transaction.

    (executescript would COMMIT the migration's transaction first.)
    """
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError("schema script ends inside a statement")
    return statements


# Forward migrations: MIGRATIONS[i] takes a database from user_version i to i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path | str, *, migrate: bool = True, create: bool = False) -> sqlite3.Connection:
    """A connection for the calling thread, with the schema brought up to date.

    Connections are not shared across threads; each worker opens its own. Only `create`
    may make a new database: a missing or empty one is an error, never silently replaced,
    since that would hide the loss of every decision.
    """
    path = Path(path)
    if not create:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise WorkbenchError(
                f"The project database {path} is missing. Restore it from a backup; "
                "Workbench will not start an empty one over a project that had decisions.",
                code="database_missing",
            ) from None
        if size == 0:
            raise WorkbenchError(
                f"The project database {path} is empty (0 bytes). Restore it from a backup.",
                code="database_missing",
            )
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise WorkbenchError(
            f"Cannot open the project database {path}: {exc}. Check that its folder exists "
            "and is writable.",
            code="database_unavailable",
        ) from exc
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise database_error(exc, path) from exc
    if mode.lower() != "wal":
        conn.close()
        raise WorkbenchError(f"Cannot switch {path} to WAL mode (got {mode!r}).")
    conn.execute("PRAGMA synchronous = NORMAL")
    if migrate:
        try:
            migrate_schema(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_schema(conn: sqlite3.Connection) -> int:
    """Apply pending forward migrations, each in its own transaction; returns the version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"This project database has schema version {current}, newer than this "
            f"Workbench understands ({SCHEMA_VERSION}). Update Workbench to open it."
        )
    while current < SCHEMA_VERSION:
        try:
            with transaction(conn):
                MIGRATIONS[current](conn)
                current += 1
                conn.execute(f"PRAGMA user_version = {current}")
        except sqlite3.Error as exc:
            raise WorkbenchError(
                f"Cannot bring the project database to schema version {current + 1} ({exc}); "
                "it was left as it was. Restore it from a backup or report the problem.",
                code="migration_failed",
            ) from exc
    return current


def database_error(exc: sqlite3.Error, path: Path | str | None = None) -> WorkbenchError:
    """A sentence for an SQLite failure: disk full, read-only, damaged file, or busy."""
    text = str(exc).lower()
    where = f" ({path})" if path else ""
    if "disk is full" in text or "disk full" in text:
        return WorkbenchError(
            f"The disk holding the project database{where} is full. Free some space and try "
            "again; what was committed before is kept.",
            code="disk_full",
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return WorkbenchError(
            f"The project database{where} cannot be written: check the folder's permissions.",
            code="database_read_only",
        )
    if "locked" in text or "busy" in text:
        return WorkbenchError(
            f"The project database{where} stayed busy for {BUSY_TIMEOUT_MS // 1000} s; another "
            "program is holding it. Try again.",
            code="database_busy",
        )
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return WorkbenchError(
            f"The project database{where} is damaged ({exc}). Restore it from a backup; "
            "`workbench doctor` shows what the files still say.",
            code="database_damaged",
        )
    return WorkbenchError(f"The project database{where} failed: {exc}.", code="database_error")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def get_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
