"""The GUI shell driven like a user: real key events, waits on state, never fixed sleeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMessageBox

from workbench.app import DEMO_HISTORY_BATCHES, build_window
from workbench.core.demo import generate_demo
from workbench.core.errors import ProjectLocked
from workbench.core.project import ProjectStore

GROUPS = 8


class ScriptedDialogs:
    """Answers the launcher's questions from a script and records what it was told."""

    def __init__(self, *choices: str) -> None:
        self.errors: list[str] = []
        self.choices = list(choices)
        self.asked = 0

    def error(self, text: str) -> None:
        self.errors.append(text)

    def choose_project(self, store: ProjectStore) -> str | None:
        self.asked += 1
        return self.choices.pop(0) if self.choices else None


@pytest.fixture
def demo(tmp_path: Path):
    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    summary = generate_demo(store, groups=GROUPS, plates=2)
    return store, summary


@pytest.fixture
def windows(qtbot):
    """Windows a test opened; closed at the end, with every worker stopped."""
    opened: list = []
    yield opened
    for window in opened:
        window.close()
        assert not window.overview.busy() and not window.reviewer.busy()
        assert not window.session.lock.held


def _open(windows, qtbot, argv, dialogs=None):
    window = build_window(argv, dialogs=dialogs or ScriptedDialogs())
    assert window is not None
    windows.append(window)
    assert window.current_view() is window.reviewer  # the view a project opens on
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # menu shortcuts act in the active window
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_view() is window.overview)
    browser = window.overview.browser
    qtbot.waitUntil(lambda: browser.group_count > 0)
    qtbot.waitUntil(browser.pictures_ready)
    return window


def _names_on_screen(window) -> list[str]:
    labels = [window.findChild(QLabel, f"tileName{i}") for i in range(4)]
    return [label.text() for label in labels if label.isVisibleTo(window)]


def test_arrow_and_page_keys_move_between_groups(qtbot, demo, windows) -> None:
    store, summary = demo
    window = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    browser = window.overview.browser
    expected = [[f.name for f in g.files] for g in summary.groups]
    assert browser.group_count == GROUPS
    assert _names_on_screen(window) == expected[0]
    assert f"Group 1 of {GROUPS}" in browser.header.text()

    steps = [(Qt.Key.Key_Right, 1), (Qt.Key.Key_PageDown, 2), (Qt.Key.Key_PageUp, 1),
             (Qt.Key.Key_Left, 0), (Qt.Key.Key_Left, 0), (Qt.Key.Key_End, GROUPS - 1)]  # fmt: skip
    for key, index in steps:
        qtbot.keyClick(window, key)
        qtbot.waitUntil(lambda i=index: browser.current_index == i)
        qtbot.waitUntil(browser.pictures_ready)
        assert f"Group {index + 1} of {GROUPS}" in browser.header.text()
        assert _names_on_screen(window) == expected[index]
        assert all(t.state == "image" for t in browser.tiles if t.isVisibleTo(browser))


def test_overview_shows_counts_and_skipped_reasons(qtbot, demo, windows) -> None:
    store, summary = demo
    window = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    stats = window.overview.stats
    qtbot.waitUntil(lambda: stats.skipped.count() == 2)
    assert stats.title.text() == "demo"
    assert stats.fields["groups"].text().startswith(f"{GROUPS} in 1 batch")
    assert stats.fields["images"].text() == str(summary.images)
    assert stats.fields["decided"].text().startswith("6 decided")
    assert "crop/ 2" in stats.fields["waiting"].text()
    skipped = [stats.skipped.item(i).text() for i in range(stats.skipped.count())]
    for path, _ in summary.skipped:
        assert any(line.startswith(path.name) and "\n" in line for line in skipped)


def test_unreadable_image_shows_a_placeholder_with_the_reason(qtbot, demo, windows) -> None:
    store, summary = demo
    # the last group is still open: spoil one of its files after the scan
    victim = summary.groups[-1].files[1]
    victim.write_bytes(b"not an image any more")
    window = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    qtbot.keyClick(window, Qt.Key.Key_End)
    browser = window.overview.browser
    qtbot.waitUntil(lambda: browser.current_index == GROUPS - 1)
    qtbot.waitUntil(browser.pictures_ready)
    tile = browser.tiles[1]
    assert tile.file_name == victim.name
    assert tile.state == "error"
    assert "not an image" in tile.message
    assert browser.tiles[0].state == "image"


def test_question_mark_shows_the_key_map(qtbot, demo, windows) -> None:
    store, _ = demo
    window = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    overlay = window.overlay
    assert not overlay.isVisible()
    assert "next group" in window.hints.text()
    qtbot.keyClick(window, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(overlay.isVisible)
    assert any("next group" in line for line in overlay.lines())
    assert any(line.startswith("Ctrl+Q") for line in overlay.lines())
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not overlay.isVisible())
    index = window.overview.browser.current_index
    qtbot.keyClick(window, Qt.Key.Key_F1)
    qtbot.waitUntil(overlay.isVisible)
    qtbot.keyClick(window, Qt.Key.Key_Right)  # closes the map, does not move
    qtbot.waitUntil(lambda: not overlay.isVisible())
    assert window.overview.browser.current_index == index


def test_ctrl_q_quits_and_releases_the_lock(qtbot, demo, windows) -> None:
    store, _ = demo
    window = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    project = store.open("demo")
    with pytest.raises(ProjectLocked):
        project.lock("cli").acquire()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())
    assert not window.session.lock.held
    assert not window.overview.busy()
    project.lock("cli").acquire().release()


