"""Journaled file moves: intent -> move -> done, crash recovery, undo. Never deletes user files.

An *operation* is one undoable user action (finalizing a batch, cropping an image) made of
ordered moves. The caller plans the moves inside the same database transaction as the rows
they belong to, so the database and the journal always agree; the moves are then carried
out one by one. After a crash, `recover` rolls every unfinished move forward from what is
on disk, so a kill at any instant loses and duplicates nothing.

A move never overwrites: same-device moves hard-link the destination (which fails if the
name is taken) and then unlink the source; cross-device moves copy to a temporary name,
fsync, verify, link into place, then remove the source.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.db import transaction
from workbench.core.errors import FileOperationError, UnsafePath
from workbench.core.timeutil import iso_utc

SIDECAR_SUFFIX = ".decision"
PARTIAL_SUFFIX = ".wbpart"
# Images are grouped on their own, so they never ride along as another image's companion.
_IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic"}
)

# Test hook: called with (step, move_id) at every journal step; crash tests kill here.
StepHook = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class Move:
    """One journaled move of an operation."""

    id: int
    operation_id: int
    seq: int
    src: Path
    dst: Path
    state: str


@dataclass
class RecoveryReport:
    """What `recover` did on start-up."""

    rolled_forward: int = 0
    already_done: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


def _now() -> str:
    return iso_utc()


def same_content(a: Path, b: Path) -> bool:
    """True when two files hold the same bytes (same inode counts)."""
    try:
        if os.path.samefile(a, b):
            return True
        if a.stat().st_size != b.stat().st_size:
            return False
    except OSError:
        return False
    return _sha256(a) == _sha256(b)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can fsync a folder
    finally:
        os.close(fd)


def _place_without_overwrite(src: Path, dst: Path) -> None:
    """Give `src` the name `dst` atomically, failing if `dst` exists; `src` remains too."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # No hard links here (FAT, some network shares): copy to the name exclusively.
        _copy_verified(src, dst)


def _copy_verified(src: Path, dst: Path) -> None:
    """Copy to a temporary name beside `dst`, fsync, verify, then link it into place."""
    part = dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")
    part.unlink(missing_ok=True)  # a partial copy of our own from an earlier crash
    with open(src, "rb") as fin, open(part, "xb") as fout:
        for chunk in iter(lambda: fin.read(1 << 20), b""):
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    if not same_content(src, part):
        part.unlink(missing_ok=True)
        raise FileOperationError(f"Copy of {src} to {dst.parent} did not verify; nothing moved.")
    try:
        os.link(part, dst)
        part.unlink()
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            part.unlink(missing_ok=True)
            raise
        if dst.exists():
            part.unlink(missing_ok=True)
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
        os.rename(part, dst)
    _fsync_dir(dst.parent)


