"""The AI performance view: agreement per batch, the models behind it, mistakes, PNG export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.ui.conftest import give_history
from workbench.core.decisions import Decision, insert_decision, make_group_id
from workbench.ml.training.synthetic import make_rule_project
from workbench.ui.main_window import MainWindow
from workbench.ui.performance.data import read_performance
from workbench.ui.session import open_session

GROUPS, BATCHES = 60, 6
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def history(store):
    project = make_rule_project(store, "h", GROUPS, size=(96, 72))
    give_history(project, BATCHES)
    return project


@pytest.fixture
def opened(qtbot, store):
    windows: list[MainWindow] = []

    def open_(name: str) -> MainWindow:
        window = MainWindow(open_session(store, name))
        windows.append(window)
        window.show()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        with qtbot.waitSignal(window.performance.refreshed, timeout=10_000):
            qtbot.keyClick(window, Qt.Key.Key_6, CTRL)
        assert window.current_view() is window.performance
        return window

    yield open_
    for window in windows:
        window.close()
        assert not window.performance.busy()


def test_the_sql_counts_each_batch_like_the_views(history) -> None:
    conn = history.connect()
    try:
        rows = conn.execute("SELECT batch_number, selection_match, crop_match FROM ai_decisions").fetchall()
        overall = conn.execute("SELECT selection_accuracy, crop_accuracy FROM ai_performance").fetchone()
    finally:
        conn.close()
    perf = read_performance(history)
    assert [b.batch for b in perf.batches] == list(range(1, BATCHES + 1))
    for b in perf.batches:
        mine = [r for r in rows if r[0] == b.batch]
        assert b.decisions == len(mine)
        assert b.selection_correct == sum(r[1] == 1 for r in mine)
        assert b.selection_judged == sum(r[1] is not None for r in mine)
        assert b.crop_correct == sum(r[2] == 1 for r in mine)
    assert (perf.selection_accuracy, perf.crop_accuracy) == tuple(overall)
    assert perf.batches[0].ranker_versions == ("heuristic",)
    assert perf.batches[-1].ranker_versions == ("v2",)
    assert perf.mistakes_total == sum(r[1] == 0 or r[2] == 0 for r in rows)
    newest = perf.mistakes[0]
    assert newest.user_path.is_file() and newest.batch == BATCHES


def test_chart_table_and_mistakes_show_the_ai_getting_better(history, opened, qtbot) -> None:
    window = opened("h")
    view = window.performance
    perf = read_performance(history)
    assert view.chart.points("selection") == BATCHES and view.chart.points("crop") == BATCHES
    assert len(view.chart.markers) == 2  # v1 and v2 came in, each for ranker and crop at once
    assert view.table.rowCount() == BATCHES
    newest = [view.table.item(0, c).text() for c in range(view.table.columnCount())]
    assert newest[0] == str(BATCHES) and newest[4] == "v2" and newest[5] == "v2"
    assert f"picks {perf.selection_accuracy * 100:.0f}% of {GROUPS} decisions" in view.summary.text()
    assert view.mistakes.count() == len(perf.mistakes) > 0
    assert f"({perf.mistakes_total}" in view.mistakes_title.text()
    qtbot.waitUntil(view.pictures_ready, timeout=10_000)
    qtbot.waitUntil(lambda: not view.mistakes.item(0).icon().pixmap(16, 16).isNull())
    first = perf.mistakes[0]
    assert f"Batch {first.batch}" in view.mistakes.item(0).text()


def test_ctrl_e_exports_the_chart_as_png_into_exports(history, opened, qtbot) -> None:
    window = opened("h")
    view = window.performance
    paths = []
    for _ in range(2):
        with qtbot.waitSignal(view.exported, timeout=10_000) as exported:
            qtbot.keyClick(window, Qt.Key.Key_E, CTRL)
        paths.append(Path(exported.args[0]))
    assert paths[0] != paths[1]  # a second export never overwrites the first
    for path in paths:
        assert path.parent == history.folder("exports") and path.suffix == ".png"
        image = QImage(str(path))
        assert not image.isNull() and image.width() > 300 and image.height() > 200
    assert str(paths[-1]) in window.statusBar().currentMessage()


def test_a_new_batch_shows_when_the_view_is_shown_again(history, opened, qtbot) -> None:
    window = opened("h")
    view = window.performance
    conn = history.connect()
    try:
        with conn:
            when = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
            image = next(history.source.glob("*.png"))
            insert_decision(conn, Decision(
                group_id=make_group_id("h", when, BATCHES + 1, 0), timestamp=when.isoformat(),
                project_id="h", images=[str(image)], user_selected_index=0, user_action="approve",
                image_width=96, image_height=72, batch_number=BATCHES + 1, ai_selected_index=0,
            ), source="reviewer")  # fmt: skip
    finally:
        conn.close()
    qtbot.keyClick(window, Qt.Key.Key_1, CTRL)
    qtbot.waitUntil(lambda: window.current_view() is window.reviewer)
    with qtbot.waitSignal(view.refreshed, timeout=10_000):
        qtbot.keyClick(window, Qt.Key.Key_6, CTRL)
    assert view.chart.points("selection") == BATCHES + 1
    assert view.table.item(0, 0).text() == str(BATCHES + 1)


def test_a_project_without_decisions_says_so(store, source_dir, opened) -> None:
    store.create("empty", source_dir)
    window = opened("empty")
    view = window.performance
    assert view.summary.text().startswith("No decisions yet")
    assert view.chart.points("selection") == 0 and view.table.rowCount() == 0
    assert view.mistakes.item(0).text().startswith("None")