def test_locked_project_says_who_holds_it_and_asks_again(qtbot, demo) -> None:
    store, _ = demo
    dialogs = ScriptedDialogs()
    with store.open("demo").lock("cli"):
        window = build_window(["demo", "--projects-dir", str(store.projects_dir)], dialogs=dialogs)
    assert window is None
    assert len(dialogs.errors) == 1
    assert "in use by 'cli'" in dialogs.errors[0]
    assert dialogs.asked == 1  # the user was offered another project


def test_locked_project_then_another_one_opens(qtbot, demo, windows, tmp_path: Path) -> None:
    store, _ = demo
    other_source = tmp_path / "other-src"
    other_source.mkdir()
    store.create("other", other_source)
    dialogs = ScriptedDialogs("other")
    with store.open("demo").lock("cli"):
        window = build_window(["demo", "--projects-dir", str(store.projects_dir)], dialogs=dialogs)
    assert window is not None
    windows.append(window)
    assert window.project.name == "other"
    qtbot.waitUntil(lambda: window.overview.browser.header.text() == "No groups yet")


def test_ctrl_o_switches_to_another_project(qtbot, demo, windows, tmp_path: Path) -> None:
    store, _ = demo
    (tmp_path / "other-src").mkdir()
    store.create("other", tmp_path / "other-src")
    dialogs = ScriptedDialogs("other")
    first = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)], dialogs)
    qtbot.keyClick(first, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not first.isVisible())
    second = first.launcher.window
    windows.append(second)
    assert second is not first and second.project.name == "other" and second.isVisible()
    assert not first.session.lock.held
    store.open("demo").lock("cli").acquire().release()


def test_lock_message_in_a_real_message_box(qtbot, demo) -> None:
    """With the real dialogs: the lock sentence in a QMessageBox, then the project chooser."""
    store, _ = demo
    seen: list[str] = []

    def answer_modal() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, QMessageBox):
            seen.append(modal.text())
            modal.accept()
        elif isinstance(modal, QDialog) and modal.objectName() == "projectChooser":
            seen.append("chooser")
            modal.reject()

    timer = QTimer()
    timer.timeout.connect(answer_modal)
    timer.start(20)
    try:
        with store.open("demo").lock("cli"):
            window = build_window(["demo", "--projects-dir", str(store.projects_dir)])
    finally:
        timer.stop()
    assert window is None
    assert len(seen) == 2 and "in use by 'cli'" in seen[0] and seen[1] == "chooser"


def test_demo_flag_generates_and_opens_the_demo(qtbot, tmp_path: Path, windows) -> None:
    projects = tmp_path / "projects"
    window = _open(windows, qtbot, ["--demo", "--projects-dir", str(projects)])
    assert window.project.name == "demo"
    assert (projects / "demo" / "plates" / "truth.tsv").is_file()
    # The demo's own 24 groups after the earlier batches it decided, which the reviewer
    # skips: it opens on the first group still to decide.
    assert window.overview.browser.group_count == 24 * (1 + DEMO_HISTORY_BATCHES)
    qtbot.waitUntil(lambda: window.reviewer.session is not None)
    assert window.reviewer.session.progress().batch_number == 1 + DEMO_HISTORY_BATCHES
    assert "demo" in window.windowTitle()


def test_without_a_project_the_most_recent_one_opens(qtbot, demo, windows) -> None:
    store, _ = demo
    first = _open(windows, qtbot, ["demo", "--projects-dir", str(store.projects_dir)])
    first.close()
    dialogs = ScriptedDialogs()
    again = _open(windows, qtbot, ["--projects-dir", str(store.projects_dir)], dialogs)
    assert again.project.name == "demo"
    assert dialogs.asked == 0


def test_without_any_project_the_chooser_is_asked(qtbot, tmp_path: Path) -> None:
    dialogs = ScriptedDialogs()
    assert build_window(["--projects-dir", str(tmp_path / "none")], dialogs=dialogs) is None
    assert dialogs.asked == 1 and not dialogs.errors


def test_chooser_creates_and_scans_a_project(qtbot, demo, tmp_path) -> None:
    import shutil

    from workbench.ui.project_chooser import ProjectChooserDialog

    store, summary = demo
    # another project's folder may not be a source: review a copy of the demo photos
    source = shutil.copytree(summary.source, tmp_path / "fresh-photos")
    dialog = ProjectChooserDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.projects.count() == 1
    dialog.name.setText("fresh")
    dialog.source.setText(str(source))
    create = dialog.findChild(type(dialog.open_button), "createButton")
    qtbot.mouseClick(create, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.chosen_name == "fresh"
    conn = store.open("fresh").connect()
    try:
        assert conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0] == GROUPS - len(
            summary.choices
        )
        assert conn.execute("SELECT COUNT(*) FROM scan_skipped").fetchone()[0] == 2
    finally:
        conn.close()


def test_the_installed_qt_binding_is_not_a_known_crasher() -> None:
    from workbench.app import binding_problem

    assert binding_problem() is None


def test_errors_are_sentences() -> None:
    from workbench.core.errors import InvalidInput
    from workbench.ui.crash import sentence

    assert sentence(InvalidInput("Fix the name.")) == "Fix the name."
    text = sentence(ValueError("boom"), Path("/tmp/workbench.log"))
    assert "boom" in text and "/tmp/workbench.log" in text and "Traceback" not in text


def test_every_view_is_in_the_window_and_review_flag_opens_plates(qtbot, demo, windows) -> None:
    store, _ = demo
    argv = ["demo", "--review", "--projects-dir", str(store.projects_dir)]
    window = build_window(argv, dialogs=ScriptedDialogs())
    assert window is not None
    windows.append(window)
    assert window.views.count() == 6 and window.views.widget(0) is window.reviewer
    assert window.current_view() is window.plates and window.plates.state.review
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_view() is window.crop)
