"""The crop canvas state machine, driven with synthetic pointer and key events (no Qt)."""

from __future__ import annotations

import pytest

from workbench.core.crop_geometry import MIN_SIDE_PX
from workbench.core.cropping import (
    NO_MODS,
    WHOLE_IMAGE,
    Change,
    CropSession,
    Handle,
    ImageCrop,
    Mods,
)
from workbench.core.crops import CropBox, corners_match, iou
from workbench.core.decisions import crop_match
from workbench.core.errors import InvalidInput

AI = CropBox(0.1, 0.1, 0.9, 0.9)
SHIFT = Mods(shift=True)


def session(*sizes: tuple[int, int], proposal: CropBox = AI) -> CropSession:
    return CropSession([ImageCrop(w, h, proposal, "sidecar") for w, h in sizes or ((1000, 500),)])


def drag(s: CropSession, index: int, start: tuple[float, float], *points: tuple[float, float],
         mods: Mods = NO_MODS) -> Change:  # fmt: skip
    change = s.press(index, *start, mods)
    for p in points[:-1]:
        change = change | s.move(*p, mods)
    return change | s.release(*points[-1], mods)


def pixels(s: CropSession, index: int = 0) -> tuple[float, float, float, float]:
    im = s.images[index]
    return im.to_px(im.box)


def pixel_ratio(s: CropSession, index: int = 0) -> float:
    x1, y1, x2, y2 = pixels(s, index)
    return (x2 - x1) / (y2 - y1)


def approx_box(box: CropBox, *values: float) -> None:
    assert box.to_list() == pytest.approx(list(values), abs=1e-9)


# -- starting state and hit-testing ----------------------------------------------------------


def test_the_box_starts_at_the_proposal_and_every_image_has_its_own() -> None:
    s = CropSession([ImageCrop(800, 600, AI, "sidecar"), ImageCrop(600, 800)])
    assert s.boxes == [AI, WHOLE_IMAGE]
    assert s.images[1].proposal_source == "whole image"
    assert s.focus == 0


def test_a_degenerate_proposal_is_grown_to_the_minimum_size() -> None:
    thin = CropBox(0.5, 0.2, 0.5000001, 0.8)
    s = session((1000, 1000), proposal=thin)
    x1, _, x2, _ = pixels(s)
    assert x2 - x1 == pytest.approx(MIN_SIDE_PX)
    assert (x1 + x2) / 2 == pytest.approx(500, abs=0.01)
    with pytest.raises(InvalidInput):
        ImageCrop(0, 100)


@pytest.mark.parametrize(
    ("x", "y", "handle"),
    [(0.1, 0.1, Handle.NW), (0.9, 0.1, Handle.NE), (0.1, 0.9, Handle.SW), (0.9, 0.9, Handle.SE),
     (0.5, 0.1, Handle.N), (0.5, 0.9, Handle.S), (0.1, 0.5, Handle.W), (0.9, 0.5, Handle.E),
     (0.5, 0.5, Handle.INSIDE), (0.05, 0.5, Handle.OUTSIDE), (0.5, 0.95, Handle.OUTSIDE)],
)  # fmt: skip
def test_hit_testing_finds_the_eight_handles_inside_and_outside(x, y, handle) -> None:
    s = session((1000, 500))
    s.set_tolerance(0, 0.01, 0.02)  # 10 px on both axes of a 1000 x 500 image
    assert s.hit(0, x, y) is handle


def test_the_tolerance_is_per_axis_in_normalized_units() -> None:
    s = session((1000, 500))
    s.set_tolerance(0, 0.01, 0.02)  # 10 px each way
    assert s.hit(0, 0.5, 0.1 + 0.019) is Handle.N  # 9.5 px below the top edge
    assert s.hit(0, 0.5, 0.1 + 0.021) is Handle.INSIDE  # 10.5 px
    assert s.hit(0, 0.1 + 0.0095, 0.5) is Handle.W
    assert s.hit(0, 0.1 + 0.0105, 0.5) is Handle.INSIDE


