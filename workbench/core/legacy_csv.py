"""The legacy decision CSV (seed 002's 26 columns, plus `ai_crop_accepted`): import and export.

Import is all or nothing: every row is validated, every problem is collected with its line
and column, and a single bad row rolls the whole file back. Match flags in the file are
recomputed, never trusted. Export writes the same layout, so import(export(db)) reproduces
the `ai_decisions` rows exactly.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from workbench.core.crops import CropBox
from workbench.core.db import transaction
from workbench.core.decisions import USER_ACTIONS, Decision, insert_decision
from workbench.core.errors import InvalidInput, WorkbenchError
from workbench.core.project import Project

# Seed 002's header from `initialize_ai_training_logs`, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "group_id", "timestamp", "project_id", "directory", "batch_number",
    "image_1_filename", "image_2_filename", "image_3_filename", "image_4_filename",
    "ai_selected_index", "ai_crop_x1", "ai_crop_y1", "ai_crop_x2", "ai_crop_y2", "ai_confidence",
    "user_selected_index", "user_action",
    "final_crop_x1", "final_crop_y1", "final_crop_x2", "final_crop_y2", "crop_timestamp",
    "image_width", "image_height",
    "selection_match", "crop_match",
)  # fmt: skip
# Added by the 2025-10-24 migration; optional on import, always last.
OPTIONAL_COLUMN = "ai_crop_accepted"
ALL_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS, OPTIONAL_COLUMN)

IMAGE_COLUMNS = tuple(f"image_{i}_filename" for i in range(1, 5))
AI_CROP_COLUMNS = ("ai_crop_x1", "ai_crop_y1", "ai_crop_x2", "ai_crop_y2")
FINAL_CROP_COLUMNS = ("final_crop_x1", "final_crop_y1", "final_crop_x2", "final_crop_y2")

MAX_INT = 2**31 - 1  # pixel sizes and batch numbers; SQLite itself would overflow at 2**63
MAX_ERRORS = 100  # enough to see a pattern; past this the report would only be noise
MAX_WARNINGS = 1000
MAX_LINE_BYTES = 1 << 20  # a decision row is a few hundred bytes; longer is not this format
MAX_TEXT_CHARS = 4096  # group ids, directories and file names beyond this are not real data

_UTF8_BOM = b"\xef\xbb\xbf"
_INT_RE = re.compile(r"^[+-]?\d+$")
# Plain decimal numbers only: float() would also take 'nan', 'inf', '1_0' and spaces.
_FLOAT_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class ImportReport:
    """What an import did: rows imported and the warnings worth showing."""

    imported: int
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # Warnings beyond MAX_WARNINGS are counted, not listed, so a huge file stays reportable.
    warnings_dropped: int = 0


class CsvImportError(InvalidInput):
    """A CSV that was not imported; `.errors` lists {"line", "column", "reason"} per problem."""

    def __init__(self, path: Path, errors: list[dict[str, Any]], *, truncated: bool = False):
        self.errors = errors
        self.truncated = truncated
        first = errors[0]
        where = f"line {first['line']}"
        if first.get("column"):
            where += f", column {first['column']}"
        more = f" (only the first {len(errors)} are listed)" if truncated else ""
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        super().__init__(
            f"{path.name} was not imported: {count} found{more}; nothing was changed. "
            f"First, {where}: {first['reason']}"
        )


class _LineTooLong(Exception):
    """A physical line longer than MAX_LINE_BYTES (stops parsing: it is not this format)."""


class _Lines:
    """The file's physical lines as text, streamed; lines that are not UTF-8 are noted."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.number = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        while True:
            # readline(limit) so a file without newlines is never read into memory whole.
            raw = self._fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            self.number += 1
            if self.number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            if len(raw) > MAX_LINE_BYTES:
                raise _LineTooLong(self.number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.bad[self.number] = (
                    f"Byte 0x{raw[exc.start]:02x} at position {exc.start + 1} is not valid UTF-8; "
                    "save the file as UTF-8 and import it again."
                )
                # Decode anyway so parsing (and the search for more problems) can go on.
                text = raw.decode("utf-8", "replace")
            yield text


def _error(line: int, column: str | None, reason: str) -> dict[str, Any]:
    return {"line": line, "column": column, "reason": reason}


def _check_header(header: list[str]) -> dict[str, Any] | None:
    """The header problem as an error dict, or None when the header is right."""
    for i, expected in enumerate(CSV_COLUMNS):
        if i >= len(header):
            return _error(
                1,
                expected,
                f"The header stops after {len(header)} columns; column {i + 1} "
                f"must be '{expected}'. Use the 26 columns of seed 002 in order.",
            )
        if header[i] != expected:
            return _error(
                1,
                expected,
                f"Column {i + 1} of the header is '{header[i]}' but must be "
                f"'{expected}'. Use the 26 columns of seed 002 in order.",
            )
    if len(header) == len(CSV_COLUMNS) + 1 and header[-1] == OPTIONAL_COLUMN:
        return None
    if len(header) > len(CSV_COLUMNS):
        # Name the first column that does not belong: past ai_crop_accepted if it is there.
        at = len(CSV_COLUMNS) + (header[len(CSV_COLUMNS)] == OPTIONAL_COLUMN)
        extra = header[at]
        return _error(
            1,
            extra,
            f"Unexpected header column '{extra}'; after the 26 seed columns only "
            f"'{OPTIONAL_COLUMN}' may follow, as the last column.",
        )
    return None


class _RowCheck:
    """One data row being validated: its errors and warnings, and the parsers that fill them."""

    def __init__(self, row: dict[str, str], line: int) -> None:
        self.row = row
        self.line = line
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []

    def err(self, col: str | None, reason: str) -> None:
        self.errors.append(_error(self.line, col, reason))

    def warn(self, key: str, value: str, reason: str) -> None:
        self.warnings.append({"line": self.line, key: value, "reason": reason})

    # Each parser returns the value, or records an error and returns None.

    def text(self, col: str) -> str:
        value = self.row[col]
        if len(value) > MAX_TEXT_CHARS:
            self.err(col, f"The value is {len(value)} characters; at most {MAX_TEXT_CHARS}.")
        elif _CONTROL_RE.search(value):
            self.err(col, "The value contains control characters (a line break, NUL, ...).")
        return value

    def integer(
        self, col: str, *, required: bool, lo: int, hi: int | None = None, what: str = ""
    ) -> int | None:
        raw = self.row[col]
        if raw == "":
            if required:
                self.err(col, f"{col} is required but empty.")
            return None
        if not _INT_RE.match(raw):
            self.err(col, f"'{raw}' is not a whole number.")
            return None
        value = int(raw)
        hi = MAX_INT if hi is None else hi
        if value < lo or value > hi:
            span = f"{lo} to {hi}{what}"
            self.err(col, f"{value} is out of range; {col} must be {span}.")
            return None
        return value

    def number(self, col: str) -> float | None:
        raw = self.row[col]
        if raw == "":
            return None
        if not _FLOAT_RE.match(raw):
            self.err(col, f"'{raw}' is not a decimal number (like 0.25).")
            return None
        return float(raw)

    def boolean(self, col: str) -> bool | None:
        raw = self.row.get(col, "")
        if raw not in ("", "True", "False"):
            self.err(col, f"'{raw}' is not a Boolean; write True, False, or leave it empty.")
        return None if raw not in ("True", "False") else raw == "True"

    def timestamp(self, col: str, *, required: bool) -> str | None:
        raw = self.row[col]
        if raw == "":
            if required:
                self.err(col, f"{col} is required but empty.")
            return None
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            self.err(col, f"'{raw}' is not an ISO 8601 time such as 2025-10-21T23:45:30Z.")
            return None
        return raw  # kept as written, so an export reproduces it exactly

    def crop(self, cols: tuple[str, ...]) -> CropBox | None:
        raws = [self.row[c] for c in cols]
        if all(r == "" for r in raws):
            return None
        empty = [c for c, r in zip(cols, raws, strict=True) if r == ""]
        if empty:
            self.err(empty[0], f"{', '.join(empty)} empty but not the rest; give all four or none.")
            return None
        before = len(self.errors)
        values = [self.number(c) for c in cols]
        if len(self.errors) > before:
            return None
        try:
            return CropBox.from_seq(values)
        except InvalidInput as exc:
            self.err(cols[0], f"The crop {values} is not valid: {exc.message}.")
            return None


class _RowReader:
    """Validates CSV rows of one project into Decisions."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._dir_cache: dict[str, Path | str] = {}

    def _base_dir(self, directory: str) -> Path | str:
        """The folder images resolve against, or the reason it is not allowed."""
        cached = self._dir_cache.get(directory)
        if cached is not None:
            return cached
        rel = Path(directory)
        base = rel if rel.is_absolute() else self.project.source / rel
        result: Path | str = base
        if not self.project.is_allowed(base):
            result = (
                f"'{directory}' resolves to {base.resolve()}, outside project "
                f"'{self.project.name}' and its source folder {self.project.source}; "
                "Workbench only reads images there."
            )
        if len(self._dir_cache) < 10_000:  # directories repeat across rows; bound it anyway
            self._dir_cache[directory] = result
        return result

    def _image_path(self, base: Path, name: str) -> tuple[Path | str, bool]:
        """The image's path (or the reason its name is unsafe) and whether the file exists."""
        parts = re.split(r"[/\\]", name)
        if ".." in parts:
            return f"'{name}' climbs out of its folder with '..'; give the file name only.", False
        absolute = Path(name).is_absolute()
        path = Path(name) if absolute else base / name
        if len(parts) == 1 and not absolute:
            # A bare name in an allowed folder can only escape through a link: one lstat
            # instead of resolving the whole path (this runs for every image of every row).
            try:
                info = os.lstat(path)
            except OSError:
                return path, False
            if not stat.S_ISLNK(info.st_mode):
                return path, stat.S_ISREG(info.st_mode)
        if not self.project.is_allowed(path):
            return (
                f"'{name}' lies outside project '{self.project.name}' and its source folder "
                f"{self.project.source}; Workbench only reads images there."
            ), False
        return path, path.is_file()

    def read(self, row: dict[str, str], line: int) -> tuple[Decision | None, _RowCheck]:
        """The row's Decision (None when invalid) and the check holding errors and warnings."""
        c = _RowCheck(row, line)
        group_id = c.text("group_id")
        if not group_id.strip():
            c.err("group_id", "group_id is empty; every row needs a unique group id.")
        timestamp = c.timestamp("timestamp", required=True)
        project_id = row["project_id"]
        if project_id != self.project.name:
            c.err(
                "project_id",
                f"The row belongs to project '{project_id}', not "
                f"'{self.project.name}'; import it into its own project.",
            )
        directory = c.text("directory")
        batch_number = c.integer("batch_number", required=False, lo=0)

        names = [c.text(col) for col in IMAGE_COLUMNS]
        count = next((i for i, n in enumerate(names) if n == ""), 4)
        if count == 0:
            c.err("image_1_filename", "The group has no images; image_1_filename is empty.")
        gap = next((i for i in range(count, 4) if names[i] != ""), None)
        if gap is not None:
            c.err(
                IMAGE_COLUMNS[gap],
                f"{IMAGE_COLUMNS[gap]} is set but {IMAGE_COLUMNS[count]} "
                "is empty; list a group's images without gaps.",
            )
        images = names[:count]
        hi, what = (count - 1, f" for a group of {count}") if count else (3, "")
        ai_index = c.integer("ai_selected_index", required=False, lo=0, hi=hi, what=what)
        user_index = c.integer("user_selected_index", required=True, lo=0, hi=hi, what=what)
        ai_crop = c.crop(AI_CROP_COLUMNS)
        confidence = c.number("ai_confidence")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            c.err("ai_confidence", f"{confidence} is outside 0 to 1.")
        action = row["user_action"]
        if action not in USER_ACTIONS:
            c.err("user_action", f"'{action}' is not one of approve, crop or reject.")
        final_crop = c.crop(FINAL_CROP_COLUMNS)
        crop_timestamp = c.timestamp("crop_timestamp", required=False)
        width = c.integer("image_width", required=True, lo=1)
        height = c.integer("image_height", required=True, lo=1)
        file_flags = {col: c.boolean(col) for col in ("selection_match", "crop_match")}
        accepted = c.boolean(OPTIONAL_COLUMN)

        base = self._base_dir(directory)
        if isinstance(base, str):
            c.err("directory", base)
        else:
            for col, name in zip(IMAGE_COLUMNS, images, strict=False):
                if _CONTROL_RE.search(name):
                    continue  # already reported by text()
                path, exists = self._image_path(base, name)
                if isinstance(path, str):
                    c.err(col, path)
                elif not exists:
                    c.warn("image", name, f"The image is not at {path}; imported without it.")
        if c.errors:
            return None, c
        assert timestamp is not None and user_index is not None  # required: checked above
        assert width is not None and height is not None
        decision = Decision(
            group_id=group_id,
            timestamp=timestamp,
            project_id=project_id,
            images=images,
            user_selected_index=user_index,
            user_action=action,
            image_width=width,
            image_height=height,
            directory=directory or None,
            batch_number=batch_number,
            ai_selected_index=ai_index,
            ai_crop=ai_crop,
            ai_confidence=confidence,
            ai_crop_accepted=accepted,
            final_crop=final_crop,
            crop_timestamp=crop_timestamp,
        )
        try:
            decision.validate()
        except InvalidInput as exc:  # a rule this reader missed still lands in the report
            c.err(None, exc.message)
            return None, c
        # The file's match flags are recomputed; a disagreement is worth a look, not an error.
        computed = {"selection_match": decision.selection_match, "crop_match": decision.crop_match}
        for col, value in computed.items():
            if file_flags[col] != value:
                c.warn(
                    "column",
                    col,
                    f"The file says {_fmt_bool(file_flags[col])} but the "
                    f"recomputed {_fmt_bool(value)} was stored.",
                )
        applies = action == "approve" and ai_crop is not None and ai_index == user_index
        if accepted is not None and not applies:
            c.warn(
                "column",
                OPTIONAL_COLUMN,
                "ai_crop_accepted is set although the user did not "
                "approve the AI's pick with an AI crop; kept as written.",
            )
        return decision, c


def _fmt_bool(value: bool | None) -> str:
    return "empty" if value is None else ("True" if value else "False")


def import_decisions(project: Project, conn: sqlite3.Connection, csv_path: Path) -> ImportReport:
    """An ImportReport after importing every row of `csv_path`, or CsvImportError and no change.

    The file is streamed once; rows go into one transaction that is rolled back if any row
    is bad, so a failed import leaves the database exactly as it was.
    """
    csv_path = Path(csv_path)
    try:
        fh = open(csv_path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError as exc:
        raise InvalidInput(f"{csv_path} does not exist; check the file name.") from exc
    except OSError as exc:
        raise InvalidInput(f"{csv_path} cannot be read ({exc.strerror or exc}).") from exc

    def fail(reason: str) -> CsvImportError:
        return CsvImportError(csv_path, [_error(1, None, reason)])

    with fh:
        if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            raise fail('The file is UTF-16; save it as UTF-8 ("CSV UTF-8") and import again.')
        fh.seek(0)
        lines = _Lines(fh)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, _LineTooLong) as exc:
            raise fail(_parse_reason(exc)) from None
        if not header:
            raise fail("The file is empty; it needs the header row of seed 002's 26 columns.")
        if 1 in lines.bad:
            raise fail(lines.bad[1])
        problem = _check_header(header)
        if problem:
            raise CsvImportError(csv_path, [problem])
        try:
            with transaction(conn):
                return _import_rows(project, conn, csv_path, reader, lines, header)
        except sqlite3.Error as exc:
            raise WorkbenchError(
                f"The project database could not be written ({exc}); nothing was imported. "
                "Close other Workbench windows on this project and try again."
            ) from exc


def _parse_reason(exc: Exception) -> str:
    if isinstance(exc, _LineTooLong):
        return f"The line is longer than {MAX_LINE_BYTES} bytes; this is not a decision CSV."
    return f"The CSV cannot be parsed here ({exc}); check for unbalanced quotes."


def _import_rows(
    project: Project,
    conn: sqlite3.Connection,
    csv_path: Path,
    reader: Any,
    lines: _Lines,
    header: list[str],
) -> ImportReport:
    """Validate and insert the data rows; raises CsvImportError (rolling back) on any error."""
    rows = _RowReader(project)
    errors: list[dict[str, Any]] = []
    report = ImportReport(imported=0)
    seen: dict[str, int] = {}  # group_id -> line, for duplicates within the file
    end = reader.line_num
    line = end

    def add(column: str | None, reason: str) -> None:
        errors.append(_error(line, column, reason))

    while len(errors) < MAX_ERRORS:
        try:
            values = next(reader)
        except StopIteration:
            break
        except (csv.Error, _LineTooLong) as exc:
            # The reader's state is unknown after this, so stop rather than guess.
            errors.append(_error(max(reader.line_num, end + 1), None, _parse_reason(exc)))
            break
        line, end = end + 1, reader.line_num  # a quoted field may span several lines
        if not values:
            continue  # a blank line
        bad = [lines.bad.pop(n) for n in range(line, end + 1) if n in lines.bad]
        if bad:
            cols = [header[i] for i, v in enumerate(values[: len(header)]) if "\ufffd" in v]
            add(cols[0] if cols else None, bad[0])
            continue
        if len(values) != len(header):
            missing = header[len(values)] if len(values) < len(header) else None
            n, want = len(values), len(header)
            add(missing, f"The row has {n} fields, the header {want}; look for stray commas.")
            continue
        row = dict(zip(header, values, strict=True))
        decision, check = rows.read(row, line)
        errors.extend(check.errors)
        group_id = row["group_id"]
        if group_id in seen:
            add("group_id", f"'{group_id}' is also on line {seen[group_id]}; ids must be unique.")
            continue
        if group_id:
            seen[group_id] = line
        if conn.execute("SELECT 1 FROM ai_decisions WHERE group_id = ?", (group_id,)).fetchone():
            add("group_id", f"'{group_id}' is already in the project; remove or rename the row.")
            continue
        room = MAX_WARNINGS - len(report.warnings)
        report.warnings.extend(check.warnings[:room])
        report.warnings_dropped += max(0, len(check.warnings) - room)
        if decision is None or errors:
            continue  # the file will be rolled back; keep looking for problems only
        try:
            insert_decision(conn, decision, source="import")
        except InvalidInput as exc:
            add(None, exc.message)
            continue
        report.imported += 1
    if errors:
        truncated = len(errors) >= MAX_ERRORS
        raise CsvImportError(csv_path, errors[:MAX_ERRORS], truncated=truncated)
    return report
