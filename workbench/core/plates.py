"""Plate labels (seed 004): text rules, contamination checks, the label store, crop folders.

A plate label is upper-case A-Z and 0-9 only, or `__SKIP__` for a crop the user skipped.
Labels live in the project database's `plate_labels` table, one row per crop (absolute
path), each written in its own committed statement so a crash loses nothing typed and
saved. Crops come from the project's `plates/` folder (the demo writes it) and from crop
folders the user registered (`workbench plates import NAME DIR`), e.g. a camera's
`output/crops/YYYY-MM-DD/CAM1_trackN.jpg` tree, labeled in place.

Contamination (seed 004's "signs to watch for"): a label with no digit, longer than 8
characters, or containing a sign word (RESERVED, SUITE, EXIT, PARKING by default; a
project may set `[plates] sign_words = [...]` in project.toml) is suspicious.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.core import db
from workbench.core.errors import InvalidInput, UnsafePath
from workbench.core.images import is_image_name
from workbench.core.project import SETTINGS_FILE, Project
from workbench.core.timeutil import iso_utc

SKIP = "__SKIP__"
SOURCES = ("typed", "prelabel", "corrected", "imported")
PLATE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
SUSPICIOUS_LENGTH = 8  # real plates are at most this long (seed 004)
MAX_TEXT_LENGTH = 32  # longer input is refused outright: nothing on a crop is that long
DEFAULT_SIGN_WORDS: tuple[str, ...] = ("RESERVED", "SUITE", "EXIT", "PARKING")
PLATES_FOLDER = "plates"  # <project>/plates/, where the demo writes its crops
CROP_DIRS_KEY = "plate_crop_dirs"  # meta: JSON list of registered crop folders
_NATURAL = re.compile(r"(\d+)")


# -- text --------------------------------------------------------------------------------


def clean_text(raw: str) -> str:
    """`raw` upper-cased with everything but A-Z and 0-9 dropped ("ab-12 c" -> "AB12C")."""
    return "".join(
        up for up in (ch.upper() for ch in raw if ch.isascii()) if up in PLATE_CHARACTERS
    )


def check_text(text: str) -> str:
    """`text` when it is a storable label (A-Z0-9, 1-32 characters, or __SKIP__), else InvalidInput."""
    if text == SKIP:
        return text
    if not text:
        raise InvalidInput("A plate label needs at least one letter or digit (or skip the crop).")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(
            f"A plate label has at most {MAX_TEXT_LENGTH} characters, not {len(text)}."
        )
    bad = sorted({ch for ch in text if ch not in PLATE_CHARACTERS})
    if bad:
        raise InvalidInput(f"A plate label holds only A-Z and 0-9; {text!r} has {''.join(bad)!r}.")
    return text


def contamination(text: str, sign_words: Sequence[str] = DEFAULT_SIGN_WORDS) -> list[str]:
    """Why a label looks like a sign rather than a plate (seed 004); [] when it looks fine.

    A skip, or an empty text, is never suspicious.
    """
    if not text or text == SKIP:
        return []
    reasons = []
    if not any(ch.isdigit() for ch in text):
        reasons.append("no digit")
    if len(text) > SUSPICIOUS_LENGTH:
        reasons.append(f"longer than {SUSPICIOUS_LENGTH} characters")
    reasons.extend(f"sign word {word}" for word in sign_words if word and word in text)
    return reasons


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlateSettings:
    """The `[plates]` table of project.toml (every key optional).

    sign_words      words that mark a crop as a sign (default RESERVED, SUITE, EXIT, PARKING)
    paddleocr_dir   a local PaddleOCR recognition model folder (enables --engine paddleocr)
    """

    sign_words: tuple[str, ...] = DEFAULT_SIGN_WORDS
    paddleocr_dir: Path | None = None


def plate_settings(project: Project) -> PlateSettings:
    """The project's plate settings, read from project.toml (defaults where a key is absent)."""
    path = project.root / SETTINGS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path} cannot be read ({exc}).") from exc
    table = data.get("plates", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: [plates] must be a table.")
    words = table.get("sign_words", list(DEFAULT_SIGN_WORDS))
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise InvalidInput(f'{path}: [plates] sign_words must be a list of words, e.g. ["EXIT"].')
    folder = table.get("paddleocr_dir")
    if folder is not None and not isinstance(folder, str):
        raise InvalidInput(f"{path}: [plates] paddleocr_dir must be a folder path.")
    paddle = None
    if folder:
        paddle = Path(folder).expanduser()
        if not paddle.is_absolute():
            paddle = (project.root / paddle).resolve()
    cleaned = tuple(dict.fromkeys(w for w in (clean_text(w) for w in words) if w))
    return PlateSettings(sign_words=cleaned, paddleocr_dir=paddle)


# -- crop folders ------------------------------------------------------------------------


def crop_folders(project: Project, conn: sqlite3.Connection) -> list[Path]:
    """Folders whose crops are labeled: <project>/plates/ (when present) and registered ones."""
    folders: list[Path] = []
    own = project.root / PLATES_FOLDER
    if own.is_dir():
        folders.append(own)
    raw = db.get_meta(conn, CROP_DIRS_KEY)
    for item in json.loads(raw) if raw else []:
        path = Path(str(item))
        if path not in folders:
            folders.append(path)
    return folders


def register_crop_folder(project: Project, conn: sqlite3.Connection, folder: Path) -> Path:
    """Add `folder` to the project's crop folders (idempotent); returns it resolved."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder of plate crops.")
    folder = folder.resolve()
    own = (project.root / PLATES_FOLDER).resolve()
    if folder.is_relative_to(own):
        return folder  # listed already
    if folder.is_relative_to(project.root) or project.root.is_relative_to(folder):
        raise UnsafePath(
            f"{folder} contains or lies inside the folder of project {project.name}; keep "
            f"crops in {own} or in a folder beside the project."
        )
    with db.transaction(conn):
        raw = db.get_meta(conn, CROP_DIRS_KEY)
        known = [str(p) for p in (json.loads(raw) if raw else [])]
        if str(folder) not in known:
            known.append(str(folder))
            db.set_meta(conn, CROP_DIRS_KEY, json.dumps(known))
    return folder


def may_label(project: Project, folders: Iterable[Path], path: Path) -> bool:
    """True when `path` (links resolved) lies in the project, its source, or a crop folder."""
    resolved = Path(path).resolve()
    if project.is_allowed(resolved):
        return True
    return any(resolved.is_relative_to(Path(f).resolve()) for f in folders)


def _natural_key(rel: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in _NATURAL.split(rel)]


def list_crops(folders: Iterable[Path]) -> list[Path]:
    """Every image under the folders (hidden entries left out), in natural order per folder.

    CAM1_track9 comes before CAM1_track10; a file reachable from two folders is listed once.
    """
    out: list[Path] = []
    seen: set[str] = set()
    for folder in folders:
        found: list[tuple[list[object], Path]] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith(".") or not is_image_name(name):
                    continue
                path = Path(dirpath) / name
                found.append((_natural_key(os.path.relpath(path, folder)), path))
        for _, path in sorted(found, key=lambda item: item[0]):
            if str(path) not in seen:
                seen.add(str(path))
                out.append(path)
    return out


# -- the label store ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlateLabel:
    """One crop's label as stored: the text (or __SKIP__), how it came about, its pre-label."""

    image_path: Path
    text: str
    source: str
    labeled_at: str
    prelabel_text: str | None = None
    prelabel_confidence: float | None = None
    prelabel_engine: str | None = None

    @property
    def skipped(self) -> bool:
        return self.text == SKIP


@dataclass(frozen=True)
class Prelabel:
    """What an OCR engine read on a crop, kept beside the label it led to."""

    text: str
    confidence: float
    engine: str
    char_confidences: tuple[float, ...] = ()


def _label(row: sqlite3.Row) -> PlateLabel:
    return PlateLabel(
        image_path=Path(row["image_path"]),
        text=row["text"],
        source=row["source"],
        labeled_at=row["labeled_at"],
        prelabel_text=row["prelabel_text"],
        prelabel_confidence=row["prelabel_confidence"],
        prelabel_engine=row["prelabel_engine"],
    )


class LabelStore:
    """Plate labels of one project database, on a connection of the calling thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, path: Path | str) -> PlateLabel | None:
        row = self.conn.execute(
            "SELECT * FROM plate_labels WHERE image_path = ?", (str(path),)
        ).fetchone()
        return None if row is None else _label(row)

    def all(self) -> dict[str, PlateLabel]:
        """Every label, keyed by image path (as stored)."""
        rows = self.conn.execute("SELECT * FROM plate_labels ORDER BY image_path")
        return {row["image_path"]: _label(row) for row in rows}

    def save(
        self,
        path: Path | str,
        text: str,
        source: str,
        prelabel: Prelabel | None = None,
    ) -> PlateLabel:
        """Store (or replace) a crop's label, committed before this returns.

        A replacement without a new pre-label keeps the pre-label stored before.
        """
        check_text(text)
        if source not in SOURCES:
            raise ValueError(f"unknown label source {source!r}")
        if not Path(path).is_absolute():
            raise InvalidInput(f"Plate crops are stored by absolute path, not {path}.")
        row = (
            str(path),
            text,
            source,
            iso_utc(),
            prelabel.text if prelabel else None,
            prelabel.confidence if prelabel else None,
            prelabel.engine if prelabel else None,
        )
        # One statement in autocommit mode: committed (WAL) when execute returns.
        self.conn.execute(
            "INSERT INTO plate_labels(image_path, text, source, labeled_at, prelabel_text,"
            " prelabel_confidence, prelabel_engine) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(image_path) DO UPDATE SET text = excluded.text,"
            " source = excluded.source, labeled_at = excluded.labeled_at,"
            " prelabel_text = COALESCE(excluded.prelabel_text, prelabel_text),"
            " prelabel_confidence = COALESCE(excluded.prelabel_confidence, prelabel_confidence),"
            " prelabel_engine = COALESCE(excluded.prelabel_engine, prelabel_engine)",
            row,
        )
        saved = self.get(path)
        assert saved is not None
        return saved


# -- checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspicious:
    """A stored label that looks like a sign, with the reasons."""

    image_path: Path
    text: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"image": str(self.image_path), "text": self.text, "reasons": list(self.reasons)}


def suspicious_labels(
    labels: Iterable[PlateLabel], sign_words: Sequence[str] = DEFAULT_SIGN_WORDS
) -> list[Suspicious]:
    """The labels that fail the contamination checks, in path order."""
    out = []
    for label in sorted(labels, key=lambda lab: str(lab.image_path)):
        reasons = contamination(label.text, sign_words)
        if reasons:
            out.append(Suspicious(label.image_path, label.text, tuple(reasons)))
    return out
