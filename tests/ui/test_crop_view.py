"""The crop view driven like a user: real mouse and key events on three images side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from tests.unit.test_crop_submit import Spec, gradient, make_project
from workbench.core.crop_geometry import MIN_SIDE_PX
from workbench.core.crops import CropBox
from workbench.core.images import probe_image
from workbench.core.sidecar import sidecar_path
from workbench.ui.crop import CropView

AIS = [CropBox(0.1, 0.1, 0.9, 0.9), CropBox(0.2, 0.1, 0.8, 0.7), CropBox(0.3, 0.2, 0.7, 0.9)]
SHIFT = Qt.KeyboardModifier.ShiftModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def project_three(store, source_dir):
    specs = [Spec((800, 600), ".jpg", ai_crop=AIS[0]), Spec((600, 800), ".png", ai_crop=AIS[1]),
             Spec((900, 600), ".jpg", ai_crop=AIS[2])]  # fmt: skip
    project, conn, images = make_project(store, source_dir, specs)
    yield project, conn, images
    conn.close()


def open_view(qtbot, project, **kwargs) -> CropView:
    view = CropView(project, **{"use_model": False, **kwargs})
    qtbot.addWidget(view)
    view.resize(1500, 800)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.page is not None and not view.busy())
    return view


@pytest.fixture
def view(qtbot, project_three):
    v = open_view(qtbot, project_three[0])
    yield v
    v.shutdown()


def at(view: CropView, index: int, x: float, y: float) -> QPoint:
    return view.canvas.to_widget(index, x, y).toPoint()


def mouse_drag(qtbot, view: CropView, index: int, start: tuple[float, float],
               end: tuple[float, float], modifier=Qt.KeyboardModifier.NoModifier) -> None:  # fmt: skip
    canvas = view.canvas
    qtbot.mousePress(canvas, LEFT, modifier, at(view, index, *start))
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    qtbot.mouseMove(canvas, at(view, index, *mid))
    qtbot.mouseMove(canvas, at(view, index, *end))
    qtbot.mouseRelease(canvas, LEFT, modifier, at(view, index, *end))


def approx(box: CropBox, *values: float, tol: float = 0.006) -> None:
    assert box.to_list() == pytest.approx(list(values), abs=tol)


def pixel_ratio(view: CropView, index: int) -> float:
    im = view.session.images[index]
    x1, y1, x2, y2 = im.to_px(im.box)
    return (x2 - x1) / (y2 - y1)


def test_three_images_side_by_side_start_at_their_ai_proposals(view, project_three) -> None:
    _, _, images = project_three
    assert [t.name for t in view.canvas.tiles] == [p.name for p in images]
    assert view.session.boxes == AIS
    assert all(t.image is not None and t.tag == "AI proposal" for t in view.canvas.tiles)
    rects = [view.canvas.image_rect(i) for i in range(3)]
    assert rects[0].right() < rects[1].left() and rects[1].right() < rects[2].left()
    assert not view.banner.isVisible()
    assert view.position.text() == "Images 1–3 of 3 in crop/"


def test_draw_move_and_resize_with_the_mouse(qtbot, view) -> None:
    mouse_drag(qtbot, view, 1, (0.05, 0.95), (0.5, 0.75))  # outside the box: a new one
    approx(view.session.boxes[1], 0.05, 0.75, 0.5, 0.95)
    assert view.session.focus == 1
    mouse_drag(qtbot, view, 1, (0.3, 0.85), (0.4, 0.8))  # inside: moved
    approx(view.session.boxes[1], 0.15, 0.7, 0.6, 0.9)
    mouse_drag(qtbot, view, 1, (0.6, 0.9), (0.9, 0.98))  # the SE handle
    approx(view.session.boxes[1], 0.15, 0.7, 0.9, 0.98)
    mouse_drag(qtbot, view, 1, (0.15, 0.8), (-0.5, 0.8))  # the W edge, past the image
    approx(view.session.boxes[1], 0.0, 0.7, 0.9, 0.98)
    assert view.session.boxes[0] == AIS[0] and view.session.boxes[2] == AIS[2]


def test_a_click_beside_the_box_keeps_it(qtbot, view) -> None:
    mouse_drag(qtbot, view, 0, (0.03, 0.03), (0.03, 0.03))
    assert view.session.boxes[0] == AIS[0]


def test_arrow_keys_nudge_shift_moves_more_and_ctrl_resizes(qtbot, view) -> None:
    canvas = view.canvas
    im = view.session.images[0]  # 800 x 600: one step is 2 px
    x1, y1, x2, y2 = im.to_px(im.box)
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    qtbot.keyClick(canvas, Qt.Key.Key_Down, SHIFT)
    assert im.to_px(im.box) == pytest.approx((x1 + 2, y1 + 20, x2 + 2, y2 + 20))
    qtbot.keyClick(canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier)
    assert im.to_px(im.box) == pytest.approx((x1 + 2, y1 + 20, x2, y2 + 20))


def test_tab_moves_the_focus_between_images(qtbot, view) -> None:
    canvas = view.canvas
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    assert view.session.focus == 1
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    assert view.session.focus == 0
    qtbot.keyClick(canvas, Qt.Key.Key_Backtab, SHIFT)
    assert view.session.focus == 2 and canvas.hasFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Up)  # the nudge goes to the focused image
    assert view.session.boxes[2] != AIS[2] and view.session.boxes[:2] == AIS[:2]


def test_aspect_presets_and_lock_hold_in_pixels_while_dragging(qtbot, view) -> None:
    canvas = view.canvas
    qtbot.keyClick(canvas, Qt.Key.Key_A)  # free -> 1:1, on every image
    assert view.aspect_box.currentText() == "1:1" and view.lock_box.isChecked()
    assert [pixel_ratio(view, i) for i in range(3)] == pytest.approx([1, 1, 1])
    box = view.session.boxes[2]
    mouse_drag(qtbot, view, 2, (box.x2, box.y2), (0.95, 0.6))  # SE corner: stays square
    assert pixel_ratio(view, 2) == pytest.approx(1.0)
    view.aspect_box.setCurrentText("16:9")  # the toolbar does the same
    assert pixel_ratio(view, 0) == pytest.approx(16 / 9)
    qtbot.keyClick(canvas, Qt.Key.Key_O)  # portrait
    assert pixel_ratio(view, 0) == pytest.approx(9 / 16)
    qtbot.keyClick(canvas, Qt.Key.Key_L)  # unlock
    assert not view.lock_box.isChecked() and not view.session.locked
    box = view.session.boxes[0]
    mouse_drag(qtbot, view, 0, (box.x2, box.y2), (0.98, box.y2))
    assert pixel_ratio(view, 0) != pytest.approx(9 / 16)


def test_backspace_resets_the_focused_box_to_the_ai_proposal(qtbot, view) -> None:
    mouse_drag(qtbot, view, 2, (0.5, 0.5), (0.6, 0.7))
    qtbot.keyClick(view.canvas, Qt.Key.Key_Right, SHIFT)
    assert view.session.boxes[2] != AIS[2]
    qtbot.keyClick(view.canvas, Qt.Key.Key_Backspace)
    assert view.session.boxes == AIS


def test_enter_crops_all_three_and_ctrl_z_undoes(qtbot, view, project_three) -> None:
    project, conn, images = project_three
    sidecars = {p: sidecar_path(p).read_bytes() for p in images}
    gids = [json.loads(b)["group_id"] for b in sidecars.values()]
    mouse_drag(qtbot, view, 0, (0.02, 0.02), (0.52, 0.62))
    qtbot.keyClick(view.canvas, Qt.Key.Key_Tab)
    for _ in range(2):  # 2 x 20 px of 600: more than the 5% of crop_match
        qtbot.keyClick(view.canvas, Qt.Key.Key_Right, SHIFT)
    boxes = list(view.session.boxes)
    with qtbot.waitSignal(view.submitted, timeout=20000) as blocker:
        qtbot.keyClick(view.canvas, Qt.Key.Key_Return)
    report = blocker.args[0]
    assert report.counts["cropped"] == 3 and report.counts["rows_updated"] == 3
    for result, box, gid in zip(report.results, boxes, gids, strict=True):
        info = probe_image(result.original)
        left, top, right, bottom = box.to_pixels(info.width, info.height)
        with Image.open(result.output) as out:
            assert out.size == (right - left, bottom - top)
        r = conn.execute("SELECT * FROM ai_decisions WHERE group_id = ?", (gid,)).fetchone()
        assert CropBox.from_json(r["final_crop_coords"]) == box and r["crop_timestamp"]
        assert r["crop_match"] == (box == AIS[2])  # the third was left as the AI drew it
    assert not any(sidecar_path(p).exists() or p.exists() for p in images)
    qtbot.waitUntil(lambda: not view.busy() and view.session is None)
    assert "Cropped 3 image(s)" in view.banner.text() and "Nothing waits" in view.canvas.message
    with qtbot.waitSignal(view.undone, timeout=20000):
        qtbot.keyClick(view.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not view.busy() and view.session is not None)
    assert {p: sidecar_path(p).read_bytes() for p in images} == sidecars
    rows = conn.execute("SELECT final_crop_coords, crop_timestamp, crop_match FROM ai_decisions"
                        " WHERE user_action = 'crop'").fetchall()  # fmt: skip
    assert [tuple(r) for r in rows] == [(None, None, None)] * 3
    assert view.session.boxes == AIS and "Undid" in view.banner.text()


def test_an_image_without_a_sidecar_is_cropped_with_a_visible_warning(qtbot, project_three) -> None:
    project, conn, images = project_three
    loose = project.folder("crop") / "a_loose.png"
    gradient(300, 200, 5).save(loose)
    v = open_view(qtbot, project)
    try:
        assert v.canvas.tiles[0].name == "a_loose.png" and v.session.boxes[0] == CropBox(0, 0, 1, 1)
        assert v.banner.isVisible() and "a_loose.png has no sidecar" in v.banner.text()
        assert "no sidecar" in v.canvas.tiles[0].warning
        with qtbot.waitSignal(v.submitted, timeout=20000) as blocker:
            qtbot.keyClick(v.canvas, Qt.Key.Key_Enter)
        loose_result = blocker.args[0].results[0]
        assert loose_result.ok and loose_result.group_id is None
        qtbot.waitUntil(lambda: not v.busy())
        assert "1 without a decision row" in v.banner.text()
    finally:
        v.shutdown()


def test_the_crop_model_proposes_when_there_is_no_sidecar(qtbot, project_three) -> None:
    project, _, images = project_three
    sidecar_path(images[1]).unlink()
    proposals = []

    def propose(path: Path) -> CropBox:
        proposals.append(path)
        return CropBox(0.25, 0.25, 0.75, 0.75)

    v = open_view(qtbot, project, propose=propose)
    try:
        assert proposals == [images[1]]
        assert v.session.boxes[1] == CropBox(0.25, 0.25, 0.75, 0.75)
        assert v.canvas.tiles[1].tag == "AI (crop model)" and v.canvas.tiles[0].tag == "AI proposal"
        qtbot.keyClick(v.canvas, Qt.Key.Key_Tab)
        mouse_drag(qtbot, v, 1, (0.5, 0.5), (0.6, 0.5))
        qtbot.keyClick(v.canvas, Qt.Key.Key_Backspace)  # back to the model's box
        assert v.session.boxes[1] == CropBox(0.25, 0.25, 0.75, 0.75)
    finally:
        v.shutdown()


def test_an_unreadable_image_shows_why_and_is_not_submitted(qtbot, project_three) -> None:
    project, conn, images = project_three
    images[0].write_bytes(b"this is no longer a picture")
    v = open_view(qtbot, project)
    try:
        assert "cannot be read" in v.canvas.tiles[0].error and "cannot be read" in v.banner.text()
        with qtbot.waitSignal(v.submitted, timeout=20000) as blocker:
            qtbot.keyClick(v.canvas, Qt.Key.Key_Return)
        assert [r.image for r in blocker.args[0].results] == images[1:]
        assert images[0].exists() and sidecar_path(images[0]).exists()
    finally:
        v.shutdown()


def test_undo_refuses_an_operation_that_is_not_a_crop(qtbot, view, project_three) -> None:
    qtbot.keyClick(view.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "not a crop" in view.banner.text())
    assert all(p.exists() for p in project_three[2])  # the finalize was not undone


def test_pages_move_with_pgdown_and_the_count_of_images_side_by_side(qtbot, view) -> None:
    view.count_box.setCurrentIndex(0)  # one at a time
    qtbot.waitUntil(lambda: not view.busy() and len(view.canvas.tiles) == 1)
    qtbot.keyClick(view.canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: not view.busy() and view.start == 1)
    assert view.position.text() == "Images 2–2 of 3 in crop/" and view.session.boxes == [AIS[1]]


def test_auto_crop_dialog_previews_then_crops_with_progress(qtbot, store, source_dir) -> None:
    specs = [Spec(action="auto", ai_crop=AIS[0]), Spec(action="auto", ai_crop=AIS[2]), Spec()]
    project, conn, images = make_project(store, source_dir, specs)
    v = open_view(qtbot, project)
    try:
        qtbot.keyClick(v.canvas, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
        dialog = v.auto_dialog
        qtbot.waitUntil(lambda: dialog.preview.count() == 2 and dialog.run_button.isEnabled())
        assert "AI crop [0.10, 0.10, 0.90, 0.90]" in dialog.preview.item(0).text()
        with qtbot.waitSignal(dialog.finished_run, timeout=20000):
            qtbot.mouseClick(dialog.run_button, LEFT)
        assert dialog.progress.value() == dialog.progress.maximum() == 2
        assert all(dialog.preview.item(i).text().startswith("✓") for i in range(2))
        assert not images[0].exists() and not images[1].exists() and images[2].exists()
        rows = conn.execute("SELECT crop_match, ai_crop_accepted FROM ai_decisions"
                            " WHERE final_crop_coords IS NOT NULL").fetchall()  # fmt: skip
        assert [tuple(r) for r in rows] == [(1, 1), (1, 1)]
        qtbot.waitUntil(lambda: not v.busy() and "Auto-cropped 2" in v.banner.text())
        dialog.close()
    finally:
        v.shutdown()
        conn.close()


def test_minimum_box_when_a_handle_is_dragged_across(qtbot, view) -> None:
    box = view.session.boxes[0]
    mouse_drag(qtbot, view, 0, (box.x2, 0.5), (0.0, 0.5))  # E edge far past the W edge
    im = view.session.images[0]
    x1, _, x2, _ = im.to_px(im.box)
    assert x2 - x1 == pytest.approx(MIN_SIDE_PX) and x1 == pytest.approx(80)


def test_in_the_main_window_keys_reach_the_canvas_and_the_key_map_lists_them(
    qtbot, store, project_three
) -> None:
    from workbench.ui.main_window import MainWindow
    from workbench.ui.session import open_session

    project_three[1].close()
    window = MainWindow(open_session(store, project_three[0].name))
    qtbot.addWidget(window)
    crops = [window.views.widget(i) for i in range(window.views.count())]
    crop = next((w for w in crops if isinstance(w, CropView)), None)
    if crop is None:  # until the window adds the crop view itself
        crop = CropView(window.project, window, use_model=False)
        window.add_view(crop, "Ctrl+9")
    window.show_view(crop)
    window.resize(1400, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: crop.session is not None and not crop.busy())
    crop.canvas.setFocus()
    qtbot.keyClick(crop.canvas, Qt.Key.Key_Tab)
    assert crop.session.focus == 1
    assert "crop every image on screen" in window.hints.text()
    qtbot.keyClick(crop.canvas, Qt.Key.Key_Question, SHIFT)  # not the canvas's: on to the window
    qtbot.waitUntil(window.overlay.isVisible)
    assert any("reset the box to the AI proposal" in line for line in window.overlay.lines())
    window.close()
    assert not window.session.lock.held


def test_the_default_proposer_is_the_predictors_crop(project_three) -> None:
    from workbench.ml.predict import Predictor
    from workbench.ui.crop import jobs

    project, _, images = project_three
    expected = Predictor(project.models_dir).pick([images[0]]).crop
    assert jobs.model_proposer(project)(images[0]) == expected


def test_a_new_crop_champion_reaches_the_crop_views_predictor_at_once(project_three) -> None:
    from workbench.ui.crop import jobs
    from workbench.ui.crop.view import CropView

    project, _, images = project_three
    view = CropView.__new__(CropView)  # only the proposer matters here
    view._propose = jobs.model_proposer(project)
    predictor = view._propose.predictor
    predictor.check_interval_s = 3600.0  # its own check would not look again for an hour
    predictor.pick([images[0]])
    assert predictor.versions()["crop"] == "heuristic"
    folder = project.models_dir / "smartcrop" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({
        "format": "workbench-smartcrop-1", "avg_width": 0.5, "avg_height": 0.5,
        "avg_x": 0.25, "avg_y": 0.25,
    }))  # fmt: skip
    (project.models_dir / "smartcrop" / "champion.json").write_text('{"version": "v1"}')
    view.reload_models("ranker")  # not a crop kind: nothing is re-read
    assert predictor.versions()["crop"] == "heuristic"
    view.reload_models("smartcrop")
    assert predictor.versions()["crop"] == "smartcrop"
