"""Plate labels in and out: seed 004's labels.txt, fast-plate-ocr's CSV, PaddleOCR rec data.

labels.txt is one `path<TAB>TEXT` line per crop (TEXT may be __SKIP__); exporting to an
existing file appends the crops it does not name yet and never rewrites a line.
The fast-plate-ocr CSV is `image_path,plate_text` with paths relative to the CSV's folder.
PaddleOCR recognition data is a folder: `train/` and `test/` image copies, the ground
truth files `rec_gt_train.txt` / `rec_gt_test.txt` (`train/NAME.jpg<TAB>TEXT`) and the
character dictionary `plate_dict.txt` (for `character_dict_path`).

An import reads every line it can: a line that is not UTF-8, malformed, names a missing
or unreadable crop, or one outside the project's folders is reported with its 1-based
line number and left out; the rest is imported in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core import db
from workbench.core.errors import InvalidInput
from workbench.core.images import verify_image
from workbench.core.plates import (
    MAX_TEXT_LENGTH,
    SKIP,
    LabelStore,
    PlateLabel,
    clean_text,
    crop_folders,
    list_crops,
    may_label,
    register_crop_folder,
)
from workbench.core.project import Project, write_atomic
from workbench.core.timeutil import iso_utc

LABELS_FILE = "labels.txt"
HEADERS = {("path", "text"), ("image_path", "plate_text")}
PADDLE_DICT = "plate_dict.txt"
PADDLE_TEST_EVERY = 10  # about one crop in ten goes to test/, chosen by a hash of its path


@dataclass
class ImportReport:
    """What an import did: counts, and each problem as {"line", "reason"} (1-based lines)."""

    source: Path
    imported: int = 0
    unchanged: int = 0
    kept: int = 0
    crops_found: int | None = None
    folder: Path | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "folder": None if self.folder is None else str(self.folder),
            "crops_found": self.crops_found,
            "imported": self.imported,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def import_labels(
    project: Project, conn: sqlite3.Connection, source: Path, *, replace: bool = False
) -> ImportReport:
    """Import a labels file (labels.txt, a PaddleOCR gt file, or a fast-plate-ocr CSV).

    A folder is registered as a crop folder, and its labels.txt (if any) imported.
    A crop already labeled differently in the project keeps its label unless `replace`.
    Relative paths resolve against the file's folder, then its parents, then the crop folders.
    """
    source = Path(source).expanduser()
    report = ImportReport(source=source)
    if source.is_dir():
        report.folder = register_crop_folder(project, conn, source)
        report.crops_found = len(list_crops([report.folder]))
        source = report.folder / LABELS_FILE
        if not source.is_file():
            return report
    elif not source.is_file():
        raise InvalidInput(f"{source} is neither a labels file nor a folder of crops.")
    folders = crop_folders(project, conn)
    rows = _read_rows(source, report)
    bases = [source.parent.resolve(), *list(source.parent.resolve().parents)[:3], *folders]
    chosen: dict[str, tuple[int, str]] = {}
    for line, raw_path, raw_text in rows:
        text = _label_text(raw_text, line, report)
        if text is None:
            continue
        path = _resolve(raw_path, bases)
        if path is None:
            report.errors.append({"line": line, "reason": f"crop {raw_path!r} not found"})
            continue
        if not may_label(project, folders, path):
            report.errors.append({"line": line, "reason": (
                f"{path} is outside the project and its crop folders; register its folder "
                f"first: workbench plates import {project.name} FOLDER")})  # fmt: skip
            continue
        unreadable = verify_image(path)
        if unreadable is not None:
            report.errors.append({"line": line, "reason": f"{path}: {unreadable.reason}"})
            continue
        if str(path) in chosen:
            report.warnings.append({"line": chosen[str(path)][0],
                                    "reason": f"{path} is labeled again on line {line}; the later line is used"})  # fmt: skip
        chosen[str(path)] = (line, text)
    store = LabelStore(conn)
    existing = store.all()
    with db.transaction(conn):
        for key, (line, text) in chosen.items():
            old = existing.get(key)
            if old is not None and old.text == text:
                report.unchanged += 1
                continue
            if old is not None and not replace:
                report.kept += 1
                report.warnings.append({"line": line, "reason": (
                    f"{key} is labeled {old.text!r} in the project; kept (--replace imports {text!r})")})  # fmt: skip
                continue
            store.save(key, text, "imported")
            report.imported += 1
    report.errors.sort(key=lambda e: e["line"])
    report.warnings.sort(key=lambda w: w["line"])
    return report


def _read_rows(source: Path, report: ImportReport) -> list[tuple[int, str, str]]:
    """(line number, path, text) of each well-formed line; the others go to report.errors."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Cannot read {source}: {exc.strerror or exc}.") from exc
    is_csv = source.suffix.lower() == ".csv"
    expected = "image_path,plate_text" if is_csv else "PATH<TAB>TEXT"
    rows: list[tuple[int, str, str]] = []
    columns, first = (0, 1), True
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.errors.append(
                {"line": number, "reason": f"not UTF-8 text (byte {exc.start + 1})"}
            )
            continue
        if line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in (next(csv.reader([line])) if is_csv else line.split("\t"))]
        was_first, first = first, False
        if was_first and is_csv and {"image_path", "plate_text"} <= set(fields):
            columns = (fields.index("image_path"), fields.index("plate_text"))
            continue
        if was_first and tuple(fields) in HEADERS:
            continue
        if (
            (len(fields) != 2 and not is_csv)
            or len(fields) <= max(columns)
            or not fields[columns[0]]
        ):
            report.errors.append({"line": number, "reason": f"expected {expected}"})
            continue
        rows.append((number, fields[columns[0]], fields[columns[1]]))
    return rows


