"""Export of the legacy decision CSV: seed 002's 26 columns plus `ai_crop_accepted`.

The layout is the one `legacy_csv.import_decisions` reads, so import(export(db))
reproduces the `ai_decisions` rows exactly.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from workbench.core.decisions import COLUMNS
from workbench.core.errors import InvalidInput, WorkbenchError
from workbench.core.legacy_csv import ALL_COLUMNS, CSV_COLUMNS
from workbench.core.safe_io import fsync_dir


def _num(value: Any) -> str:
    """A number written so that float() reads back the identical value."""
    if isinstance(value, bool):
        raise ValueError("a Boolean where a number belongs")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _bool_out(value: Any) -> str:
    if value is None:
        return ""
    if value in (0, 1):  # SQLite stores Booleans as 0/1
        return "True" if value else "False"
    raise ValueError(f"{value!r} is not a Boolean")


def _crop_out(text: str | None) -> list[str]:
    if text is None or text == "":
        return ["", "", "", ""]
    values = json.loads(text)
    if not isinstance(values, list) or len(values) != 4:
        raise ValueError(f"crop {text!r} is not four numbers")
    return [_num(v) for v in values]


def _export_row(row: sqlite3.Row | tuple[Any, ...], include_accepted: bool) -> list[str]:
    r = dict(zip(COLUMNS, row, strict=True))
    images = json.loads(r["images"])
    if not isinstance(images, list) or not 1 <= len(images) <= 4:
        raise ValueError(f"images {r['images']!r} is not a list of 1 to 4 file names")

    def opt(v: Any) -> str:
        return "" if v is None else str(v)

    out = [
        r["group_id"],
        r["timestamp"],
        r["project_id"],
        opt(r["directory"]),
        opt(r["batch_number"]),
        *[str(n) for n in images],
        *[""] * (4 - len(images)),
        opt(r["ai_selected_index"]),
        *_crop_out(r["ai_crop_coords"]),
        "" if r["ai_confidence"] is None else _num(r["ai_confidence"]),
        str(r["user_selected_index"]),
        r["user_action"],
        *_crop_out(r["final_crop_coords"]),
        opt(r["crop_timestamp"]),
        str(r["image_width"]),
        str(r["image_height"]),
        _bool_out(r["selection_match"]),
        _bool_out(r["crop_match"]),
    ]
    if include_accepted:
        out.append(_bool_out(r["ai_crop_accepted"]))
    return out


def export_decisions(
    conn: sqlite3.Connection, out_path: Path, *, include_ai_crop_accepted: bool = True
) -> int:
    """The number of rows written to `out_path` as a decision CSV, ordered by timestamp, group_id.

    Written to a temporary name, fsynced and renamed into place, so a reader never sees half
    a file. Rows are streamed from the database, not held in memory.
    """
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise InvalidInput(f"The folder {out_path.parent} does not exist; create it first.")
    columns = ALL_COLUMNS if include_ai_crop_accepted else CSV_COLUMNS
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    count = 0
    group_id = None
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            cursor = conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ai_decisions ORDER BY timestamp, group_id"
            )
            for row in cursor:
                group_id = row[0]
                writer.writerow(_export_row(row, include_ai_crop_accepted))
                count += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out_path)
    except (ValueError, TypeError) as exc:
        tmp.unlink(missing_ok=True)
        raise WorkbenchError(
            f"The decision {group_id!r} in the database is damaged ({exc}); nothing was exported."
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out_path.parent)
    return count
