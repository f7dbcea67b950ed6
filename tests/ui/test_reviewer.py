"""The reviewer view driven like a user: real key events, waits on state, never fixed sleeps.

The project is built from small PNGs in which exactly one image per group is sharp, so the
heuristic AI picks it and proposes a crop around the drawn subject. What the AI proposed
is read from the screen (the tiles), and the expected routing is computed here from
ARCHITECTURE.md's table, independently of core/finalize.py.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLineEdit

from workbench.app import build_window
from workbench.core.project import ROUTING_FOLDERS, Project, ProjectStore
from workbench.core.scan_store import scan_project
from workbench.core.sidecar import read_sidecar, sidecar_path

# Batch 1 (10 groups): (group size, index of the sharp image = the AI's pick, keys pressed).
PLAN = [
    (2, 0, ["1"]),  # the AI's pick, overlay on -> crop_auto/ + sidecar, accepted True
    (3, 1, ["T", "2"]),  # the AI's pick, overlay off -> selected/, accepted False
    (3, 0, ["3"]),  # another image -> selected/, accepted NULL
    (4, 1, ["4"]),
    (2, 0, ["Q"]),  # crop: crop/ + sidecar
    (3, 2, ["W"]),
    (4, 0, ["E"]),
    (4, 3, ["R"]),
    (3, 1, ["X"]),  # reject: everything to delete_staging/
    (2, 1, ["Left", "Right", "1", "Ctrl+Z", "2"]),  # undo a choice, then the AI's pick
]
BATCH_2 = [(2, 0), (3, 2)]


def shot(group: int, sharp: bool) -> Image.Image:
    """A small photo-like frame: sky-to-grass gradient, a red subject, a few highlights."""
    w, h = 240, 180
    t = np.linspace(0, 1, h)[:, None, None]
    sky = (np.array([60, 110, 190]) * (1 - t) + np.array([40, 120, 60]) * t) * np.ones((h, w, 3))
    img = Image.fromarray(sky.astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy = 60 + group * 11 % 120, 50 + group * 7 % 60
    d.ellipse((cx, cy, cx + 50, cy + 60), fill=(230, 90, 60))
    for k in range(30):
        x, y = (k * 37 + group * 13) % w, (k * 53) % h
        d.rectangle((x, y, x + 3, y + 3), fill=(250, 250, 250))
    noisy = np.asarray(img, np.float32) + np.random.default_rng(group).normal(0, 2, (h, w, 3))
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return img if sharp else img.filter(ImageFilter.GaussianBlur(2.5))


def make_project(store: ProjectStore, source: Path) -> Project:
    """Groups by time: 2 s apart inside a group, 5 min between groups; batches of 10."""
    source.mkdir()
    start = datetime(2025, 7, 5, 22, 0, 0)
    for g, (n, sharp) in enumerate([(n, s) for n, s, _ in PLAN] + BATCH_2):
        for i in range(n):
            stamp = start + timedelta(minutes=5 * g, seconds=2 * i)
            shot(g, i == sharp).save(source / f"{stamp:%Y%m%d_%H%M%S}_shot.png")
    project = store.create("rev", source, batch_size=len(PLAN))
    conn = project.connect()
    try:
        assert scan_project(project, conn).groups == len(PLAN) + len(BATCH_2)
    finally:
        conn.close()
    return project


class NoDialogs:
    def error(self, text: str) -> None:
        raise AssertionError(text)

    def choose_project(self, store: ProjectStore) -> None:
        return None


@pytest.fixture
def project(tmp_path: Path) -> Project:
    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    return make_project(store, tmp_path / "photos")


@pytest.fixture
def opened(qtbot):
    """Opens the GUI on a project; at the end closes every window: no worker left running."""
    windows: list = []

    def open_window(project: Project):
        argv = [project.name, "--projects-dir", str(project.root.parent)]
        window = build_window(argv, dialogs=NoDialogs())
        assert window is not None and window.current_view() is window.reviewer
        windows.append(window)
        window.resize(1280, 720)
        qtbot.waitUntil(lambda: shown(window.reviewer))
        return window

    yield open_window
    for window in windows:
        window.close()
        view = window.reviewer
        assert not view.busy() and view.prefetcher.active_threads() == 0
        assert not window.session.lock.held


def shown(view) -> bool:
    """The current group is painted: every picture (or its placeholder) and the AI's pick."""
    group = view.current_group()
    if group is None:
        return True
    tiles = view.row.visible_tiles()
    return (
        len(tiles) == len(group.images)
        and all(t.state in ("image", "error") for t in tiles)
        and (group.proposal is not None or group.staged is not None)
    )


