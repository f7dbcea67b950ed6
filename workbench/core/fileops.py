"""Journaled file operations: intent -> moved -> done, crash recovery, undo. Never overwrites.

An *operation* (one undoable user action) is planned in the transaction holding its rows,
then carried out entry by entry; `recover` rolls unfinished entries forward from the disk,
so a kill at any instant loses and duplicates nothing. Entries (`file_moves` rows): a *move*
of a user's file (link then unlink, or a verified copy; see safe_io), a *write* (src '') of
an own small file (a sidecar) whose bytes the journal holds, a *remove* (dst '') of one.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core import safe_io
from workbench.core.db import transaction
from workbench.core.errors import FileOperationError, UnsafePath, WorkbenchError
from workbench.core.images import IMAGE_EXTENSIONS
from workbench.core.safe_io import PARTIAL_SUFFIX, durable, partial_path, same_content
from workbench.core.sidecar import SIDECAR_SUFFIX
from workbench.core.timeutil import iso_utc

# Journaled writes and removes carry the file's bytes in the database: small own files only.
MAX_STORED_BYTES = 1 << 20
# Key of the operation payload under which the journal keeps the bytes of writes/removes.
_FILES_KEY = "_journal_files"
_PENDING = "state IN ('intent', 'moved')"
_REPAIR = "run `workbench doctor NAME --repair`"
_ASIDE = f"Move one of them aside, then {_REPAIR}."
# Test hook: called with (step, entry id) at every journal step; crash tests kill here.
StepHook = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class Move:
    """One journal entry: a move (src and dst), a write (dst only) or a remove (src only)."""

    id: int
    operation_id: int
    seq: int
    src: Path | None
    dst: Path | None
    state: str

    @property
    def kind(self) -> str:
        return "write" if self.src is None else "remove" if self.dst is None else "move"

    @property
    def path(self) -> Path:
        """The file the entry is about: the destination, or the file a remove takes away."""
        return self.dst if self.dst is not None else self.src  # type: ignore[return-value]


@dataclass
class RecoveryReport:
    """What `recover` did on start-up."""

    rolled_forward: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


def _opt(value: str | None) -> Path | None:
    return Path(value) if value else None


class FileJournal:
    """Plans and carries out journaled file operations on one database connection.

    `allowed(path)`: may the path be touched at all; `keep_out(path)`: never a companion
    (other groups' images); `removable(path)`: our own files an undo may take away again.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        allowed: Callable[[Path], bool] | None = None,
        *,
        step_hook: StepHook | None = None,
        keep_out: Callable[[Path], bool] | None = None,
        removable: Callable[[Path], bool] | None = None,
    ) -> None:
        self.conn = conn
        self.allowed = allowed
        self.step_hook = step_hook
        self.keep_out = keep_out
        self.removable = removable
        self._listing: dict[Path, dict[str, list[str]]] = {}
        self._reserved: set[str] = set()  # casefolded: safe on case-insensitive disks too
        self._claimed: set[str] = set()
        self._spare: set[str] = set()  # names reserved by plan_move for a write to come
        self._files: dict[int, dict[str, str]] = {}

    # -- planning (inside the caller's transaction) -------------------------------------

    def open_operation(self, label: str, payload: dict[str, Any] | None = None) -> int:
        """A new operation id; call inside the transaction that holds the rows it changes."""
        self._reserved.clear()
        self._spare.clear()
        return self._open(label, payload)

    def _open(self, label: str, payload: dict[str, Any] | None) -> int:
        self._listing.clear()
        self._claimed.clear()
        cur = self.conn.execute(
            "INSERT INTO file_operations(label, created_at, state, payload) VALUES (?, ?, 'open', ?)",
            (label, iso_utc(), json.dumps(payload or {})),
        )
        return int(cur.lastrowid or 0)

    def payload(self, operation_id: int, *, raw: bool = False) -> dict[str, Any]:
        """The caller's payload of an operation (with the journal's own key when `raw`)."""
        sql = "SELECT payload FROM file_operations WHERE id = ?"
        row = self.conn.execute(sql, (operation_id,)).fetchone()
        data = dict(json.loads(row[0])) if row and row[0] else {}
        return data if raw else {k: v for k, v in data.items() if k != _FILES_KEY}

    def set_payload(self, operation_id: int, payload: dict[str, Any]) -> None:
        """Replace the caller's payload of an operation, keeping the journal's own key."""
        data = {**payload, _FILES_KEY: self.payload(operation_id, raw=True).get(_FILES_KEY, {})}
        self.conn.execute(
            "UPDATE file_operations SET payload = ? WHERE id = ?", (json.dumps(data), operation_id)
        )

    def plan_move(
        self,
        operation_id: int,
        src: Path,
        dst_dir: Path,
        *,
        companions: bool = True,
        reserve_suffixes: Iterable[str] = (),
    ) -> Path:
        """The new path of `src`, after recording the intent to move it (and its companions).

        The new name is `src`'s name, or `stem__N` when any name the group needs (companions
        and `reserve_suffixes`, e.g. a sidecar's) is taken, so nothing is overwritten and
        companions keep sharing the image's stem.
        """
        src, dst_dir = Path(src).absolute(), Path(dst_dir).absolute()
        self._check(src)
        self._check(dst_dir)
        if src.is_symlink():
            raise FileOperationError(f"{src} is a link; replace it with the file it points to.")
        if not src.is_file():
            raise FileOperationError(f"{src} is missing; restore it or rescan the project.")
        if not os.access(src.parent, os.W_OK | os.X_OK):  # refuse now, not half-way through
            raise FileOperationError(f"{src.parent} is read-only; make it writable to move files.")
        if str(src) in self._claimed or self._pending("src", src):
            raise FileOperationError(f"{src} is already being moved; it cannot be moved twice.")
        group = [src] + (self.companions_of(src) if companions else [])
        reserved = list(reserve_suffixes)
        stem = self._free_stem(src.stem, [p.suffix for p in group] + reserved, dst_dir)
        for suffix in reserved:
            self._reserve(dst_dir / f"{stem}{suffix}")
            self._spare.add(str(dst_dir / f"{stem}{suffix}"))
        for path in group:
            dst = dst_dir / f"{stem}{path.suffix}"
            self._reserve(dst)
            self._claimed.add(str(path))
            self._insert(operation_id, str(path), str(dst), path.stat().st_size)
        return dst_dir / f"{stem}{src.suffix}"

    def plan_write(self, operation_id: int, dst: Path, data: bytes) -> Path:
        """`dst`, after recording the intent to create it holding `data` (never replacing a file)."""
        dst = Path(dst).absolute()
        self._check(dst)
        if len(data) > MAX_STORED_BYTES:
            raise FileOperationError(f"{dst.name} is too large for a journaled write.")
        if str(dst) in self._spare:
            self._spare.discard(str(dst))  # reserved for this very write by plan_move
        elif self._taken(dst):
            raise FileOperationError(f"{dst} already exists; it was not overwritten.")
        self._reserve(dst)
        seq = self._insert(operation_id, "", str(dst), len(data))
        self._store(operation_id, seq, data)
        return dst

    def plan_remove(self, operation_id: int, path: Path, data: bytes) -> None:
        """Record the intent to remove one of our own files (`removable`), if it holds `data`."""
        path = Path(path).absolute()
        self._check(path)
        if self.removable is None or not self.removable(path):
            raise UnsafePath(f"{path} is not a Workbench file; it is never removed.")
        seq = self._insert(operation_id, str(path), "", len(data))
        self._store(operation_id, seq, data)

    def companions_of(self, image: Path) -> list[Path]:
        """Regular files beside `image` sharing its stem: not images, links, sidecars or ours."""
        folder = image.parent
        listing = self._listing.get(folder)
        if listing is None:
            listing = {}
            with os.scandir(folder) as it:
                for entry in it:
                    # Links stay where they are: following one could reach outside the project.
                    if entry.is_file(follow_symlinks=False):
                        listing.setdefault(Path(entry.name).stem, []).append(entry.name)
            self._listing[folder] = listing
        found = []
        for name in sorted(listing.get(image.stem, [])):
            path = folder / name
            suffix = path.suffix.lower()
            if name == image.name or suffix in IMAGE_EXTENSIONS or suffix == SIDECAR_SUFFIX:
                continue
            if name.endswith(PARTIAL_SUFFIX) or str(path) in self._claimed:
                continue  # a companion goes with the first image that claims it, once
            if (self.keep_out is not None and self.keep_out(path)) or self._pending("src", path):
                continue
            found.append(path)
        return found

    def _free_stem(self, stem: str, suffixes: Iterable[str], dst_dir: Path) -> str:
        suffixes = list(suffixes)
        candidate, n = stem, 1
        while any(self._taken(dst_dir / f"{candidate}{s}") for s in suffixes):
            n += 1
            candidate = f"{stem}__{n}"
        return candidate

    def _taken(self, path: Path) -> bool:
        """True when `path` exists, or is promised to this plan or to an unfinished entry."""
        return os.path.lexists(path) or self._is_reserved(path) or self._pending("dst", path)

    def _reserve(self, path: Path) -> None:
        self._reserved.add(str(path).casefold())

    def _is_reserved(self, path: Path) -> bool:
        return str(path).casefold() in self._reserved

    def _pending(self, column: str, path: Path) -> bool:
        """True when an unfinished entry of any operation has `path` as its src or dst."""
        # Destinations compare without case: some disks fold it, and a spare __2 costs nothing.
        fold = " COLLATE NOCASE" if column == "dst" else ""
        sql = f"SELECT 1 FROM file_moves WHERE {_PENDING} AND {column} = ?{fold} LIMIT 1"
        return self.conn.execute(sql, (str(path),)).fetchone() is not None

    def _insert(self, operation_id: int, src: str, dst: str, size: int | None) -> int:
        sql = "SELECT COALESCE(MAX(seq), -1) + 1 FROM file_moves WHERE operation_id = ?"
        seq = int(self.conn.execute(sql, (operation_id,)).fetchone()[0])
        self.conn.execute(
            "INSERT INTO file_moves(operation_id, seq, src, dst, size_bytes, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'intent', ?)",
            (operation_id, seq, src, dst, size, iso_utc()),
        )
        return seq

    def _store(self, operation_id: int, seq: int, data: bytes) -> None:
        raw = self.payload(operation_id, raw=True)
        raw.setdefault(_FILES_KEY, {})[str(seq)] = base64.b64encode(data).decode("ascii")
        sql = "UPDATE file_operations SET payload = ? WHERE id = ?"
        self.conn.execute(sql, (json.dumps(raw), operation_id))
        self._files.pop(operation_id, None)

    def stored(self, move: Move) -> bytes:
        """The bytes a write entry creates, or a remove entry expects to find."""
        files = self._files.get(move.operation_id)
        if files is None:
            files = self.payload(move.operation_id, raw=True).get(_FILES_KEY, {})
            self._files[move.operation_id] = files
        if str(move.seq) not in files:
            raise FileOperationError(f"The journal lost the content of {move.path}.")
        return base64.b64decode(files[str(move.seq)])

    def _check(self, path: Path) -> None:
        if self.allowed is not None and not self.allowed(path):
            raise UnsafePath(f"{path} is outside the project and its source folder; not touched.")

    # -- carrying out --------------------------------------------------------------------

    def moves(self, operation_id: int, *, pending_only: bool = False) -> list[Move]:
        """The operation's entries in order (only unfinished ones with `pending_only`)."""
        where = "operation_id = ?" + (f" AND {_PENDING}" if pending_only else "")
        return self._rows(where, (operation_id,))

    def unfinished(self) -> list[Move]:
        """Every entry not yet carried out, oldest operation first."""
        return self._rows(_PENDING, ())

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[Move]:
        sql = f"SELECT id, operation_id, seq, src, dst, state FROM file_moves WHERE {where}"
        rows = self.conn.execute(sql + " ORDER BY operation_id, seq", args).fetchall()
        return [Move(r[0], r[1], r[2], _opt(r[3]), _opt(r[4]), r[5]) for r in rows]

    def execute(self, operation_id: int) -> int:
        """How many entries were carried out, after carrying out the operation's pending ones."""
        made = 0
        for move in self.moves(operation_id, pending_only=True):
            self._carry_out(move)
            made += 1
        sql = "UPDATE file_operations SET state = 'done' WHERE id = ? AND state = 'open'"
        self.conn.execute(sql, (operation_id,))
        return made

    def step(self, name: str, ident: int) -> None:
        """Report a step to the test hook (the journal's own, and callers' commit points)."""
        if self.step_hook is not None:
            self.step_hook(name, ident)

    def _set_state(self, move_id: int, state: str) -> None:
        sql = "UPDATE file_moves SET state = ?, updated_at = ? WHERE id = ?"
        self.conn.execute(sql, (state, iso_utc(), move_id))

    def _carry_out(self, move: Move, *, check: bool = False) -> None:
        """Bring one entry to 'done' from whatever state the disk is in."""
        self.step("before_move", move.id)
        for path in (move.src, move.dst) if check else ():  # planning checked fresh entries
            if path is not None:
                self._check(path)
        if move.dst is not None:
            partial_path(move.dst).unlink(missing_ok=True)  # our own, from a crash mid-copy
        if move.kind == "move":
            self._carry_move(move)
        elif move.kind == "write":
            self._carry_write(move)
        else:
            self._carry_remove(move)
        self._set_state(move.id, "done")
        self.step("marked_done", move.id)

    def _carry_move(self, move: Move) -> None:
        src, dst = move.src, move.dst
        assert src is not None and dst is not None
        src_exists, dst_exists = src.exists(), os.path.lexists(dst)
        if src_exists and not dst_exists:
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                safe_io.place(src, dst)
            except FileExistsError as exc:
                raise FileOperationError(
                    f"{dst} appeared while {src.name} was moved there; "
                    f"nothing was overwritten. {_ASIDE}"
                ) from exc
            except OSError as exc:
                message = f"Cannot move {src} to {dst.parent}: {exc.strerror or exc}."
                raise FileOperationError(message) from exc
            self._placed(move)
            dst_exists = True
        if src_exists and dst_exists:
            if safe_io.same_entry(src, dst):  # unlinking one name would remove the only copy
                raise FileOperationError(f"{src} and {dst} are one file; it was left in place.")
            if not same_content(src, dst):
                raise FileOperationError(
                    f"Both {src} and {dst} exist with different "
                    f"content; both were left in place. {_ASIDE}"
                )
            try:
                src.unlink()
            except OSError as exc:
                raise FileOperationError(
                    f"{src} is now also in {dst.parent} but cannot be removed ({exc.strerror}); "
                    f"make its folder writable, then {_REPAIR}."
                ) from exc
            safe_io.fsync_dir(src.parent)
            self.step("unlinked", move.id)
        elif not dst_exists:
            raise FileOperationError(
                f"{src.name} is neither in {src.parent} nor in {dst.parent}; it was moved or "
                "removed outside Workbench. Put it back in either folder, then run the doctor."
            )

    def _carry_write(self, move: Move) -> None:
        dst = move.dst
        assert dst is not None
        data = self.stored(move)
        if os.path.lexists(dst):
            if not safe_io.holds(dst, data):
                raise FileOperationError(
                    f"{dst} exists with other content; it was not overwritten. {_ASIDE}"
                )
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        safe_io.write_new_file(dst, data)
        self._placed(move)

    def _placed(self, move: Move) -> None:
        self.step("placed", move.id)
        self._set_state(move.id, "moved")
        self.step("marked_moved", move.id)

    def _carry_remove(self, move: Move) -> None:
        path = move.src
        assert path is not None
        # Only the exact bytes the journal wrote are ours; anything else stays (doctor shows it).
        if not path.is_symlink() and safe_io.holds(path, self.stored(move)):
            path.unlink()
            safe_io.fsync_dir(path.parent)
            self.step("unlinked", move.id)

    # -- recovery and undo ---------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """A report, after rolling every unfinished entry forward from what is on disk."""
        report = RecoveryReport()
        sql = "SELECT id FROM file_operations WHERE state = 'open' ORDER BY id"
        for (op,) in self.conn.execute(sql).fetchall():
            failed = False
            for move in self.moves(op, pending_only=True):
                try:
                    self._carry_out(move, check=True)
                    report.rolled_forward += 1
                except (WorkbenchError, OSError) as exc:
                    failed = True
                    report.problems.append(getattr(exc, "message", None) or str(exc))
            if not failed:
                self.conn.execute("UPDATE file_operations SET state = 'done' WHERE id = ?", (op,))
        return report

    def undoable(self, limit: int = 50) -> list[tuple[int, str]]:
        """(operation id, label) of finished operations that can be undone, newest first."""
        sql = "SELECT id, label FROM file_operations WHERE state = 'done' AND undo_of IS NULL"
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def undo(
        self,
        count: int = 1,
        *,
        revert_rows: Callable[[sqlite3.Connection, int, dict[str, Path]], None] | None = None,
    ) -> list[int]:
        """The ids of the last `count` operations, newest first, after undoing them all.

        The undo is journaled like any operation: in one transaction each operation is
        marked undone, its reverse entries are planned and `revert_rows(conn, op_id,
        {moved_to: back_to})` reverts the caller's rows; then the files move back. A refusal
        (a file no longer where it was put) rolls the transaction back: nothing changes.
        """
        if self.unfinished():
            raise FileOperationError(
                "An earlier file operation is unfinished; run `workbench doctor NAME --repair` "
                "(or restart Workbench) first. Nothing was undone."
            )
        ops = self.undoable(limit=count)
        reverses: list[int] = []
        self._reserved.clear()
        with durable(self.conn), transaction(self.conn):
            for op_id, label in ops:
                reverse = self._open(f"undo: {label}", {"kind": "undo", "undo_of": op_id})
                sql = "UPDATE file_operations SET undo_of = ? WHERE id = ?"
                self.conn.execute(sql, (op_id, reverse))
                back = self._plan_reverse(reverse, op_id, label)
                self.conn.execute(
                    "UPDATE file_operations SET state = 'undone', undone_at = ? WHERE id = ?",
                    (iso_utc(), op_id),
                )
                if revert_rows is not None:
                    revert_rows(self.conn, op_id, back)
                reverses.append(reverse)
        for reverse in reverses:
            self.step("committed", reverse)
            self.execute(reverse)
        return [op_id for op_id, _ in ops]

    def _plan_reverse(self, reverse: int, op_id: int, label: str) -> dict[str, Path]:
        """{moved_to: back_to} after planning the reverse of every entry of `op_id`."""
        entries = list(reversed(self.moves(op_id)))
        # An image and its companions went together under one stem; they return under one.
        bundles: dict[tuple[Path, str, Path, str], list[tuple[Path, Move]]] = {}
        for m in entries:
            if m.src is not None and m.dst is not None:
                # Present, or put back there by the undo of a newer operation planned above.
                if not (os.path.lexists(m.dst) or self._is_reserved(m.dst)):
                    raise FileOperationError(
                        f"Cannot undo '{label}': {m.dst} is no longer where it was put (moved "
                        "or removed since). Put it back and try again; nothing was changed."
                    )
                key = (m.src.parent, m.src.stem, m.dst.parent, m.dst.stem)
                bundles.setdefault(key, []).append((m.src, m))
        back: dict[str, Path] = {}
        for (folder, stem, _, _), bundle in bundles.items():
            free = self._free_stem(stem, [src.suffix for src, _ in bundle], folder)
            for src, m in bundle:
                back[str(m.dst)] = folder / f"{free}{src.suffix}"
                self._reserve(back[str(m.dst)])
        for m in entries:
            if m.kind == "move":
                self._check(back[str(m.dst)])
                self._insert(reverse, str(m.dst), str(back[str(m.dst)]), None)
            elif m.kind == "write" and self.removable is not None and self.removable(m.path):
                self.plan_remove(reverse, m.path, self.stored(m))  # only our own files
            elif m.kind == "remove" and not os.path.lexists(m.path):
                self.plan_write(reverse, m.path, self.stored(m))
        return back