def test_a_small_box_keeps_a_middle_to_grab() -> None:
    s = session((1000, 1000), proposal=CropBox(0.5, 0.5, 0.51, 0.51))
    s.set_tolerance(0, 0.05, 0.05)  # far larger than the box
    assert s.hit(0, 0.505, 0.505) is Handle.INSIDE
    assert s.hit(0, 0.5, 0.5) is Handle.NW


# -- drawing, moving, resizing ---------------------------------------------------------------


def test_dragging_outside_the_box_draws_a_new_one_in_any_direction() -> None:
    s = session((1000, 500))
    change = drag(s, 0, (0.95, 0.95), (0.6, 0.7), (0.5, 0.6))
    assert change.boxes == (0,)
    approx_box(s.boxes[0], 0.5, 0.6, 0.95, 0.95)


def test_a_click_or_a_line_outside_the_box_keeps_the_box() -> None:
    s = session((1000, 500))
    assert not drag(s, 0, (0.02, 0.02), (0.02, 0.02)).boxes
    assert not drag(s, 0, (0.02, 0.02), (0.5, 0.02 + 1 / 500)).boxes  # 1 px high: degenerate
    assert s.boxes == [AI]


def test_drawing_past_the_image_clamps_to_its_edges() -> None:
    s = session((1000, 500))
    drag(s, 0, (0.95, 0.95), (1.7, -0.4), (1.3, -2.0))
    approx_box(s.boxes[0], 0.95, 0.0, 1.0, 0.95)
    drag(s, 0, (-0.2, 1.2), (0.3, 0.8))  # a press outside the image starts at its edge
    approx_box(s.boxes[0], 0.0, 0.8, 0.3, 1.0)


def test_dragging_inside_moves_the_box_and_it_stays_inside() -> None:
    s = session((1000, 500))
    drag(s, 0, (0.5, 0.5), (0.55, 0.45))
    approx_box(s.boxes[0], 0.15, 0.05, 0.95, 0.85)
    drag(s, 0, (0.5, 0.5), (3.0, 3.0))  # far past the corner: stops at the edges, same size
    approx_box(s.boxes[0], 0.2, 0.2, 1.0, 1.0)


def test_dragging_handles_resizes_the_box() -> None:
    s = session((1000, 500))
    drag(s, 0, (0.9, 0.9), (0.7, 0.6))  # SE corner
    approx_box(s.boxes[0], 0.1, 0.1, 0.7, 0.6)
    drag(s, 0, (0.1, 0.35), (0.3, 0.2))  # W edge: only x1 moves
    approx_box(s.boxes[0], 0.3, 0.1, 0.7, 0.6)
    drag(s, 0, (0.5, 0.1), (0.4, -1.0))  # N edge past the top: clamped
    approx_box(s.boxes[0], 0.3, 0.0, 0.7, 0.6)


def test_a_handle_dragged_past_the_opposite_edge_leaves_a_minimum_box() -> None:
    s = session((1000, 500))
    drag(s, 0, (0.9, 0.5), (0.0, 0.5))  # E edge dragged far left of x1
    x1, _, x2, _ = pixels(s)
    assert x1 == pytest.approx(100) and x2 - x1 == pytest.approx(MIN_SIDE_PX)
    drag(s, 0, (0.1, 0.1), (1.0, 1.0))  # NW corner past SE: minimum, never inverted
    x1, y1, x2, y2 = pixels(s)
    assert (x2 - x1, y2 - y1) == pytest.approx((MIN_SIDE_PX, MIN_SIDE_PX))
    assert s.boxes[0].x1 < s.boxes[0].x2 and s.boxes[0].y1 < s.boxes[0].y2