def press(qtbot, view, key: str) -> None:
    """A real key event for a key as the state machine names it ("2", "Ctrl+Return")."""
    combo = QKeySequence(key)[0]
    qtbot.keyClick(view, combo.key(), combo.keyboardModifiers())
    qtbot.waitUntil(lambda: shown(view))


def query(project: Project, sql: str, *args: object) -> list[sqlite3.Row]:
    conn = project.connect()
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def expected_route(action: str, user: int, ai: int | None, crop: bool, overlay: bool):
    """ARCHITECTURE.md's routing table: (folder of the chosen image, ai_crop_accepted)."""
    if action == "reject":
        return "delete_staging", None
    if action == "crop":
        return "crop", None
    if user == ai and crop:
        return ("crop_auto", True) if overlay else ("selected", False)
    return "selected", None


def folder_names(project: Project) -> dict[str, set[str]]:
    return {f: set(os.listdir(project.folder(f))) for f in ROUTING_FOLDERS}


def decide_batch(qtbot, view) -> list[dict]:
    """Press PLAN's keys; returns what each group looked like and what was chosen."""
    seen = []
    for g, (n, sharp, keys) in enumerate(PLAN):
        group = view.current_group()
        assert group.index == g and len(group.images) == n
        tiles = view.row.visible_tiles()
        ai = [t.index for t in tiles if t.model.ai_pick]
        assert ai == [sharp], f"group {g}: the AI should pick the sharp image"
        assert tiles[sharp].model.ai_label.startswith("AI pick ")
        assert tiles[sharp].model.crop is not None  # drawn: the overlay starts on
        assert all(t.model.crop is None for t in tiles if t.index != sharp)
        entry = {"pk": group.pk, "paths": list(group.paths), "ai": sharp, "crop": True}
        for key in keys:
            press(qtbot, view, key)
            if key == "T":
                assert not view.current_group().overlay_on
                assert view.row.tiles[sharp].model.crop is None  # the overlay is off
        staged = next(s for s in view.session.groups() if s.pk == group.pk)
        action, user = staged.staged.user_action, staged.staged.user_selected_index
        entry.update(action=action, user=user, overlay=staged.overlay_on, route=staged.route)
        seen.append(entry)
    return seen


