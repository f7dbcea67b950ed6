"""The doctor: does the database agree with the files and the sidecars? Repairs what is safe.

`check` only reads. `repair` finishes interrupted journal entries, re-writes a missing
sidecar from its database row, points a row at its file when that file turns up exactly
once elsewhere in the project's folders, and removes our own stray partial copies. It
never deletes or overwrites a user's file; sidecars it cannot trust are reported and left
where they are.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.crops import CropBox
from workbench.core.db import transaction
from workbench.core.errors import InvalidInput, WorkbenchError
from workbench.core.fileops import PARTIAL_SUFFIX, FileJournal, Move, partial_path, same_content
from workbench.core.finalize import journal_for
from workbench.core.project import ROUTING_FOLDERS, Project
from workbench.core.safe_io import holds, write_new_file
from workbench.core.sidecar import (
    Sidecar,
    SidecarError,
    encode_sidecar,
    find_sidecars,
    read_sidecar,
    sidecar_path,
)

# Findings that describe work waiting, not a disagreement: they leave a report clean.
INFORMATIONAL = frozenset({"incomplete_crop"})
SIDECAR_FOLDERS = ("crop", "crop_auto")


@dataclass
class DoctorReport:
    """Findings (`{"kind", "path", "message", "repairable"}`) and what a repair did."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def add(self, kind: str, path: Path | str, message: str, repairable: bool) -> None:
        self.findings.append(
            {"kind": kind, "path": str(path), "message": message, "repairable": repairable}
        )

    @property
    def problems(self) -> list[dict[str, Any]]:
        """The findings that are disagreements (everything but incomplete crops)."""
        return [f for f in self.findings if f["kind"] not in INFORMATIONAL]

    @property
    def clean(self) -> bool:
        return not self.problems

    def kinds(self) -> list[str]:
        return [f["kind"] for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "problems": len(self.problems),
            "findings": list(self.findings),
            "repaired": list(self.repaired),
        }


@dataclass(frozen=True)
class _Expected:
    """A decided image where the database says it is, and the sidecar it should have."""

    group_id: str
    image_index: int
    path: Path
    chosen: bool
    needs_sidecar: bool
    row: sqlite3.Row


def check(project: Project, conn: sqlite3.Connection) -> DoctorReport:
    """A report comparing the database, the files and the sidecars; changes nothing."""
    report = DoctorReport()
    journal = journal_for(project, conn)
    pending = journal.unfinished()
    busy = {str(p) for m in pending for p in (m.src, m.dst) if p is not None}
    for move in pending:
        report.add("unfinished_move", move.path, _describe(move), _can_finish(journal, move))
    expected = _expected(project, conn)
    files: dict[str, list[Path]] | None = None  # walked only when a file is missing
    for exp in expected:
        if str(exp.path) in busy:
            continue  # the unfinished entry above accounts for it
        if not exp.path.exists():
            files = _files_in(project) if files is None else files
            found = _found_elsewhere(conn, exp, files, expected)
            what = f"{exp.path} (image {exp.image_index + 1} of {exp.group_id}) is missing"
            if found is not None:
                message = f"{what}; it is at {found}, and repair records that."
            else:
                message = f"{what}, and not elsewhere in the project; put it back or undo."
            report.add("missing_file", exp.path, message, found is not None)
        elif exp.needs_sidecar and not sidecar_path(exp.path).exists():
            message = (
                f"{exp.path.name} in {exp.path.parent.name}/ has no sidecar; repair re-writes "
                f"it from the database row of {exp.group_id}."
            )
            report.add("missing_sidecar", sidecar_path(exp.path), message, True)
    for exp in expected:
        if exp.chosen and exp.row["user_action"] == "crop" and exp.row["final_crop_coords"] is None:
            _incomplete(project, report, exp)
    _check_sidecars(project, conn, report, expected, busy)
    in_use = {str(partial_path(Path(p))) for p in busy}
    for part in _partials(project, conn):
        if str(part) not in in_use:
            message = f"{part} is a partial copy left by an interrupted move; repair removes it."
            report.add("stray_partial", part, message, True)
    return report