def test_cancel_puts_the_box_back_where_the_drag_began() -> None:
    s = session((1000, 500))
    s.press(0, 0.5, 0.5)
    assert s.move(0.6, 0.6).boxes == (0,)
    assert s.dragging is Handle.INSIDE and s.drag_index == 0
    assert s.cancel_drag().boxes == (0,)
    assert s.boxes == [AI] and s.dragging is None
    assert s.move(0.7, 0.7) == Change()  # no drag: nothing happens


def test_pressing_another_image_moves_the_focus_and_drags_there() -> None:
    s = session((1000, 500), (500, 1000))
    change = drag(s, 1, (0.5, 0.5), (0.6, 0.5))
    assert change.focus and change.boxes == (1,)
    assert s.focus == 1 and s.boxes[0] == AI


# -- aspect, in pixel space ------------------------------------------------------------------


@pytest.mark.parametrize(("preset", "ratio"), [("1:1", 1.0), ("2:3", 3 / 2), ("3:4", 4 / 3),
                                               ("16:9", 16 / 9), ("original", 2.0)])  # fmt: skip
def test_presets_shape_the_box_in_pixels_not_normalized_units(preset, ratio) -> None:
    s = session((1000, 500))  # AI box is 800 x 400 px: landscape, so presets turn landscape
    change = s.set_aspect(preset)
    assert change.aspect and s.locked
    assert pixel_ratio(s) == pytest.approx(ratio)
    box = s.boxes[0]
    assert 0 <= box.x1 < box.x2 <= 1 and 0 <= box.y1 < box.y2 <= 1
    if preset == "1:1":
        assert box.width == pytest.approx(box.height / 2)  # square pixels, not a square in [0,1]


def test_a_preset_applies_to_every_image_with_its_own_shape() -> None:
    s = CropSession([ImageCrop(1000, 500, AI), ImageCrop(400, 1200, AI)])
    s.set_aspect("2:3")
    assert pixel_ratio(s, 0) == pytest.approx(3 / 2)  # landscape box
    assert pixel_ratio(s, 1) == pytest.approx(2 / 3)  # portrait box
    s.set_aspect("original")
    assert pixel_ratio(s, 0) == pytest.approx(2.0)
    assert pixel_ratio(s, 1) == pytest.approx(1 / 3)
    s.flip_orientation()
    assert pixel_ratio(s, 0) == pytest.approx(0.5)


def test_locked_aspect_holds_while_drawing_and_resizing() -> None:
    s = session((1000, 500))
    s.set_aspect("16:9")
    drag(s, 0, (0.02, 0.02), (0.9, 0.3))
    assert pixel_ratio(s) == pytest.approx(16 / 9)
    drag(s, 0, *[(b.x2, b.y2) for b in s.boxes], (0.99, 0.99))  # SE corner to the far corner
    assert pixel_ratio(s) == pytest.approx(16 / 9)
    assert s.boxes[0].x2 <= 1.0 + 1e-12 and s.boxes[0].y2 <= 1.0 + 1e-12
    box = s.boxes[0]
    drag(s, 0, (box.x2, (box.y1 + box.y2) / 2), (1.5, 0.5))  # E edge: height follows, inside
    assert pixel_ratio(s) == pytest.approx(16 / 9)
    assert 0 <= s.boxes[0].y1 and s.boxes[0].y2 <= 1.0 + 1e-12


def test_lock_keeps_the_current_shape_and_unlock_frees_it() -> None:
    s = session((1000, 500))
    s.toggle_lock()
    assert s.locked and s.preset == "free"
    drag(s, 0, (0.9, 0.9), (0.5, 0.8))
    assert pixel_ratio(s) == pytest.approx(2.0)  # the AI box's 800 x 400 px
    s.toggle_lock()
    assert not s.locked
    drag(s, 0, *[(b.x2, b.y2) for b in s.boxes], (0.9, 0.6))
    assert pixel_ratio(s) == pytest.approx(800 / 250)