def _label_text(raw: str, line: int, report: ImportReport) -> str | None:
    if raw == SKIP:
        return SKIP
    text = clean_text(raw)
    if not text:
        report.errors.append({"line": line, "reason": f"label {raw!r} has no letter or digit"})
        return None
    if len(text) > MAX_TEXT_LENGTH:
        report.errors.append(
            {"line": line, "reason": f"label {raw!r} is longer than {MAX_TEXT_LENGTH}"}
        )
        return None
    if text != raw:
        report.warnings.append({"line": line, "reason": f"label {raw!r} stored as {text!r}"})
    return text


def _resolve(raw: str, bases: list[Path]) -> Path | None:
    path = Path(raw).expanduser()
    candidates = [path] if path.is_absolute() else [base / path for base in bases]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return None


# -- export ------------------------------------------------------------------------------


@dataclass
class ExportReport:
    """What an export wrote: labels written, and those left out with why."""

    target: Path
    written: int = 0
    already_there: int = 0
    differing: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unwritable: list[str] = field(default_factory=list)  # a tab or line break in the path

    def to_dict(self) -> dict[str, Any]:
        return {"target": str(self.target), "written": self.written,
                "already_there": self.already_there, "differing": self.differing,
                "missing": self.missing, "unwritable": self.unwritable}  # fmt: skip


def _labels(conn: sqlite3.Connection, *, with_skips: bool) -> list[PlateLabel]:
    labels = LabelStore(conn).all().values()
    return [lab for lab in labels if with_skips or not lab.skipped]


def export_labels_txt(conn: sqlite3.Connection, target: Path) -> ExportReport:
    """Append each label (skips too) whose crop the file does not name yet; never rewrite."""
    report = ExportReport(target)
    named: dict[str, str] = {}
    tail = b"\n"
    if target.exists():
        data = target.read_bytes()
        tail = data[-1:] or b"\n"
        for raw in data.split(b"\n"):
            parts = raw.rstrip(b"\r").decode("utf-8", errors="replace").split("\t")
            if len(parts) == 2:
                named[parts[0]] = parts[1].strip()
    lines = []
    for label in _labels(conn, with_skips=True):
        path = str(label.image_path)
        if any(ch in path for ch in "\t\r\n"):
            report.unwritable.append(path)
            continue
        if path in named:
            report.already_there += 1
            if named[path] != label.text:
                report.differing.append(path)
            continue
        lines.append(f"{path}\t{label.text}\n")
    if lines:
        payload = ("" if tail == b"\n" else "\n") + "".join(lines)
        with open(target, "ab") as fh:  # one write, then fsync: appended lines land whole
            fh.write(payload.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    report.written = len(lines)
    return report


def export_fast_plate_ocr(
    conn: sqlite3.Connection, target: Path, *, overwrite: bool = False
) -> ExportReport:
    """`image_path,plate_text` (paths relative to the CSV's folder), skips left out."""
    report = ExportReport(target)
    if target.exists() and not overwrite:
        raise InvalidInput(f"{target} already exists; choose another name or pass --overwrite.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_path", "plate_text"])
    for label in _labels(conn, with_skips=False):
        try:
            rel = os.path.relpath(label.image_path, target.parent)
        except ValueError:  # another drive (Windows): absolute then
            rel = str(label.image_path)
        writer.writerow([Path(rel).as_posix(), label.text])
        report.written += 1
    write_atomic(target, buffer.getvalue().encode("utf-8"))
    return report


def export_paddleocr(conn: sqlite3.Connection, target: Path) -> ExportReport:
    """A PaddleOCR recognition data folder (see the module docstring); skips left out."""
    report = ExportReport(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} exists and is not an empty folder; choose a new folder.")
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for split in splits:
        (target / split).mkdir(parents=True, exist_ok=True)
    for n, label in enumerate(_labels(conn, with_skips=False), 1):
        src = label.image_path
        if not src.is_file():
            report.missing.append(str(src))
            continue
        digest = hashlib.sha1(str(src).encode("utf-8")).digest()
        split = "test" if digest[0] % PADDLE_TEST_EVERY == 0 else "train"
        name = f"{n:06d}_{src.name}"
        shutil.copyfile(src, target / split / name)
        splits[split].append(f"{split}/{name}\t{label.text}\n")
        report.written += 1
    for split, lines in splits.items():
        write_atomic(target / f"rec_gt_{split}.txt", "".join(lines).encode("utf-8"))
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    write_atomic(target / PADDLE_DICT, "".join(f"{c}\n" for c in chars).encode("utf-8"))
    note = f"exported by Workbench {iso_utc()}; use_space_char: false\n"
    write_atomic(target / "README.txt", note.encode("utf-8"))
    return report
