"""The plates view in the main window, driven like a user: real key events, waits on state."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication

from workbench.core.plates import SKIP, LabelStore
from workbench.core.plates_io import export_labels_txt
from workbench.ml.ocr.engines import PlateResult
from workbench.ui.main_window import MainWindow
from workbench.ui.plates import PlatesView
from workbench.ui.session import open_session

DAY = "2025-07-05"


@pytest.fixture
def crops(store, source_dir) -> list[Path]:
    """Six crops in <project>/plates/<day>/CAM1_trackN.jpg, as the camera writes them."""
    project = store.create("cars", source_dir)
    folder = project.root / "plates" / DAY
    folder.mkdir(parents=True)
    out = []
    for n in range(1, 7):
        Image.new("RGB", (90, 30), (200, 200 - 20 * n, 60)).save(folder / f"CAM1_track{n}.jpg")
        out.append(folder / f"CAM1_track{n}.jpg")
    return out


class FakeReader:
    """Pre-labels from a table (no model); an absent crop reads as an error."""

    def __init__(self, texts: dict[str, str], gate: threading.Event | None = None) -> None:
        self.texts, self.gate, self.calls = texts, gate, 0

    def __call__(self, paths: list[Path]) -> list[PlateResult]:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        out = []
        for p in paths:
            text = self.texts.get(p.name, "")
            out.append(PlateResult(text, 0.8, ([0.95, 0.7, 0.4, 0.99] * 3)[: len(text)], "fake", "t1",
                                   image=str(p), error=None if text else "no plate here"))  # fmt: skip
        return out


@pytest.fixture
def opened(qtbot, store):
    """open(reader, review=False) -> (window, view): the plates view added to a main window."""
    windows: list[MainWindow] = []

    def open_(reader=None, *, review: bool = False) -> tuple[MainWindow, PlatesView]:
        window = MainWindow(open_session(store, "cars"))
        windows.append(window)
        view = PlatesView(window.project, window, review=review, reader=reader)
        window.add_view(view, "Ctrl+7")
        window.show_view(view)
        window.show()
        qtbot.waitUntil(lambda: view.isVisible())
        return window, view

    yield open_
    for window in windows:
        window.close()
        assert not window.session.lock.held


def rows(store) -> dict[str, tuple[str, str]]:
    conn = store.open("cars").connect()
    try:
        return {Path(p).name: (lab.text, lab.source) for p, lab in LabelStore(conn).all().items()}
    finally:
        conn.close()


def test_typing_saving_skipping_going_back_and_ctrl_q(
    qtbot, store, crops, opened, tmp_path
) -> None:
    reader = FakeReader({"CAM1_track1.jpg": "ABC123", "CAM1_track2.jpg": "QS4X",
                         "CAM1_track5.jpg": "ZZ9"})  # fmt: skip
    window, view = opened(reader)
    # Another view's one-letter shortcuts must never fire while typing plates.
    fired: list[str] = []
    for letter in ("Q", "S"):
        action = QAction(letter, window)
        action.setShortcut(QKeySequence(letter))
        action.triggered.connect(lambda checked=False, name=letter: fired.append(name))
        window.addAction(action)
    qtbot.waitUntil(lambda: view.state.text == "ABC123")
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view)  # keys land here
    assert view.field.replaceable and view.field.char_confidences[:2] == [0.95, 0.7]
    assert "pre-label ABC123 · fake · 80%" in view.prelabel_line.text()

    qtbot.keyClick(view, Qt.Key.Key_Return)  # accept the pre-label as it is
    qtbot.waitUntil(lambda: view.state.current == crops[1])
    assert view.state.text == "QS4X"
    qtbot.keyClicks(view, "qs45")  # lower case, Q and S: text, replacing the pre-label
    assert view.state.text == "QS45" and fired == []
    qtbot.keyClick(view, Qt.Key.Key_Enter)  # the keypad's Enter saves too
    qtbot.keyClicks(view, "s-q 9!")  # no pre-label here; other characters are ignored
    assert view.state.text == "SQ9"
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    qtbot.keyClicks(view, "77")
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.keyClick(view, Qt.Key.Key_Escape)  # track4 skipped
    assert "labeled 3 · skipped 1 · remaining 2" == view.counters.text()
    qtbot.keyClick(view, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(view, Qt.Key.Key_BracketLeft)
    assert view.state.current == crops[2] and view.state.text == "SQ77"
    qtbot.keyClicks(view, "SQ78")
    qtbot.keyClick(view, Qt.Key.Key_Return)  # corrected; now back on the skipped crop
    assert view.state.current == crops[3] and "stored: __SKIP__" in view.prelabel_line.text()
    qtbot.keyClick(view, Qt.Key.Key_Return)  # untouched: stays skipped
    assert view.state.current == crops[4]
    qtbot.keyClicks(view, "exit")
    assert "no digit" in view.flags.text() and "sign word EXIT" in view.flags.text()
    assert [caption.text() for caption in
            (view.strip.findChild(type(view.header), f"recentLabel{i}") for i in range(4))] == [
        "ABC123", "QS45", "SQ78", "skipped"]  # fmt: skip
    assert fired == []

    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # save and quit
    qtbot.waitUntil(lambda: not window.isVisible())
    assert rows(store) == {
        "CAM1_track1.jpg": ("ABC123", "prelabel"),
        "CAM1_track2.jpg": ("QS45", "corrected"),
        "CAM1_track3.jpg": ("SQ78", "corrected"),
        "CAM1_track4.jpg": (SKIP, "typed"),
        "CAM1_track5.jpg": ("EXIT", "corrected"),
    }

    labels = tmp_path / "labels.txt"
    labels.write_text("/earlier/crop.jpg\tOLD123\n")
    conn = store.open("cars").connect()
    try:
        assert export_labels_txt(conn, labels).written == 5
        assert export_labels_txt(conn, labels).written == 0  # appended once, no duplicates
    finally:
        conn.close()
    lines = labels.read_text().splitlines()
    assert lines[0] == "/earlier/crop.jpg\tOLD123"
    assert lines[1:] == [f"{p}\t{t}" for p, t in zip(crops[:5], ["ABC123", "QS45", "SQ78", SKIP, "EXIT"],
                                                    strict=True)]  # fmt: skip


def test_a_new_pass_skips_labeled_crops_and_review_corrects(qtbot, store, crops, opened) -> None:
    conn = store.open("cars").connect()
    try:
        labels = LabelStore(conn)
        labels.save(crops[0], "PARKING", "imported")
        labels.save(crops[2], "AB12", "typed")
    finally:
        conn.close()
    window, view = opened(FakeReader({}), review=True)
    assert view.review_box.isChecked() and view.header.text().startswith("Review · crop 1 of 2")
    assert view.state.text == "PARKING" and "sign word PARKING" in view.flags.text()
    qtbot.keyClicks(view, "p4rk1")
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert view.state.current == crops[2] and view.state.text == "AB12"
    elsewhere: list[bool] = []  # another view's window-wide Ctrl+R must not take the key
    action = QAction("other view's Ctrl+R", window)
    action.setShortcut(QKeySequence("Ctrl+R"))
    action.triggered.connect(lambda: elsewhere.append(True))
    window.addAction(action)
    qtbot.keyClick(view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # a new pass
    assert not view.review_box.isChecked() and elsewhere == []
    assert view.state.queue == [crops[1], *crops[3:]]
    qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # suspicious only
    assert view.state.review and view.state.queue == []  # PARKING was corrected
    qtbot.keyClick(view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert not view.crop.nearest
    window.close()
    assert rows(store)["CAM1_track1.jpg"] == ("P4RK1", "corrected")


def test_prelabeling_in_the_background_never_blocks_typing(qtbot, store, crops, opened) -> None:
    gate = threading.Event()
    reader = FakeReader({p.name: f"XY{n}" for n, p in enumerate(crops, 1)}, gate)
    window, view = opened(reader)
    try:
        qtbot.waitUntil(lambda: reader.calls == 1)  # the reader is stuck in its thread
        assert "pre-labeled 0 of 6" in view.status.text()
        assert "reading…" in view.prelabel_line.text()
        qtbot.keyClicks(view, "ab")
        assert view.state.text == "AB"
        gate.set()
        qtbot.waitUntil(lambda: "pre-labeled 6 of 6" in view.status.text())
        assert view.state.text == "AB"  # typing wins over a late pre-label
        qtbot.keyClick(view, Qt.Key.Key_Return)
        assert view.state.text == "XY2"
    finally:
        gate.set()


def test_rapidocr_prelabels_crops_and_enter_accepts(qtbot, store, source_dir, opened) -> None:
    from tests.unit.test_ocr import render_plate

    project = store.create("cars", source_dir)
    folder = project.root / "plates" / DAY
    folder.mkdir(parents=True)
    truths = ["KX42ZP", "7TRB93"]
    for n, text in enumerate(truths, 1):
        render_plate(text, folder / f"CAM1_track{n}.png", yellow=n == 2)
    window, view = opened()  # the real predictor: rapidocr's recognizer
    qtbot.waitUntil(lambda: "pre-labeled 2 of 2" in view.status.text(), timeout=30_000)
    assert view.state.text == truths[0]
    assert len(view.field.char_confidences) == len(truths[0])
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    window.close()
    assert rows(store) == {"CAM1_track1.png": (truths[0], "prelabel"),
                           "CAM1_track2.png": (truths[1], "prelabel")}  # fmt: skip


def test_an_unreadable_crop_says_why_and_can_be_skipped(qtbot, store, crops, opened) -> None:
    crops[0].write_bytes(b"\xff\xd8 this is no jpeg")
    window, view = opened(FakeReader({}))
    assert "Cannot load" in view.crop.message
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert "Escape" in view.status.text() and view.state.current == crops[0]
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    window.close()
    assert rows(store) == {"CAM1_track1.jpg": (SKIP, "typed")}


def test_a_crop_that_cannot_be_read_is_skipped_not_labeled(qtbot, store, crops, opened) -> None:
    crops[0].write_bytes(b"")  # the camera wrote an empty file
    window, view = opened(FakeReader({}))
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view)
    assert view.state.current == crops[0] and str(crops[0]) in view.state.unreadable
    qtbot.keyClicks(view, "ab12")
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert rows(store) == {} and view.state.current == crops[0]
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert rows(store) == {"CAM1_track1.jpg": (SKIP, "typed")}
    assert view.state.current == crops[1]