class FileJournal:
    """Plans and carries out journaled moves on one database connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        allowed: Callable[[Path], bool] | None = None,
        *,
        step_hook: StepHook | None = None,
    ) -> None:
        self.conn = conn
        self.allowed = allowed
        self.step_hook = step_hook
        self._listing: dict[Path, dict[str, list[str]]] = {}
        self._reserved: set[Path] = set()

    # -- planning (inside the caller's transaction) -------------------------------------

    def open_operation(self, label: str, payload: dict[str, Any] | None = None) -> int:
        """A new operation id; call inside the transaction that holds the rows it moves."""
        self._reserved.clear()
        self._listing.clear()
        cur = self.conn.execute(
            "INSERT INTO file_operations(label, created_at, state, payload) VALUES (?, ?, 'open', ?)",
            (label, _now(), json.dumps(payload) if payload is not None else None),
        )
        return int(cur.lastrowid or 0)

    def plan_move(
        self,
        operation_id: int,
        src: Path,
        dst_dir: Path,
        *,
        companions: bool = True,
        reserve_suffixes: Iterable[str] = (),
    ) -> Path:
        """Record the intent to move `src` (and its companions) into `dst_dir`; returns its new path.

        The new name is `src`'s name, or `stem__N` when that is taken, so nothing is
        overwritten; companions keep sharing the image's stem.
        """
        src = Path(src).absolute()
        dst_dir = Path(dst_dir).absolute()
        self._check(src)
        self._check(dst_dir)
        if not src.is_file():
            raise FileOperationError(f"{src} is missing; it cannot be moved.")
        group = [src] + (self.companions_of(src) if companions else [])
        reserved = list(reserve_suffixes)
        stem = self._free_stem(src.stem, [p.suffix for p in group] + reserved, dst_dir)
        for suffix in reserved:
            self._reserved.add(dst_dir / f"{stem}{suffix}")
        seq = self._next_seq(operation_id)
        main_dst = dst_dir / f"{stem}{src.suffix}"
        for offset, path in enumerate(group):
            dst = dst_dir / f"{stem}{path.suffix}"
            self._reserved.add(dst)
            self.conn.execute(
                "INSERT INTO file_moves(operation_id, seq, src, dst, size_bytes, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'intent', ?)",
                (operation_id, seq + offset, str(path), str(dst), path.stat().st_size, _now()),
            )
        return main_dst

    def plan_return(self, operation_id: int, src: Path, dst: Path) -> Path:
        """Record the intent to move `src` back to exactly `dst`, or beside it when taken."""
        src, dst = Path(src).absolute(), Path(dst).absolute()
        self._check(src)
        self._check(dst)
        stem = self._free_stem(dst.stem, [dst.suffix], dst.parent)
        target = dst.parent / f"{stem}{dst.suffix}"
        self._reserved.add(target)
        self.conn.execute(
            "INSERT INTO file_moves(operation_id, seq, src, dst, size_bytes, state, updated_at)"
            " VALUES (?, ?, ?, ?, NULL, 'intent', ?)",
            (operation_id, self._next_seq(operation_id), str(src), str(target), _now()),
        )
        return target

    def companions_of(self, image: Path) -> list[Path]:
        """Files beside `image` sharing its stem: not images, not sidecars."""
        folder = image.parent
        listing = self._listing.get(folder)
        if listing is None:
            listing = {}
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.is_file():
                        listing.setdefault(Path(entry.name).stem, []).append(entry.name)
            self._listing[folder] = listing
        found = []
        for name in sorted(listing.get(image.stem, [])):
            suffix = Path(name).suffix.lower()
            if name == image.name or suffix == SIDECAR_SUFFIX or suffix in _IMAGE_SUFFIXES:
                continue
            if name.endswith(PARTIAL_SUFFIX):
                continue
            found.append(folder / name)
        return found

    def _free_stem(self, stem: str, suffixes: Iterable[str], dst_dir: Path) -> str:
        suffixes = list(suffixes)
        candidate, n = stem, 1
        while any(
            (dst_dir / f"{candidate}{s}").exists()
            or (dst_dir / f"{candidate}{s}") in self._reserved
            or self._pending_dst(dst_dir / f"{candidate}{s}")
            for s in suffixes
        ):
            n += 1
            candidate = f"{stem}__{n}"
        return candidate

    def _pending_dst(self, path: Path) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM file_moves WHERE dst = ? AND state IN ('intent', 'moved') LIMIT 1",
            (str(path),),
        ).fetchone()
        return row is not None

    def _next_seq(self, operation_id: int) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM file_moves WHERE operation_id = ?",
            (operation_id,),
        ).fetchone()
        return int(row[0])

    def _check(self, path: Path) -> None:
        if self.allowed is not None and not self.allowed(path):
            raise UnsafePath(f"{path} is outside the project and its source folder; not moved.")

    # -- carrying out --------------------------------------------------------------------

    def moves(self, operation_id: int, *, pending_only: bool = False) -> list[Move]:
        sql = "SELECT id, operation_id, seq, src, dst, state FROM file_moves WHERE operation_id = ?"
        if pending_only:
            sql += " AND state IN ('intent', 'moved')"
        rows = self.conn.execute(sql + " ORDER BY seq", (operation_id,)).fetchall()
        return [Move(r[0], r[1], r[2], Path(r[3]), Path(r[4]), r[5]) for r in rows]

    def execute(self, operation_id: int) -> int:
        """Carry out the operation's pending moves in order; returns how many were made."""
        made = 0
        for move in self.moves(operation_id, pending_only=True):
            self._carry_out(move)
            made += 1
        self.conn.execute(
            "UPDATE file_operations SET state = 'done' WHERE id = ? AND state = 'open'",
            (operation_id,),
        )
        return made

    def _step(self, name: str, move_id: int) -> None:
        if self.step_hook is not None:
            self.step_hook(name, move_id)

    def _set_state(self, move_id: int, state: str) -> None:
        self.conn.execute(
            "UPDATE file_moves SET state = ?, updated_at = ? WHERE id = ?", (state, _now(), move_id)
        )

    def _carry_out(self, move: Move) -> None:
        """Bring one move to 'done' from whatever state the disk is in."""
        src, dst = move.src, move.dst
        self._step("before_move", move.id)
        src_exists, dst_exists = src.exists(), dst.exists()
        if src_exists and not dst_exists:
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                _place_without_overwrite(src, dst)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    _copy_verified(src, dst)
                elif isinstance(exc, FileExistsError):
                    raise FileOperationError(
                        f"{dst} appeared while moving {src.name}; nothing was overwritten."
                    ) from exc
                else:
                    raise FileOperationError(
                        f"Cannot move {src} to {dst.parent}: {exc.strerror or exc}."
                    ) from exc
            self._step("placed", move.id)
            self._set_state(move.id, "moved")
            self._step("marked_moved", move.id)
            src_exists = dst_exists = True
        if src_exists and dst_exists:
            if not same_content(src, dst):
                raise FileOperationError(
                    f"Both {src} and {dst} exist with different content; left both in place. "
                    "Run `workbench doctor` to review."
                )
            src.unlink()
            _fsync_dir(src.parent)
            self._step("unlinked", move.id)
        elif not dst_exists:
            raise FileOperationError(
                f"{src.name} is neither at {src.parent} nor at {dst.parent}; "
                "it was moved or removed outside Workbench."
            )
        self._set_state(move.id, "done")
        self._step("marked_done", move.id)

    # -- recovery and undo ---------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """Roll every unfinished move forward from what is on disk; report what could not be."""
        report = RecoveryReport()
        open_ops = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM file_operations WHERE state = 'open' ORDER BY id"
            ).fetchall()
        ]
        for op in open_ops:
            failed = False
            for move in self.moves(op, pending_only=True):
                try:
                    self._carry_out(move)
                    report.rolled_forward += 1
                except (FileOperationError, OSError) as exc:
                    failed = True
                    report.problems.append(getattr(exc, "message", str(exc)))
            if not failed:
                self.conn.execute("UPDATE file_operations SET state = 'done' WHERE id = ?", (op,))
        return report

    def unfinished(self) -> list[Move]:
        rows = self.conn.execute(
            "SELECT id, operation_id, seq, src, dst, state FROM file_moves "
            "WHERE state IN ('intent', 'moved') ORDER BY operation_id, seq"
        ).fetchall()
        return [Move(r[0], r[1], r[2], Path(r[3]), Path(r[4]), r[5]) for r in rows]

    def undoable(self, limit: int = 50) -> list[tuple[int, str]]:
        """(operation id, label) of finished operations that can be undone, newest first."""
        rows = self.conn.execute(
            "SELECT id, label FROM file_operations WHERE state = 'done' AND undo_of IS NULL "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def payload(self, operation_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT payload FROM file_operations WHERE id = ?", (operation_id,)
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def undo(
        self,
        count: int = 1,
        *,
        revert_rows: Callable[[sqlite3.Connection, int, dict[str, Path]], None] | None = None,
    ) -> list[int]:
        """Undo the last `count` operations, newest first; returns their ids.

        Each undo is itself journaled: in one transaction the operation is marked undone,
        the reverse moves are planned and `revert_rows(conn, op_id, {moved_to: back_to})`
        reverts the caller's rows; then the files move back.
        """
        undone: list[int] = []
        for op_id, label in self.undoable(limit=count):
            missing = [m.dst for m in self.moves(op_id) if not m.dst.exists()]
            if missing:
                raise FileOperationError(
                    f"Cannot undo '{label}': {len(missing)} file(s) are no longer where it put "
                    f"them (first: {missing[0]}). Nothing was changed."
                )
            with transaction(self.conn):
                reverse = self.open_operation(f"undo: {label}")
                self.conn.execute(
                    "UPDATE file_operations SET undo_of = ? WHERE id = ?", (op_id, reverse)
                )
                back: dict[str, Path] = {}
                for move in reversed(self.moves(op_id)):
                    back[str(move.dst)] = self.plan_return(reverse, move.dst, move.src)
                self.conn.execute(
                    "UPDATE file_operations SET state = 'undone', undone_at = ? WHERE id = ?",
                    (_now(), op_id),
                )
                if revert_rows is not None:
                    revert_rows(self.conn, op_id, back)
            self.execute(reverse)
            undone.append(op_id)
        return undone