def repair(project: Project, conn: sqlite3.Connection) -> DoctorReport:
    """The report after a repair: journal rolled forward, rows re-pointed, sidecars re-written.

    Never deletes or overwrites a user's file; what cannot be repaired safely stays reported.
    """
    done: list[str] = []
    recovery = journal_for(project, conn).recover()
    if recovery.rolled_forward:
        done.append(f"Finished {recovery.rolled_forward} interrupted file operation step(s).")
    report = check(project, conn)
    expected = {str(e.path): e for e in _expected(project, conn)}
    files: dict[str, list[Path]] | None = None
    for finding in report.findings:
        path = Path(finding["path"])
        if not finding["repairable"]:
            continue
        if finding["kind"] == "stray_partial" and path.name.endswith(PARTIAL_SUFFIX):
            path.unlink(missing_ok=True)  # our own temporary name, never a user's file
            done.append(f"Removed the partial copy {path}.")
        elif finding["kind"] == "missing_file":
            exp = expected[str(path)]
            files = _files_in(project) if files is None else files
            found = _found_elsewhere(conn, exp, files, list(expected.values()))
            if found is not None:
                with transaction(conn):
                    conn.execute(
                        "UPDATE decision_files SET current_path = ? WHERE group_id = ?"
                        " AND image_index = ?",
                        (str(found), exp.group_id, exp.image_index),
                    )
                    # The journal follows the file too, so an undo moves it back from
                    # where it really is instead of refusing.
                    conn.execute(
                        "UPDATE file_moves SET dst = ? WHERE dst = ? AND state = 'done'",
                        (str(found), str(path)),
                    )
                done.append(f"Recorded that {path.name} of {exp.group_id} is now at {found}.")
                expected[str(found)] = replace(exp, path=found)  # one file answers one row
    # After re-pointing rows, an image found in crop/ may now need its sidecar written.
    for exp in _expected(project, conn):
        target = sidecar_path(exp.path)
        if exp.needs_sidecar and exp.path.is_file() and not os.path.lexists(target):
            try:
                write_new_file(target, encode_sidecar(exp.path, _sidecar_of(project, exp)))
            except (InvalidInput, OSError) as exc:
                done.append(f"Could not re-write {target}: {getattr(exc, 'message', exc)}")
            else:
                done.append(f"Re-wrote the sidecar {target} from the database.")
    final = check(project, conn)
    final.repaired = done + [f"Could not finish: {p}" for p in recovery.problems]
    return final


# -- what the database expects ------------------------------------------------------------


def _expected(project: Project, conn: sqlite3.Connection) -> list[_Expected]:
    sidecar_dirs = {project.folder(f) for f in SIDECAR_FOLDERS}
    rows = conn.execute(
        "SELECT d.*, f.image_index AS image_index, f.current_path AS current_path"
        " FROM decision_files f JOIN ai_decisions d ON d.group_id = f.group_id"
        " ORDER BY d.group_id, f.image_index"
    ).fetchall()
    out = []
    for r in rows:
        path = Path(r["current_path"])
        chosen = r["image_index"] == r["user_selected_index"]
        # An image routed to crop/ or crop_auto/ keeps its sidecar until its crop is recorded.
        needs = (
            chosen
            and r["user_action"] != "reject"
            and r["final_crop_coords"] is None
            and path.parent in sidecar_dirs
        )
        out.append(_Expected(r["group_id"], r["image_index"], path, chosen, needs, r))
    return out


def _sidecar_of(project: Project, exp: _Expected) -> Sidecar:
    coords = exp.row["ai_crop_coords"]
    return Sidecar(
        group_id=exp.group_id,
        project_id=project.name,
        needs_crop=exp.row["user_action"] == "crop",
        ai_crop_coords=CropBox.from_json(coords) if coords else None,
        image=exp.path.name,
    )


def _incomplete(project: Project, report: DoctorReport, exp: _Expected) -> None:
    in_crop = exp.path.parent == project.folder("crop") and exp.path.exists()
    has_sidecar = sidecar_path(exp.path).is_file()
    state = (
        "its image is in crop/ " + ("with its sidecar" if has_sidecar else "without its sidecar")
        if in_crop
        else f"its image is not in crop/ (the database says {exp.path})"
    )
    report.add("incomplete_crop", exp.path, f"{exp.group_id} waits for a crop; {state}.", False)


# -- sidecars -------------------------------------------------------------------------------


def _check_sidecars(
    project: Project,
    conn: sqlite3.Connection,
    report: DoctorReport,
    expected: list[_Expected],
    busy: set[str],
) -> None:
    """Report every sidecar in crop/ and crop_auto/ that no decided image accounts for."""
    wanted = {str(sidecar_path(e.path)): e for e in expected if e.needs_sidecar}
    for folder in SIDECAR_FOLDERS:
        for path in find_sidecars(project.folder(folder)):
            if str(path) in busy:
                continue
            reason = _sidecar_problem(project, conn, path, wanted.get(str(path)))
            if reason is not None:
                kind, message = reason
                report.add(kind, path, f"{message} It was left in place.", False)