def test_a_batch_decided_with_every_key_routes_like_the_table(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    assert "Group 1 / 10 of batch 1" in view.status.progress
    source_before = set(os.listdir(project.source))
    seen = decide_batch(qtbot, view)
    assert [(e["action"], e["user"]) for e in seen] == [
        ("approve", 0), ("approve", 1), ("approve", 2), ("approve", 3), ("crop", 0),
        ("crop", 1), ("crop", 2), ("crop", 3), ("reject", 1), ("approve", 1)]  # fmt: skip
    assert view.status.message == "Batch complete: Ctrl+Enter finalizes"
    assert "10 decided in this batch" in view.status.progress
    # On screen: the staged choice and where it will go.
    tiles = view.row.visible_tiles()
    assert tiles[1].model.mark == "✓ keep with the AI crop → crop_auto/"
    assert tiles[0].model.mark == "→ delete_staging/"

    press(qtbot, view, "Ctrl+Return")
    assert view.status.message.startswith("Batch 1 finalized: ")
    assert "Group 1 / 2 of batch 2" in view.status.progress
    for e in seen:
        folder, accepted = expected_route(e["action"], e["user"], e["ai"], e["crop"], e["overlay"])
        assert e["route"] == folder
        (row,) = query(project, "SELECT d.* FROM ai_decisions d JOIN groups g"
                       " ON g.group_id = d.group_id WHERE g.id = ?", e["pk"])  # fmt: skip
        chosen = e["user"] if e["action"] != "reject" else e["ai"]
        assert (row["user_action"], row["user_selected_index"]) == (e["action"], chosen)
        assert row["ai_selected_index"] == e["ai"] and row["ai_crop_coords"]
        assert row["ai_crop_accepted"] == (None if accepted is None else int(accepted))
        match = None if e["action"] == "reject" else int(e["user"] == e["ai"])
        assert row["selection_match"] == match
        for i, original in enumerate(e["paths"]):
            where = folder if i == chosen else "delete_staging"
            moved = project.folder(where) / original.name
            assert moved.is_file() and not original.exists(), (e, i)
            car = sidecar_path(moved)
            assert car.exists() == (i == chosen and where in ("crop", "crop_auto"))
            if car.exists():
                sidecar = read_sidecar(car, project=project)
                assert sidecar.group_id == row["group_id"]
                assert sidecar.needs_crop == (where == "crop")
                assert sidecar.ai_crop_coords is not None  # the AI gave a crop each time
    counts = query(project, "SELECT user_action, COUNT(*) FROM ai_decisions GROUP BY 1")
    assert dict(map(tuple, counts)) == {"approve": 5, "crop": 4, "reject": 1}
    assert folder_names(project)["crop_auto"] == {
        seen[0]["paths"][0].name, sidecar_path(seen[0]["paths"][0]).name,
        seen[9]["paths"][1].name, sidecar_path(seen[9]["paths"][1]).name}  # fmt: skip
    assert seen[1]["paths"][1].name in folder_names(project)["selected"]

    # Ctrl+Z undoes the finalize: files, rows and sidecars back, the batch open again.
    press(qtbot, view, "Ctrl+Z")
    assert view.status.message.startswith("Finalize undone: 10 group(s)")
    assert "Group 10 / 10 of batch 1" in view.status.progress
    assert set(os.listdir(project.source)) == source_before
    assert all(not names for names in folder_names(project).values())
    assert query(project, "SELECT COUNT(*) FROM ai_decisions")[0][0] == 0
    assert query(project, "SELECT COUNT(*) FROM staged_choices")[0][0] == 10
    # ... then the choices themselves, newest first: the last group is open again.
    press(qtbot, view, "Ctrl+Z")
    assert view.current_group().staged is None and view.current_group().index == 9
    assert view.row.visible_tiles()[1].model.mark == ""


def test_a_corrupt_image_shows_its_reason_and_the_batch_still_finalizes(qtbot, project, opened):
    sql = (
        "SELECT path FROM group_images i JOIN groups g ON g.id = i.group_pk"
        " WHERE g.batch_number = 1 AND g.position = 2 AND i.position = 1"
    )
    victim = Path(query(project, sql)[0][0])
    victim.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not the rest of a PNG" * 20)
    window = opened(project)
    view = window.reviewer
    press(qtbot, view, "Right")
    press(qtbot, view, "Right")
    tile = view.row.tiles[1]
    assert tile.model.name == victim.name and tile.state == "error"
    assert tile.placeholder_text.startswith("Cannot show this image: ")
    assert "reject the group (X)" in tile.placeholder_text
    assert view.row.tiles[0].state == "image" and view.row.tiles[2].state == "image"
    press(qtbot, view, "2")  # the broken image cannot be kept...
    assert "cannot be chosen" in view.status.message and view.status.warning
    assert view.current_group().staged is None
    press(qtbot, view, "Home")
    for _ in PLAN:
        press(qtbot, view, "1")  # ...another one can; every group approved
    press(qtbot, view, "Ctrl+Return")
    assert view.status.message.startswith("Batch 1 finalized")
    assert (project.folder("delete_staging") / victim.name).is_file()


def test_restore_brings_a_rejected_image_back(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    group = view.current_group()
    press(qtbot, view, "X")
    for _ in PLAN[1:]:
        press(qtbot, view, "Q")
    press(qtbot, view, "Ctrl+Return")
    rejected = group.paths[0]
    assert not rejected.exists()
    dialog = view.open_restore()
    qtbot.waitUntil(dialog.isVisible)
    names = [dialog.files.item(i).text().split("\n")[0] for i in range(dialog.files.count())]
    assert rejected.name in names and len(names) == sum(n - 1 for n, _, _ in PLAN[1:]) + 2
    dialog.select_names([rejected.name])
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(rejected.exists)
    assert not (project.folder("delete_staging") / rejected.name).exists()
    assert dialog.message.text().startswith("Restored 1 file(s) from delete_staging/")
    assert view.status.message.startswith("Restored 1 file(s)")
    assert dialog.files.count() == len(names) - 1
    dialog.close()


def test_keys_typed_into_a_text_field_elsewhere_do_nothing(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    field = QLineEdit(window)
    window.statusBar().addPermanentWidget(field)
    field.show()
    window.activateWindow()
    field.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    qtbot.keyClicks(field, "1x")
    qtbot.keyClick(field, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(field, Qt.Key.Key_Right)
    assert field.text() == "1x"
    assert view.current_group().index == 0
    assert all(g.staged is None for g in view.session.groups())
    assert query(project, "SELECT COUNT(*) FROM staged_choices")[0][0] == 0
    view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view)
    press(qtbot, view, "1")
    assert view.current_group().index == 1


def test_the_next_group_is_prepared_before_the_key(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    qtbot.waitUntil(lambda: not view.busy())
    nxt = view.session.groups()[1]
    assert nxt.proposal is not None  # computed in the background, with its features
    qtbot.keyClick(view, Qt.Key.Key_Right)
    # Painted from memory in the same event: nothing was left to decode.
    assert view.current_group().pk == nxt.pk
    assert all(t.state == "image" for t in view.row.visible_tiles())
    assert any(t.model.ai_pick for t in view.row.visible_tiles())
    cached = query(project, "SELECT COUNT(*) FROM image_features")[0][0]
    assert cached >= sum(n for n, _, _ in PLAN[:3])


def test_the_key_map_lists_the_reviewer_keys(qtbot, project, opened):
    window = opened(project)
    hints = window.hints.text()
    assert "1–4  keep" in hints and "Q–R  to crop" in hints and "Ctrl+Enter  finalize" in hints
    qtbot.keyClick(window.reviewer, Qt.Key.Key_F1)
    qtbot.waitUntil(window.overlay.isVisible)
    lines = window.overlay.lines()
    assert "1 / 2 / 3 / 4: approve image N" in lines
    assert "Q / W / E / R: send image N to cropping" in lines
    assert "Ctrl+Return / Ctrl+Enter: finalize the batch" in lines
    assert any(line.startswith("Space: hold: 100% loupe") for line in lines)
    qtbot.keyClick(window.reviewer, Qt.Key.Key_1)  # closes the map; decides nothing
    qtbot.waitUntil(lambda: not window.overlay.isVisible())
    assert window.reviewer.current_group().staged is None


def test_space_held_shows_every_image_at_100_percent_panned_together(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    tiles = view.row.visible_tiles()
    qtbot.mouseMove(tiles[1], QPoint(10, tiles[1].height() // 2))
    qtbot.keyPress(view, Qt.Key.Key_Space)
    assert all(t.loupe_active for t in tiles)
    qtbot.waitUntil(lambda: all(view.loupe.original(str(p)) is not None
                                for p in view.current_group().paths))  # fmt: skip
    before = view.loupe.point
    qtbot.mouseMove(tiles[0], QPoint(tiles[0].width() - 12, 40))
    qtbot.waitUntil(lambda: view.loupe.point != before)
    assert view.loupe.point[0] > 0.9 and all(t.loupe_point == view.loupe.point for t in tiles)
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    assert not any(t.loupe_active for t in tiles)


def test_reopening_resumes_at_the_same_group_with_every_choice(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    for key in ("1", "T", "2", "Right"):
        press(qtbot, view, key)
    pk, staged = view.current_group().pk, [g.staged for g in view.session.groups()]
    window.close()
    again = opened(project).reviewer
    assert again.current_group().pk == pk and again.current_group().index == 3
    assert [g.staged for g in again.session.groups()] == staged


def test_a_resized_window_prepares_pictures_for_the_new_size(qtbot, project, opened):
    window = opened(project)
    view = window.reviewer
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: view.row.visible_tiles()[0].width() > 300)
    area = view.row.picture_area([(240, 180)] * 2, view.devicePixelRatioF())
    qtbot.waitUntil(
        lambda: all((str(p), area) in view.pictures for p in view.current_group().paths)
    )
    tile = view.row.visible_tiles()[0]
    assert tile.picture.size().toTuple() == tile.image_rect().size().toSize().toTuple()
