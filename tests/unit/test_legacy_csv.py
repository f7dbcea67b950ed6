"""Legacy decision CSV: strict, all-or-nothing import; export that round-trips exactly."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from workbench.core import legacy_csv
from workbench.core.crops import CropBox
from workbench.core.db import transaction
from workbench.core.decisions import COLUMNS, Decision, insert_decision
from workbench.core.errors import InvalidInput
from workbench.core.legacy_csv import (
    ALL_COLUMNS,
    CSV_COLUMNS,
    CsvImportError,
    import_decisions,
)
from workbench.core.legacy_csv_export import export_decisions
from workbench.core.project import ProjectStore

SEED_HEADER = [
    "group_id", "timestamp", "project_id", "directory", "batch_number",
    "image_1_filename", "image_2_filename", "image_3_filename", "image_4_filename",
    "ai_selected_index", "ai_crop_x1", "ai_crop_y1", "ai_crop_x2", "ai_crop_y2", "ai_confidence",
    "user_selected_index", "user_action",
    "final_crop_x1", "final_crop_y1", "final_crop_x2", "final_crop_y2", "crop_timestamp",
    "image_width", "image_height",
    "selection_match", "crop_match",
]  # fmt: skip


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def project(store, source_dir):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        (source_dir / name).write_bytes(b"png")
    (source_dir / "sub").mkdir()
    (source_dir / "sub" / "a.png").write_bytes(b"png")
    return store.create("p", source_dir)


def good_row(**overrides: str) -> dict[str, str]:
    """A valid row for project 'p' (two images, approve, AI crop), with overrides."""
    row = dict.fromkeys(ALL_COLUMNS, "")
    row.update(
        group_id="p_group_20251021T234530Z_batch001_img000",
        timestamp="2025-10-21T23:45:30Z",
        project_id="p",
        batch_number="1",
        image_1_filename="a.png",
        image_2_filename="b.png",
        ai_selected_index="1",
        ai_crop_x1="0.1",
        ai_crop_y1="0.0",
        ai_crop_x2="0.9",
        ai_crop_y2="0.8",
        ai_confidence="0.87",
        user_selected_index="1",
        user_action="approve",
        image_width="3072",
        image_height="3072",
        selection_match="True",
        ai_crop_accepted="True",
    )
    row.update(overrides)
    return row


def write_csv(
    path: Path, rows: list[dict[str, str]], *, header: list[str] | None = None, eol: str = "\n"
) -> Path:
    header = list(ALL_COLUMNS) if header is None else header
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(c, "") for c in header])
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def db_rows(conn) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ai_decisions ORDER BY group_id")
    ]


def count(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0]


def import_errors(project, conn, path: Path) -> list[dict[str, Any]]:
    with pytest.raises(CsvImportError) as info:
        import_decisions(project, conn, path)
    assert count(conn) == 0, "a failed import must leave nothing behind"
    return info.value.errors


# -- the layout --------------------------------------------------------------------------


def test_columns_are_the_seed_header_plus_ai_crop_accepted_last():
    assert list(CSV_COLUMNS) == SEED_HEADER
    assert len(CSV_COLUMNS) == 26
    assert list(ALL_COLUMNS) == [*SEED_HEADER, "ai_crop_accepted"]


def test_csv_import_error_is_invalid_input_with_errors():
    err = CsvImportError(Path("x.csv"), [{"line": 3, "column": "c", "reason": "Bad."}])
    assert isinstance(err, InvalidInput)
    assert err.code == "invalid_input"
    assert "line 3" in err.message and "column c" in err.message


# -- import: success -------------------------------------------------------------------


def test_import_valid_rows(project, conn, tmp_path):
    rows = [
        good_row(),
        good_row(
            group_id="legacy-id-2",
            directory="sub",
            image_1_filename="a.png",
            image_2_filename="",
            ai_selected_index="0",
            user_selected_index="0",
            user_action="crop",
            final_crop_x1="0.11",
            final_crop_y1="0.0",
            final_crop_x2="0.91",
            final_crop_y2="0.8",
            crop_timestamp="2025-10-21T23:52:15Z",
            crop_match="True",
            ai_crop_accepted="",
        ),
        good_row(
            group_id="g3",
            user_action="reject",
            selection_match="",
            ai_crop_accepted="",
            ai_confidence="",
            batch_number="",
        ),
    ]
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert report.imported == 3
    assert report.warnings == []
    got = {r["group_id"]: dict(r) for r in conn.execute("SELECT * FROM ai_decisions")}
    first = got["p_group_20251021T234530Z_batch001_img000"]
    assert json.loads(first["images"]) == ["a.png", "b.png"]
    assert first["selection_match"] == 1 and first["crop_match"] is None
    assert first["ai_crop_accepted"] == 1
    assert CropBox.from_json(first["ai_crop_coords"]) == CropBox(0.1, 0.0, 0.9, 0.8)
    assert first["directory"] is None
    second = got["legacy-id-2"]
    assert second["directory"] == "sub"
    assert second["crop_match"] == 1 and second["ai_crop_accepted"] is None
    third = got["g3"]
    assert third["selection_match"] is None and third["batch_number"] is None
    assert third["ai_confidence"] is None
    sources = {r[0] for r in conn.execute("SELECT source FROM decision_extras")}
    assert sources == {"import"}
    iou = conn.execute(
        "SELECT final_crop_iou FROM decision_extras WHERE group_id = 'legacy-id-2'"
    ).fetchone()[0]
    assert 0.8 < iou < 1.0


def test_header_without_ai_crop_accepted_is_accepted(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row(ai_crop_accepted="")], header=SEED_HEADER)
    assert import_decisions(project, conn, path).imported == 1
    assert conn.execute("SELECT ai_crop_accepted FROM ai_decisions").fetchone()[0] is None


def test_bom_and_windows_line_endings(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row(), good_row(group_id="g2")], eol="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert import_decisions(project, conn, path).imported == 2


def test_blank_lines_are_skipped(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row()])
    path.write_bytes(path.read_bytes() + b"\n\r\n")
    assert import_decisions(project, conn, path).imported == 1


def test_header_only_imports_nothing(project, conn, tmp_path):
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", []))
    assert report.imported == 0


def test_match_flags_are_recomputed_and_disagreement_warns(project, conn, tmp_path):
    row = good_row(selection_match="False", crop_match="True")
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", [row]))
    stored = conn.execute("SELECT selection_match, crop_match FROM ai_decisions").fetchone()
    assert tuple(stored) == (1, None)
    cols = sorted(w["column"] for w in report.warnings)
    assert cols == ["crop_match", "selection_match"]
    assert all(w["line"] == 2 and w["reason"].endswith(".") for w in report.warnings)


def test_missing_image_is_a_warning_not_an_error(project, conn, tmp_path):
    row = good_row(image_2_filename="gone.png")
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", [row]))
    assert report.imported == 1
    assert report.warnings == [
        {"line": 2, "image": "gone.png", "reason": report.warnings[0]["reason"]}
    ]
    assert "gone.png" in report.warnings[0]["reason"]


def test_absolute_directory_inside_source_is_allowed(project, conn, tmp_path):
    row = good_row(
        directory=str(project.source / "sub"),
        image_2_filename="",
        ai_selected_index="0",
        user_selected_index="0",
    )
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", [row]))
    assert report.imported == 1 and report.warnings == []


def test_ai_crop_accepted_where_it_does_not_apply_warns(project, conn, tmp_path):
    # Seed 002's own example row: a crop of another image with ai_crop_accepted True.
    row = good_row(user_selected_index="0", user_action="crop", selection_match="False")
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", [row]))
    assert report.imported == 1
    assert [w["column"] for w in report.warnings] == ["ai_crop_accepted"]


def test_warnings_are_capped(project, conn, tmp_path, monkeypatch):
    monkeypatch.setattr(legacy_csv, "MAX_WARNINGS", 3)
    rows = [good_row(group_id=f"g{i}", image_1_filename=f"x{i}.png") for i in range(5)]
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert report.imported == 5
    assert len(report.warnings) == 3 and report.warnings_dropped == 2


def test_large_file_streams(project, conn, tmp_path):
    rows = [good_row(group_id=f"g{i:05d}") for i in range(3000)]
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert report.imported == 3000 and count(conn) == 3000


# -- import: errors --------------------------------------------------------------------

BAD_VALUES = [
    ("group_id", "", "group_id"),
    ("group_id", "has\x00nul", "group_id"),
    ("timestamp", "yesterday", "timestamp"),
    ("timestamp", "", "timestamp"),
    ("project_id", "other", "project_id"),
    ("batch_number", "one", "batch_number"),
    ("batch_number", "-1", "batch_number"),
    ("image_1_filename", "", "image_1_filename"),
    ("image_3_filename", "c.png", None),  # image_2 given, image_3 given: fine (see below)
    ("ai_selected_index", "-1", "ai_selected_index"),
    ("ai_selected_index", "4", "ai_selected_index"),
    ("ai_selected_index", "2", "ai_selected_index"),  # only two images
    ("ai_selected_index", "1.0", "ai_selected_index"),
    ("user_selected_index", "", "user_selected_index"),
    ("user_selected_index", "4", "user_selected_index"),
    ("user_selected_index", "x", "user_selected_index"),
    ("ai_crop_x1", "", "ai_crop_x1"),
    ("ai_crop_x2", "nan", "ai_crop_x2"),
    ("ai_crop_x2", "1_0", "ai_crop_x2"),
    ("ai_crop_x2", "0.05", "ai_crop_x1"),  # inverted box
    ("ai_crop_y2", "1.5", "ai_crop_x1"),  # outside [0, 1]
    ("ai_confidence", "1.5", "ai_confidence"),
    ("ai_confidence", "-0.1", "ai_confidence"),
    ("ai_confidence", "inf", "ai_confidence"),
    ("user_action", "delete", "user_action"),
    ("user_action", "", "user_action"),
    ("final_crop_y1", "0.2", "final_crop_x1"),  # one of four given
    ("crop_timestamp", "soon", "crop_timestamp"),
    ("image_width", "0", "image_width"),
    ("image_width", "", "image_width"),
    ("image_height", "-1", "image_height"),
    ("image_height", "3072.0", "image_height"),
    ("image_width", "99999999999999999999999", "image_width"),  # would overflow SQLite
    ("batch_number", "9223372036854775808", "batch_number"),
    ("selection_match", "yes", "selection_match"),
    ("crop_match", "1", "crop_match"),
    ("ai_crop_accepted", "true", "ai_crop_accepted"),
    ("directory", "../..", "directory"),
    ("directory", "/", "directory"),
    ("image_1_filename", "../a.png", "image_1_filename"),
    ("image_1_filename", "sub/../../x.png", "image_1_filename"),
    ("image_1_filename", "..\\x.png", "image_1_filename"),
    ("image_1_filename", "/etc/passwd", "image_1_filename"),
]


@pytest.mark.parametrize(("column", "value", "expected"), BAD_VALUES)
def test_every_bad_value_is_reported_with_line_and_column(
    project, conn, tmp_path, column, value, expected
):
    row = good_row(**{column: value})
    path = write_csv(tmp_path / "d.csv", [good_row(group_id="fine"), row])
    if expected is None:
        assert import_decisions(project, conn, path).imported == 2
        return
    errors = import_errors(project, conn, path)
    assert errors[0]["line"] == 3
    assert errors[0]["column"] == expected
    assert all(e["reason"].endswith(".") for e in errors)


def test_image_gap_is_an_error(project, conn, tmp_path):
    row = good_row(
        image_2_filename="",
        image_3_filename="c.png",
        ai_selected_index="0",
        user_selected_index="0",
        ai_crop_accepted="True",
    )
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", [row]))
    assert errors[0]["column"] == "image_3_filename"


def test_every_error_of_every_row_is_collected(project, conn, tmp_path):
    rows = [
        good_row(group_id="ok1"),
        good_row(group_id="bad1", user_action="delete", image_width="0"),
        good_row(group_id="ok2"),
        good_row(group_id="bad2", project_id="mojo3"),
    ]
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert [(e["line"], e["column"]) for e in errors] == [
        (3, "user_action"),
        (3, "image_width"),
        (5, "project_id"),
    ]


def test_errors_are_capped(project, conn, tmp_path):
    rows = [good_row(group_id=f"g{i}", user_action="nope") for i in range(150)]
    with pytest.raises(CsvImportError) as info:
        import_decisions(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert len(info.value.errors) == legacy_csv.MAX_ERRORS
    assert info.value.truncated
    assert count(conn) == 0


def test_duplicate_group_id_in_file(project, conn, tmp_path):
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", [good_row(), good_row()]))
    assert errors == [{"line": 3, "column": "group_id", "reason": errors[0]["reason"]}]
    assert "line 2" in errors[0]["reason"]


def test_duplicate_group_id_already_in_database(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row()])
    import_decisions(project, conn, path)
    before = db_rows(conn)
    path2 = write_csv(tmp_path / "d2.csv", [good_row(group_id="new"), good_row()])
    with pytest.raises(CsvImportError) as info:
        import_decisions(project, conn, path2)
    assert info.value.errors[0]["line"] == 3
    assert info.value.errors[0]["column"] == "group_id"
    assert db_rows(conn) == before  # "new" was rolled back too


def test_bad_row_rolls_back_rows_before_it(project, conn, tmp_path):
    rows = [good_row(group_id=f"g{i}") for i in range(50)] + [good_row(image_width="x")]
    import_errors(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert conn.execute("SELECT COUNT(*) FROM decision_extras").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ([*SEED_HEADER[:4], "batch", *SEED_HEADER[5:]], "batch_number"),
        (SEED_HEADER[:20], "final_crop_y2"),
        ([*SEED_HEADER, "notes"], "notes"),
        ([*SEED_HEADER, "ai_crop_accepted", "notes"], "notes"),
        ([SEED_HEADER[1], SEED_HEADER[0], *SEED_HEADER[2:]], "group_id"),
    ],
)
def test_bad_header_is_an_error_on_line_1(project, conn, tmp_path, header, column):
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", [], header=header))
    assert errors == [{"line": 1, "column": column, "reason": errors[0]["reason"]}]


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n"])
def test_empty_file(project, conn, tmp_path, content):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    errors = import_errors(project, conn, path)
    assert errors[0]["line"] == 1 and "empty" in errors[0]["reason"]


def test_missing_file_is_invalid_input(project, conn, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        import_decisions(project, conn, tmp_path / "nope.csv")


def test_non_utf8_byte_is_reported_with_line_and_column(project, conn, tmp_path):
    path = write_csv(
        tmp_path / "d.csv", [good_row(), good_row(group_id="g2"), good_row(group_id="g3")]
    )
    data = path.read_bytes().replace(b"g2,", b"g\xe92,")
    path.write_bytes(data)
    errors = import_errors(project, conn, path)
    assert errors == [{"line": 3, "column": "group_id", "reason": errors[0]["reason"]}]
    assert "UTF-8" in errors[0]["reason"]


def test_utf16_file_is_refused(project, conn, tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(",".join(ALL_COLUMNS).encode("utf-16"))
    errors = import_errors(project, conn, path)
    assert "UTF-16" in errors[0]["reason"]


def test_missing_and_extra_fields_on_a_row(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row(), good_row(group_id="g2")])
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 3)[0]  # three fields short
    lines[2] = lines[2] + ",extra"
    path.write_text("\n".join(lines) + "\n")
    errors = import_errors(project, conn, path)
    assert [(e["line"], e["column"]) for e in errors] == [(2, "selection_match"), (3, None)]


def test_quoted_newline_keeps_physical_line_numbers(project, conn, tmp_path):
    rows = [good_row(group_id="two\nlines"), good_row(group_id="g2", user_action="bad")]
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", rows))
    assert [(e["line"], e["column"]) for e in errors] == [(2, "group_id"), (4, "user_action")]


def test_unbalanced_quote_is_an_error(project, conn, tmp_path):
    path = write_csv(tmp_path / "d.csv", [good_row()])
    path.write_bytes(path.read_bytes() + b'"g2,oops\n')
    errors = import_errors(project, conn, path)
    assert errors[-1]["line"] >= 3


def test_overlong_line_is_an_error(project, conn, tmp_path, monkeypatch):
    monkeypatch.setattr(legacy_csv, "MAX_LINE_BYTES", 600)
    path = write_csv(tmp_path / "d.csv", [good_row(), good_row(group_id="x" * 1000)])
    errors = import_errors(project, conn, path)
    assert errors[-1]["line"] == 3 and "longer" in errors[-1]["reason"]


def test_symlinked_directory_leaving_the_source_is_an_error(project, conn, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.png").write_bytes(b"png")
    (project.source / "link").symlink_to(outside)
    row = good_row(
        directory="link", image_2_filename="", ai_selected_index="0", user_selected_index="0"
    )
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", [row]))
    assert errors[0]["column"] == "directory"


# -- export and the round trip --------------------------------------------------------


def _insert_all_kinds(conn) -> None:
    box = CropBox(0.1, 0.1, 0.9, 0.9)
    common = dict(project_id="p", image_width=3072, image_height=2048)
    decisions = [
        # approve the AI's pick with the overlay on: ai_crop_accepted True
        Decision(group_id="p_group_20251021T234530Z_batch001_img000",
                 timestamp="2025-10-21T23:45:30Z", images=["a.png", "b.png"],
                 user_selected_index=1, user_action="approve", directory=None, batch_number=1,
                 ai_selected_index=1, ai_crop=box, ai_confidence=0.1 + 0.2,
                 ai_crop_accepted=True, **common),
        # approve with the overlay off: False
        Decision(group_id="p_group_20251021T234530Z_batch001_img001",
                 timestamp="2025-10-21T23:45:30Z", images=["a.png", "b.png", "c.png"],
                 user_selected_index=2, user_action="approve", directory="sub",
                 batch_number=1, ai_selected_index=2, ai_crop=box, ai_confidence=1 / 3,
                 ai_crop_accepted=False, **common),
        # crop of another image, cropped later, both crops: crop_match computed
        Decision(group_id="legacy_0001", timestamp="2025-10-20T10:00:00Z",
                 images=["a.png", "b.png", "c.png", "d.png"], user_selected_index=3,
                 user_action="crop", directory=None, batch_number=None, ai_selected_index=0,
                 ai_crop=box, ai_confidence=0.0, final_crop=CropBox(0.11, 0.09, 0.91, 0.88),
                 crop_timestamp="2025-10-20T10:05:00Z", **common),
        # crop with no AI at all, not cropped yet
        Decision(group_id="legacy_0002", timestamp="2025-10-20T10:00:00Z", images=["a.png"],
                 user_selected_index=0, user_action="crop", **common),
        # reject
        Decision(group_id="p_group_20251022T080000Z_batch002_img000",
                 timestamp="2025-10-22T08:00:00Z", images=["a.png", "b.png"],
                 user_selected_index=1, user_action="reject", batch_number=2,
                 ai_selected_index=1, ai_crop=CropBox(0.3, 0.0, 0.7, 0.6),
                 ai_confidence=1.0, final_crop=CropBox(0.0, 0.0, 1.0, 1.0), **common),
    ]  # fmt: skip
    with transaction(conn):
        for d in decisions:
            insert_decision(conn, d)


def test_export_layout_order_and_values(project, conn, tmp_path):
    _insert_all_kinds(conn)
    out = tmp_path / "out.csv"
    assert export_decisions(conn, out) == 5
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(ALL_COLUMNS)
    body = [dict(zip(ALL_COLUMNS, r, strict=True)) for r in rows[1:]]
    # timestamp, then group_id
    assert [r["group_id"] for r in body] == [
        "legacy_0001",
        "legacy_0002",
        "p_group_20251021T234530Z_batch001_img000",
        "p_group_20251021T234530Z_batch001_img001",
        "p_group_20251022T080000Z_batch002_img000",
    ]
    first, second, third = body[2], body[3], body[4]
    assert first["ai_confidence"] == repr(0.1 + 0.2)
    assert first["ai_crop_accepted"] == "True" and second["ai_crop_accepted"] == "False"
    assert first["selection_match"] == "True" and first["crop_match"] == ""
    assert first["directory"] == "" and first["image_3_filename"] == ""
    assert third["selection_match"] == "" and third["user_action"] == "reject"
    assert body[1]["ai_selected_index"] == "" and body[1]["ai_crop_x1"] == ""
    assert body[0]["crop_match"] == "True" and body[0]["final_crop_y2"] == "0.88"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv")]


def test_export_without_ai_crop_accepted(project, conn, tmp_path):
    _insert_all_kinds(conn)
    out = tmp_path / "out.csv"
    export_decisions(conn, out, include_ai_crop_accepted=False)
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == SEED_HEADER


def test_export_empty_database_writes_the_header(project, conn, tmp_path):
    out = tmp_path / "out.csv"
    assert export_decisions(conn, out) == 0
    assert out.read_text().strip().split(",") == list(ALL_COLUMNS)


def test_export_replaces_an_existing_file_it_is_asked_to(project, conn, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old content")
    _insert_all_kinds(conn)
    export_decisions(conn, out)
    assert out.read_text().startswith("group_id,")


def test_export_into_missing_folder(project, conn, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        export_decisions(conn, tmp_path / "nope" / "out.csv")


def test_round_trip_reproduces_identical_rows(project, conn, tmp_path):
    _insert_all_kinds(conn)
    out = tmp_path / "out.csv"
    export_decisions(conn, out)

    other = ProjectStore(tmp_path / "other-projects", tmp_path / "other-models")
    twin = other.create("p", project.source)  # same name, so project_id matches
    conn2 = twin.connect()
    try:
        report = import_decisions(twin, conn2, out)
        assert report.imported == 5
        assert not [w for w in report.warnings if "column" in w], report.warnings
        assert db_rows(conn2) == db_rows(conn)
        out2 = tmp_path / "out2.csv"
        export_decisions(conn2, out2)
        assert out2.read_bytes() == out.read_bytes()
    finally:
        conn2.close()


def test_symlinked_image_leaving_the_source_is_an_error(project, conn, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"png")
    (project.source / "b.png").unlink()
    (project.source / "b.png").symlink_to(outside)
    errors = import_errors(project, conn, write_csv(tmp_path / "d.csv", [good_row()]))
    assert [(e["line"], e["column"]) for e in errors] == [(2, "image_2_filename")]


def test_symlinked_image_inside_the_source_is_fine(project, conn, tmp_path):
    (project.source / "b.png").unlink()
    (project.source / "b.png").symlink_to(project.source / "c.png")
    report = import_decisions(project, conn, write_csv(tmp_path / "d.csv", [good_row()]))
    assert report.imported == 1 and report.warnings == []