def _sidecar_problem(
    project: Project, conn: sqlite3.Connection, path: Path, exp: _Expected | None
) -> tuple[str, str] | None:
    """(kind, sentence) when the sidecar cannot be trusted or belongs to nothing; else None."""
    try:
        sc = read_sidecar(path, project=project)
    except SidecarError as exc:
        return "invalid_sidecar", f"The sidecar {path} cannot be used: {exc.reason}"
    row = conn.execute(
        "SELECT final_crop_coords FROM ai_decisions WHERE group_id = ?", (sc.group_id,)
    ).fetchone()
    if row is None:
        return "orphan_sidecar", f"The sidecar {path} names {sc.group_id}, which is not a decision."
    image = path.parent / sc.image if sc.image else None
    if image is None or not image.exists():
        return "orphan_sidecar", f"The sidecar {path} belongs to an image that is not beside it."
    if exp is None or exp.group_id != sc.group_id or exp.path != image:
        if row["final_crop_coords"] is not None:
            return "stale_sidecar", (
                f"The sidecar {path} is no longer needed: the crop of {sc.group_id} is recorded."
            )
        return "orphan_sidecar", (
            f"The sidecar {path} names {sc.group_id}, but the database puts that decision's "
            "image elsewhere."
        )
    return None


# -- files ------------------------------------------------------------------------------------


def _files_in(project: Project) -> dict[str, list[Path]]:
    """Regular files in the routing folders (and below), by name."""
    by_name: dict[str, list[Path]] = {}
    for folder in ROUTING_FOLDERS:
        for path in _walk(project.folder(folder)):
            by_name.setdefault(path.name, []).append(path)
    return by_name


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _found_elsewhere(
    conn: sqlite3.Connection,
    exp: _Expected,
    files: dict[str, list[Path]],
    expected: list[_Expected],
) -> Path | None:
    """The one file with the missing file's name and size elsewhere in the project, if one."""
    size = _known_size(conn, exp)
    if size is None:
        return None
    claimed = {str(e.path) for e in expected}
    candidates = [
        p
        for p in files.get(exp.path.name, [])
        if str(p) not in claimed and p.exists() and p.stat().st_size == size
    ]
    return candidates[0] if len(candidates) == 1 else None


def _known_size(conn: sqlite3.Connection, exp: _Expected) -> int | None:
    row = conn.execute(
        "SELECT size_bytes FROM file_moves WHERE dst = ? AND size_bytes IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (str(exp.path),),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT g.size_bytes FROM group_images g JOIN decision_files f"
            " ON g.path = f.original_path WHERE f.group_id = ? AND f.image_index = ?",
            (exp.group_id, exp.image_index),
        ).fetchone()
    return None if row is None else int(row[0])


def _partials(project: Project, conn: sqlite3.Connection) -> Iterator[Path]:
    """Our partial copies (`.NAME.wbpart`): in the routing folders, and in the source only
    beside a file a journal entry moved (a walk of a 100,000-file source would be slow, and
    a `.wbpart` there that no entry explains is not ours to remove)."""
    for folder in (project.folder(f) for f in ROUTING_FOLDERS):
        for path in _walk(folder):
            if path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX):
                yield path
    seen: set[str] = set()
    for src, dst in conn.execute("SELECT src, dst FROM file_moves"):
        for name in (src, dst):
            if not name or Path(name).is_relative_to(project.root):
                continue  # the routing folders were walked above
            part = partial_path(Path(name))
            if str(part) not in seen and part.is_file():
                seen.add(str(part))
                yield part


# -- journal ----------------------------------------------------------------------------------


def _describe(move: Move) -> str:
    if move.kind == "write":
        return f"Writing {move.dst} was interrupted; repair finishes it."
    if move.kind == "remove":
        return f"Removing the sidecar {move.src} was interrupted; repair finishes it."
    return f"Moving {move.src} to {move.dst} was interrupted; repair finishes it."


def _can_finish(journal: FileJournal, move: Move) -> bool:
    """True when rolling the entry forward will succeed from what is on disk now."""
    try:
        if move.kind == "write" and move.dst is not None:
            return not os.path.lexists(move.dst) or holds(move.dst, journal.stored(move))
        if move.kind == "remove":
            return True
    except WorkbenchError:
        return False
    src, dst = move.src, move.dst
    assert src is not None and dst is not None
    if src.exists() and dst.exists():
        return same_content(src, dst)
    return src.exists() or dst.exists()