def test_shift_keeps_the_shape_without_a_lock() -> None:
    s = session((1000, 500))
    drag(s, 0, (0.9, 0.9), (0.6, 0.8), mods=SHIFT)
    assert pixel_ratio(s) == pytest.approx(2.0)
    drag(s, 0, (0.01, 0.01), (0.3, 0.9), mods=SHIFT)  # drawing with Shift: a square
    assert pixel_ratio(s) == pytest.approx(1.0)


def test_next_aspect_cycles_the_presets() -> None:
    s = session()
    names = [s.next_aspect().aspect and s.preset for _ in range(6)]
    assert names == ["1:1", "2:3", "3:4", "16:9", "original", "free"]
    assert not s.locked
    assert s.next_aspect(-1) and s.preset == "original"
    with pytest.raises(InvalidInput):
        s.set_aspect("5:4")


# -- keys ------------------------------------------------------------------------------------


def test_arrows_nudge_by_a_step_and_shift_by_ten() -> None:
    s = session((1000, 500))  # one step = 0.2% of 1000 px = 2 px
    assert s.nudge(1, 0).boxes == (0,)
    assert pixels(s) == pytest.approx((102, 50, 902, 450))
    s.nudge(0, -1, large=True)
    assert pixels(s) == pytest.approx((102, 30, 902, 430))
    for _ in range(30):
        s.nudge(0, -1, large=True)
    assert pixels(s) == pytest.approx((102, 0, 902, 400))  # stopped at the edge, same size
    assert s.nudge(0, -1) == Change()


def test_ctrl_arrows_resize_and_keep_a_locked_shape() -> None:
    s = session((1000, 500))
    s.nudge(-1, 0, resize=True)
    assert pixels(s) == pytest.approx((100, 50, 898, 450))
    s.set_aspect("1:1")
    s.nudge(1, 0, large=True, resize=True)
    assert pixel_ratio(s) == pytest.approx(1.0)


def test_backspace_reset_and_tab_focus() -> None:
    s = session((1000, 500), (500, 500))
    drag(s, 0, (0.5, 0.5), (0.6, 0.6))
    assert s.reset() == Change(boxes=(0,))
    assert s.boxes[0] == AI
    assert s.reset() == Change()
    assert s.focus_next() == Change(focus=True) and s.focus == 1
    assert s.focus_next() == Change(focus=True) and s.focus == 0
    assert s.focus_next(-1).focus and s.focus == 1
    assert s.set_focus(7) == Change()


def test_reset_restores_the_proposal_exactly_even_under_a_lock() -> None:
    s = session((1000, 500))
    s.set_aspect("1:1")
    assert s.boxes[0] != AI
    s.reset()
    assert s.boxes[0] == AI and s.locked


# -- the seed's two scenarios ----------------------------------------------------------------


def test_seed_scenario_2_the_user_agrees_with_the_ai() -> None:
    s = session((1000, 1000))
    drag(s, 0, (0.1, 0.1), (0.11, 0.09))  # NW corner
    drag(s, 0, (0.9, 0.9), (0.91, 0.88))  # SE corner
    user = s.boxes[0]
    approx_box(user, 0.11, 0.09, 0.91, 0.88)
    assert crop_match(AI, user) is True and corners_match(AI, user)
    assert iou(AI, user) == pytest.approx(0.6162 / 0.6558, abs=1e-4)


def test_seed_scenario_3_the_user_disagrees_with_the_ai() -> None:
    s = session((1000, 1000))
    drag(s, 0, (0.3, 0.0), (0.5, 0.3), (0.7, 0.6))  # a press on the top edge of the image
    user = s.boxes[0]
    approx_box(user, 0.3, 0.0, 0.7, 0.6)
    assert crop_match(AI, user) is False
    assert iou(AI, user) == pytest.approx(0.2 / 0.68, abs=1e-4)
    assert crop_match(None, user) is None
