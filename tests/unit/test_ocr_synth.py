"""Synthetic plates (ocr/synth.py): deterministic, A-Z0-9 text in the layouts, fonts and
styles that can be left out, crops shaped as a plate detector writes them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from workbench.core.errors import WorkbenchError
from workbench.ml.ocr import synth
from workbench.ml.ocr.engines import load_crop
from workbench.ml.ocr.synth import FONTS, LAYOUTS, STYLES, PlateSynth, font_path, save_crop


def test_the_same_seed_and_index_draw_the_same_plate() -> None:
    a, b = PlateSynth(3).render(17), PlateSynth(3).render(17)
    assert a.text == b.text and (a.font, a.style, a.layout) == (b.font, b.style, b.layout)
    assert np.array_equal(a.image, b.image)
    others = [PlateSynth(4).render(17), PlateSynth(3).render(18)]
    assert all(not np.array_equal(a.image, o.image) or a.text != o.text for o in others)


def test_plates_hold_5_to_8_plate_characters_in_their_layout() -> None:
    plates = PlateSynth(0).many(0, 60)
    for p in plates:
        assert re.fullmatch(r"[A-Z0-9]{5,8}", p.text), p.text
        slots = p.layout.replace(" ", "")
        assert len(slots) == len(p.text)
        for slot, ch in zip(slots, p.text, strict=True):
            assert (slot != "L" or ch.isalpha()) and (slot != "D" or ch.isdigit())
        assert p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3
        h, w = p.image.shape[:2]
        assert 8 <= h <= 400 and 16 <= w <= 600 and w > h  # a camera's plate crop
    assert len({p.style for p in plates}) == len(STYLES)
    assert len({p.font for p in plates}) == len(FONTS)
    assert all(len(layout.replace(" ", "")) in range(5, 9) for layout in LAYOUTS)


def test_fonts_and_styles_can_be_left_out() -> None:
    kept = PlateSynth(1, exclude_fonts=["dejavu-sans-bold"], exclude_styles=["yellow"])
    plates = kept.many(0, 40)
    assert "dejavu-sans-bold" not in {p.font for p in plates}
    assert "yellow" not in {p.style for p in plates}
    only = PlateSynth(1, fonts=["dejavu-sans-bold"], styles=["yellow"]).many(0, 5)
    assert {(p.font, p.style) for p in only} == {("dejavu-sans-bold", "yellow")}


def test_unknown_or_all_excluded_choices_are_sentences() -> None:
    with pytest.raises(WorkbenchError, match="Unknown plate font"):
        PlateSynth(0, exclude_fonts=["comic-sans"])
    with pytest.raises(WorkbenchError, match="Unknown plate style"):
        PlateSynth(0, styles=["tartan"])
    with pytest.raises(WorkbenchError, match="keep at least one"):
        PlateSynth(0, styles=["yellow"], exclude_styles=["yellow"])


def test_the_fonts_ship_with_their_licences() -> None:
    for name in FONTS:
        path = font_path(name)
        assert path.parent == synth.FONTS_DIR, f"{name} is not shipped in resources/fonts"
    names = {p.name for p in synth.FONTS_DIR.iterdir()}
    assert {"LICENSE-DejaVu.txt", "LICENSE-Noto-OFL.txt"} <= names
    assert "SIL OPEN FONT LICENSE" in (synth.FONTS_DIR / "LICENSE-Noto-OFL.txt").read_text()
    assert "Bitstream" in (synth.FONTS_DIR / "LICENSE-DejaVu.txt").read_text()


def test_a_saved_crop_reads_back_as_the_engines_read_crops(tmp_path) -> None:
    plate = PlateSynth(5).render(0)
    for name in ("crop.png", "crop.jpg"):
        save_crop(plate.image, tmp_path / name)
        back = load_crop(tmp_path / name)
        assert back.shape == plate.image.shape
        if name.endswith(".png"):
            assert np.array_equal(back, plate.image)
    assert Image.open(tmp_path / "crop.jpg").format == "JPEG"
