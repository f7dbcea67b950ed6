"""The labeling state machine driven with synthetic keys, no Qt: seed 004's keys and sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.plate_labeling import (
    KEY_BACK,
    KEY_BACKSPACE,
    KEY_END,
    KEY_ENTER,
    KEY_ESCAPE,
    PlateLabeling,
)
from workbench.core.plates import SKIP, LabelStore, Prelabel


@pytest.fixture
def setup(store, source_dir):
    project = store.create("lab", source_dir)
    conn = project.connect()
    crops = [project.root / "plates" / f"CAM1_track{n}.jpg" for n in range(1, 7)]
    yield LabelStore(conn), crops
    conn.close()


def keys(session: PlateLabeling, *presses: str) -> None:
    for key in presses:
        session.handle(key)


def stored(store: LabelStore) -> dict[str, tuple[str, str]]:
    return {Path(p).name: (lab.text, lab.source) for p, lab in store.all().items()}


def test_typing_builds_upper_case_plate_text(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    keys(s, "q", "s", "-", " ", "1", "é", "!", "Q", "S", "z")
    assert s.text == "QS1QSZ" and s.edited
    keys(s, KEY_BACKSPACE, KEY_BACKSPACE)
    assert s.text == "QS1Q"
    s.type_text("ab 12")  # pasted text goes through the same filter
    assert s.text == "QS1QAB12"


def test_enter_saves_and_advances_with_the_right_source(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    for path, text in zip(crops[:3], ("ABC123", "QSX99", "ZZ1"), strict=True):
        s.set_prelabel(path, Prelabel(text, 0.9, "rapidocr", (0.9,) * len(text)))
    assert s.text == "ABC123" and s.showing_prelabel()
    change = s.handle(KEY_ENTER)  # accept the pre-label unchanged
    assert change.kind == "saved" and change.saved.source == "prelabel"
    assert s.current == crops[1] and s.text == "QSX99"
    keys(s, "q", "s", "x", "9", "8", KEY_ENTER)  # typing replaces the pre-label
    keys(s, KEY_END, "7", KEY_ENTER)  # End keeps it and appends
    keys(s, "a", "b", "1", KEY_ENTER)  # no pre-label: typed
    assert stored(store) == {
        "CAM1_track1.jpg": ("ABC123", "prelabel"),
        "CAM1_track2.jpg": ("QSX98", "corrected"),
        "CAM1_track3.jpg": ("ZZ17", "corrected"),
        "CAM1_track4.jpg": ("AB1", "typed"),
    }
    row = store.get(crops[1])
    assert (row.prelabel_text, row.prelabel_confidence, row.prelabel_engine) == (
        "QSX99",
        0.9,
        "rapidocr",
    )
    assert s.counts.labeled == 4 and s.counts.remaining == 2


def test_retyping_the_prelabel_counts_as_accepting_it(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    s.set_prelabel(crops[0], Prelabel("AB12", 0.5, "rapidocr"))
    keys(s, "a", "b", "1", "2", KEY_ENTER)
    assert store.get(crops[0]).source == "prelabel"


def test_enter_on_nothing_asks_and_escape_skips(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    change = s.handle(KEY_ENTER)
    assert change.kind == "none" and "Escape" in change.message and s.current == crops[0]
    assert s.handle(KEY_ESCAPE).saved.text == SKIP
    assert s.current == crops[1] and s.counts.skipped == 1


def test_bracket_goes_back_and_keeps_drafts(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    keys(s, "a", "1", KEY_ENTER, KEY_ESCAPE, "q", "9")  # third crop half typed
    keys(s, KEY_BACK)
    assert s.current == crops[1] and s.text == "" and s.label_of(crops[1]).skipped
    keys(s, KEY_BACK)
    assert s.current == crops[0] and s.text == "A1" and not s.edited
    keys(s, KEY_BACK)  # at the start: nothing happens
    assert s.current == crops[0]
    keys(s, KEY_ENTER)  # unchanged: kept as it was, moves on
    assert store.get(crops[0]).source == "typed"
    keys(s, "b", "2", KEY_ENTER)  # the skipped crop gets a text now
    assert store.get(crops[1]).text == "B2"
    assert s.current == crops[2] and s.text == "Q9" and s.edited  # the draft is back
    keys(s, KEY_ENTER)
    assert stored(store)["CAM1_track3.jpg"] == ("Q9", "typed")


def test_correcting_a_label_after_going_back(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    keys(s, "a", "b", "1", KEY_ENTER, KEY_BACK, "a", "b", "2", KEY_ENTER)
    assert stored(store) == {"CAM1_track1.jpg": ("AB2", "corrected")}


def test_a_new_pass_skips_labeled_crops_and_review_walks_them(setup) -> None:
    store, crops = setup
    store.save(crops[1], "PARKING", "imported")
    store.save(crops[3], SKIP, "typed")
    store.save(crops[4], "XY123", "typed")
    s = PlateLabeling(store, crops)
    assert s.queue == [crops[0], crops[2], crops[5]]
    r = PlateLabeling(store, crops, review=True)
    assert r.queue == [crops[1], crops[3], crops[4]]
    assert r.text == "PARKING" and r.flags == ["no digit", "sign word PARKING"]
    keys(r, "p", "4", "r", "k", KEY_ENTER)
    assert stored(store)["CAM1_track2.jpg"] == ("P4RK", "corrected")
    assert r.text == "" and r.label_of(r.current).skipped  # the skipped one, shown empty
    keys(r, KEY_ENTER, "x", "y", "1", "2", "3", KEY_ENTER)  # untouched or retyped: kept
    assert r.finished and stored(store)["CAM1_track5.jpg"] == ("XY123", "typed")
    r.set_review(True, suspicious_only=True)
    assert r.queue == []  # PARKING was corrected
    r.set_review(False)
    assert r.queue == [crops[0], crops[2], crops[5]] and r.current == crops[0]


def test_save_pending_saves_only_changed_text(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    s.set_prelabel(crops[0], Prelabel("AB1", 0.8, "rapidocr"))
    assert s.save_pending() is None  # an untouched pre-label is not a decision
    keys(s, "e", "x", "i", "t")
    assert s.flags == ["no digit", "sign word EXIT"]
    assert s.save_pending().text == "EXIT"
    assert stored(store) == {"CAM1_track1.jpg": ("EXIT", "corrected")}


def test_prelabels_fill_only_untouched_unlabeled_crops(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    keys(s, "z")
    s.set_prelabel(crops[0], Prelabel("AB1", 0.8, "rapidocr"))
    assert s.text == "Z"  # the user's typing wins
    assert s.pending_prelabels(3) == crops[1:4]
    s.set_prelabel(crops[1], Prelabel("", 0.0, ""))  # unreadable: no pre-label, not asked again
    assert s.prelabel_of(crops[1]) is None and s.pending_prelabels(1) == [crops[2]]


def test_new_crops_join_the_queue(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops[:2])
    keys(s, "a", "1", KEY_ENTER, "b", "2", KEY_ENTER)
    assert s.finished
    s.refresh(crops[:4])
    assert s.current == crops[2] and s.counts.remaining == 2
    assert s.recent(5) == [(crops[0], s.label_of(crops[0])), (crops[1], s.label_of(crops[1]))]


def test_a_crop_that_cannot_be_read_can_only_be_skipped(setup) -> None:
    store, crops = setup
    s = PlateLabeling(store, crops)
    s.set_unreadable(crops[0], "Cannot load CAM1_track1.jpg: empty file.")
    change = s.handle("a")
    assert change.kind == "none" and "cannot be labeled" in change.message and s.text == ""
    change = s.handle(KEY_ENTER)
    assert change.kind == "none" and "Escape" in change.message and s.current == crops[0]
    assert stored(store) == {}
    assert s.handle(KEY_ESCAPE).saved.text == SKIP
    keys(s, "a", "b", "1", KEY_ENTER)  # the next crop is labeled as usual
    assert stored(store)["CAM1_track2.jpg"] == ("AB1", "typed")
