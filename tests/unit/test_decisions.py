"""Decision rows: group ids, validation, seed 002's match flags, inserts and final crops."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workbench.core.crops import CropBox, iou
from workbench.core.db import transaction
from workbench.core.decisions import (
    GROUP_ID_RE,
    PROJECT_NAME_RE,
    Decision,
    crop_match,
    decision_from_row,
    insert_decision,
    make_group_id,
    record_final_crop,
    selection_match,
)
from workbench.core.errors import InvalidInput
from workbench.core.project import validate_name

FINALIZED = datetime(2025, 10, 21, 23, 45, 30, tzinfo=UTC)


def make(**overrides) -> Decision:
    fields = dict(
        group_id="p_group_20251021T234530Z_batch001_img000",
        timestamp="2025-10-21T23:45:30Z",
        project_id="p",
        images=["a.png", "b.png", "c.png"],
        user_selected_index=1,
        user_action="approve",
        image_width=3072,
        image_height=3072,
        ai_selected_index=1,
    )
    fields.update(overrides)
    return Decision(**fields)


# -- group ids and project names --------------------------------------------------------


def test_group_id_format_from_seed_002():
    gid = make_group_id("mojo3", FINALIZED, 1, 2)
    assert gid == "mojo3_group_20251021T234530Z_batch001_img002"
    m = GROUP_ID_RE.match(gid)
    assert m and m["project"] == "mojo3" and m["batch"] == "001" and m["pos"] == "002"


def test_group_id_uses_utc():
    local = FINALIZED.astimezone(timezone(timedelta(hours=2)))
    assert make_group_id("p", local, 12, 99) == "p_group_20251021T234530Z_batch012_img099"


def test_group_id_position_counts_from_zero_and_grows_past_three_digits():
    assert make_group_id("p", FINALIZED, 0, 0).endswith("_batch000_img000")
    gid = make_group_id("p", FINALIZED, 1234, 5)
    assert gid.endswith("_batch1234_img005") and GROUP_ID_RE.match(gid)


@pytest.mark.parametrize("name", ["Mojo3", "", "-p", "_p", "p q", "p/q", "../p", "p.q", "ü"])
def test_bad_project_names_are_refused(name):
    assert not PROJECT_NAME_RE.match(name)
    with pytest.raises(InvalidInput):
        make_group_id(name, FINALIZED, 1, 0)
    with pytest.raises(InvalidInput):
        validate_name(name)


@pytest.mark.parametrize("name", ["p", "mojo3", "0x", "a-b_c", "9"])
def test_good_project_names(name):
    assert validate_name(name) == name
    assert make_group_id(name, FINALIZED, 1, 0).startswith(f"{name}_group_")


def test_negative_batch_or_position_is_refused():
    with pytest.raises(InvalidInput):
        make_group_id("p", FINALIZED, -1, 0)
    with pytest.raises(InvalidInput):
        make_group_id("p", FINALIZED, 1, -1)


# -- match flags: seed 002's test scenarios ----------------------------------------------


def test_scenario_2_ai_agrees_with_user():
    assert selection_match("approve", 2, 2) is True
    ai = CropBox(0.1, 0.1, 0.9, 0.9)
    user = CropBox(0.11, 0.09, 0.91, 0.88)
    assert crop_match(ai, user) is True


def test_scenario_3_ai_disagrees_with_user():
    assert selection_match("crop", 1, 3) is False
    ai = CropBox(0.1, 0.1, 0.9, 0.9)
    user = CropBox(0.3, 0.0, 0.7, 0.6)
    assert crop_match(ai, user) is False


@pytest.mark.parametrize(
    ("ai", "user"),
    [
        ((0.1, 0.1, 0.9, 0.9), (0.15, 0.1, 0.9, 0.9)),
        ((0.1, 0.1, 0.9, 0.9), (0.05, 0.05, 0.95, 0.95)),
        ((0.2, 0.3, 0.7, 0.8), (0.25, 0.35, 0.75, 0.85)),
        ((0.0, 0.0, 0.95, 0.95), (0.05, 0.05, 1.0, 1.0)),
    ],
)
def test_exactly_five_percent_counts_as_a_match(ai, user):
    assert crop_match(CropBox(*ai), CropBox(*user)) is True


@pytest.mark.parametrize(
    ("ai", "user"),
    [
        ((0.1, 0.1, 0.9, 0.9), (0.1501, 0.1, 0.9, 0.9)),
        ((0.1, 0.1, 0.9, 0.9), (0.1, 0.1, 0.9, 0.8499)),
    ],
)
def test_just_past_five_percent_is_not_a_match(ai, user):
    assert crop_match(CropBox(*ai), CropBox(*user)) is False


def test_match_flags_are_null_when_not_applicable():
    assert selection_match("reject", 1, 1) is None
    assert selection_match("approve", None, 1) is None
    assert crop_match(None, CropBox(0, 0, 1, 1)) is None
    assert crop_match(CropBox(0, 0, 1, 1), None) is None


def test_decision_derives_its_flags():
    d = make(ai_selected_index=0, user_selected_index=2, user_action="crop")
    assert d.selection_match is False and d.crop_match is None
    d = make(ai_crop=CropBox(0.1, 0.1, 0.9, 0.9), final_crop=CropBox(0.11, 0.09, 0.91, 0.88))
    assert d.selection_match is True and d.crop_match is True
    row = d.row()
    assert list(row)[:3] == ["group_id", "timestamp", "project_id"]
    assert row["selection_match"] is True and row["crop_match"] is True


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"group_id": ""},
        {"user_action": "delete"},
        {"images": []},
        {"images": ["a", "b", "c", "d", "e"]},
        {"user_selected_index": 4},
        {"user_selected_index": -1},
        {"user_selected_index": 3},  # only three images
        {"ai_selected_index": 4},
        {"ai_selected_index": -1},
        {"ai_confidence": 1.5},
        {"ai_confidence": -0.1},
        {"image_width": 0},
        {"image_height": -1},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_validate_refuses_bad_rows(conn, overrides):
    d = make(**overrides)
    with pytest.raises(InvalidInput):
        d.validate()
    with pytest.raises(InvalidInput), transaction(conn):
        insert_decision(conn, d)
    assert conn.execute("SELECT COUNT(*) FROM ai_decisions").fetchone()[0] == 0


# -- writes ------------------------------------------------------------------------------


def test_insert_and_read_back(conn):
    d = make(
        ai_crop=CropBox(0.1, 0.1, 0.9, 0.9),
        ai_confidence=0.87,
        ai_crop_accepted=True,
        directory="/src/faces",
        batch_number=1,
        extras={"ranker_version": "v3", "crop_version": "heuristic"},
    )
    with transaction(conn):
        insert_decision(conn, d)
    row = conn.execute("SELECT * FROM ai_decisions").fetchone()
    assert json.loads(row["images"]) == ["a.png", "b.png", "c.png"]
    assert json.loads(row["ai_crop_coords"]) == [0.1, 0.1, 0.9, 0.9]
    assert row["selection_match"] == 1 and row["crop_match"] is None
    assert row["ai_crop_accepted"] == 1
    extras = conn.execute("SELECT * FROM decision_extras").fetchone()
    assert extras["ranker_version"] == "v3" and extras["crop_version"] == "heuristic"
    assert extras["source"] == "reviewer" and extras["final_crop_iou"] is None
    back = decision_from_row(row)
    assert back.row() == d.row()


def test_insert_of_a_duplicate_group_id_raises_invalid_input(conn):
    with transaction(conn):
        insert_decision(conn, make())
    with pytest.raises(InvalidInput, match="already exists"), transaction(conn):
        insert_decision(conn, make(user_action="reject"))
    assert conn.execute("SELECT user_action FROM ai_decisions").fetchone()[0] == "approve"
    assert conn.execute("SELECT COUNT(*) FROM decision_extras").fetchone()[0] == 1


def test_insert_source_import(conn):
    with transaction(conn):
        insert_decision(conn, make(), source="import")
    assert conn.execute("SELECT source FROM decision_extras").fetchone()[0] == "import"


def test_record_final_crop_sets_crop_fields_and_iou(conn):
    ai = CropBox(0.1, 0.1, 0.9, 0.9)
    with transaction(conn):
        insert_decision(conn, make(user_action="crop", ai_crop=ai))
    final = CropBox(0.11, 0.09, 0.91, 0.88)
    with transaction(conn):
        match = record_final_crop(
            conn, "p_group_20251021T234530Z_batch001_img000", final, when="2025-10-21T23:52:15Z"
        )
    assert match is True
    row = conn.execute("SELECT * FROM ai_decisions").fetchone()
    assert CropBox.from_json(row["final_crop_coords"]) == final
    assert row["crop_timestamp"] == "2025-10-21T23:52:15Z"
    assert row["crop_match"] == 1
    got_iou = conn.execute("SELECT final_crop_iou FROM decision_extras").fetchone()[0]
    assert got_iou == pytest.approx(iou(ai, final))
    assert conn.execute("SELECT COUNT(*) FROM incomplete_crops").fetchone()[0] == 0


def test_record_final_crop_mismatch_lands_in_ai_mistakes(conn):
    with transaction(conn):
        insert_decision(conn, make(user_action="crop", ai_crop=CropBox(0.1, 0.1, 0.9, 0.9)))
        match = record_final_crop(
            conn, "p_group_20251021T234530Z_batch001_img000", CropBox(0.3, 0.0, 0.7, 0.6)
        )
    assert match is False
    row = conn.execute("SELECT crop_match, crop_timestamp FROM ai_decisions").fetchone()
    assert row["crop_match"] == 0
    assert datetime.fromisoformat(row["crop_timestamp"])  # defaults to now, ISO 8601
    assert conn.execute("SELECT COUNT(*) FROM ai_mistakes").fetchone()[0] == 1


def test_record_final_crop_without_ai_crop(conn):
    with transaction(conn):
        insert_decision(conn, make(user_action="crop"))
        match = record_final_crop(
            conn, "p_group_20251021T234530Z_batch001_img000", CropBox(0.2, 0.2, 0.8, 0.8)
        )
    assert match is None
    row = conn.execute("SELECT crop_match, final_crop_coords FROM ai_decisions").fetchone()
    assert row["crop_match"] is None and row["final_crop_coords"] is not None
    assert conn.execute("SELECT final_crop_iou FROM decision_extras").fetchone()[0] is None


def test_record_final_crop_for_unknown_group(conn):
    with pytest.raises(InvalidInput, match="no decision"):
        record_final_crop(conn, "nope", CropBox(0.2, 0.2, 0.8, 0.8))


def test_crop_match_agrees_with_the_stored_coordinates(conn):
    ai = CropBox(0.1, 0.1, 0.9, 0.9)
    final = CropBox(
        0.1500004, 0.1, 0.9, 0.9
    )  # just past 5%: the stored box must give the same flag
    with transaction(conn):
        insert_decision(conn, make(user_action="crop", ai_crop=ai, final_crop=final))
    row = conn.execute("SELECT * FROM ai_decisions").fetchone()
    stored = crop_match(
        CropBox.from_json(row["ai_crop_coords"]), CropBox.from_json(row["final_crop_coords"])
    )
    assert bool(row["crop_match"]) == stored
