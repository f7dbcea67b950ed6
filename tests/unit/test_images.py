"""images.py: header-only probing, skip reasons, EXIF orientation, the loader, dHash."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from workbench.core import images
from workbench.core.errors import InvalidInput
from workbench.core.images import (
    MAX_PIXELS,
    ImageInfo,
    SkippedFile,
    UnreadableImage,
    dhash,
    hamming,
    load_image,
    probe_image,
    verify_image,
)


def save(path: Path, size: tuple[int, int] = (60, 40), seed: int = 0, **params: Any) -> Path:
    """A small image with some structure, in the format its suffix names."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **params)
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR claims width x height (a decompression bomb header)."""
    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC follows 13 bytes.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded: probes must read headers only."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("probe_image decoded pixel data")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".JPEG", ".webp", ".bmp", ".tif"])
def test_probe_reads_size_format_and_identity(tmp_path: Path, suffix: str, no_decode: None):
    path = save(tmp_path / f"a{suffix}")
    info = probe_image(path)
    assert isinstance(info, ImageInfo)
    assert (info.width, info.height) == (60, 40)
    assert info.size_bytes == path.stat().st_size
    assert info.mtime_ns == path.stat().st_mtime_ns
    assert info.path == path


def test_exif_orientation_6_swaps_width_and_height(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path / "rotated.jpg", size=(60, 40), exif=exif)
    info = probe_image(path)
    assert isinstance(info, ImageInfo)
    assert (info.width, info.height, info.orientation) == (40, 60, 6)
    loaded = load_image(path)
    assert loaded.size == (40, 60)
    assert loaded.mode == "RGB"


def test_png_exif_orientation_is_read_without_decoding(tmp_path: Path, no_decode: None):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = save(tmp_path / "rotated.png", size=(60, 40), exif=exif)
    info = probe_image(path)
    assert isinstance(info, ImageInfo)
    assert (info.width, info.height) == (40, 60)


def test_orientation_is_applied_the_right_way_round(tmp_path: Path) -> None:
    # Stored: left half black, right half white. Orientation 6 means "rotate 90 degrees
    # clockwise to display", so the white half must end up at the bottom.
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, 30:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "six.png"
    Image.fromarray(pixels).save(path, exif=exif)
    shown = np.asarray(load_image(path))
    assert shown.shape == (60, 40, 3)
    assert shown[:25].mean() < 20 and shown[35:].mean() > 235


def test_zero_byte_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    assert probe_image(path) == SkippedFile(path, "zero-byte file")


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    assert probe_image(path) == SkippedFile(path, "not an image (unknown format)")


def test_other_formats_are_not_handed_to_exotic_decoders(tmp_path: Path) -> None:
    path = tmp_path / "really.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    assert probe_image(path) == SkippedFile(path, "not an image (unknown format)")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_is_skipped_without_decoding(tmp_path: Path, suffix: str, no_decode: None):
    whole = save(tmp_path / f"whole{suffix}", size=(200, 150)).read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    assert probe_image(path) == SkippedFile(path, "truncated image data")


def test_truncated_jpeg_with_an_embedded_thumbnail_is_still_caught(tmp_path: Path) -> None:
    # The embedded JPEG (here in a comment, like an EXIF thumbnail) ends with its own EOI
    # marker; only the scan data after the headers may count.
    thumb = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(thumb, "JPEG")
    whole = save(tmp_path / "whole.jpg", size=(400, 300), comment=thumb.getvalue()).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    assert probe_image(path) == SkippedFile(path, "truncated image data")


def test_png_with_bytes_after_iend_is_still_fine(tmp_path: Path) -> None:
    path = save(tmp_path / "trailer.png")
    path.write_bytes(path.read_bytes() + b"some trailing bytes")
    assert isinstance(probe_image(path), ImageInfo)


def test_jpeg_with_appended_data_is_still_fine(tmp_path: Path) -> None:
    # Motion photos append a video after the JPEG's end marker.
    path = save(tmp_path / "motion.jpg")
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    assert isinstance(probe_image(path), ImageInfo)


def test_corrupt_middle_is_found_by_verify_image_not_probe(tmp_path: Path) -> None:
    whole = save(tmp_path / "whole.png", size=(200, 150)).read_bytes()
    iend = whole[-12:]
    path = tmp_path / "broken.png"
    path.write_bytes(whole[: len(whole) // 2] + iend)  # cut inside IDAT, IEND still at the end
    assert isinstance(probe_image(path), ImageInfo)  # the cheap check cannot see it
    skipped = verify_image(path)
    assert isinstance(skipped, SkippedFile)
    assert skipped.reason.startswith(("truncated", "corrupt image:"))
    assert verify_image(tmp_path / "whole.png") is None


def test_decompression_bomb_header_is_skipped_without_decoding(
    tmp_path: Path, no_decode: None
) -> None:
    path = png_claiming(tmp_path / "bomb.png", 20_000, 20_000)
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow's own notice, then our refusal
        result = probe_image(path)
    assert result == SkippedFile(
        path, "image too large: 20000x20000 pixels exceeds the 200 MP limit"
    )


def test_huge_bomb_that_pillow_refuses_is_a_skip_not_a_crash(tmp_path: Path) -> None:
    path = png_claiming(tmp_path / "huge.png", 30_000, 30_000)
    result = probe_image(path)
    assert isinstance(result, SkippedFile)
    assert result.reason == "image too large: 900 MP exceeds the 200 MP limit"
    with pytest.raises(InvalidInput, match="image too large"):
        load_image(path)


def test_images_up_to_the_limit_open_without_a_warning(tmp_path: Path) -> None:
    # 120 MP: above Pillow's default warning level, below ours (no decode happens here).
    path = png_claiming(tmp_path / "big.png", 12_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = probe_image(path)
    assert isinstance(info, ImageInfo) and info.width * info.height < MAX_PIXELS


def test_permission_denied_is_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "locked.png")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Root ignores chmod 000, so refuse the open itself.
    monkeypatch.setattr(images, "open", denied, raising=False)
    assert probe_image(path) == SkippedFile(path, "unreadable: permission denied")
    with pytest.raises(UnreadableImage) as err:
        load_image(path)
    assert err.value.reason == "unreadable: permission denied"
    assert err.value.message == f"Cannot load {path}: unreadable: permission denied."


def test_missing_file_is_a_skip(tmp_path: Path) -> None:
    result = probe_image(tmp_path / "gone.png")
    assert isinstance(result, SkippedFile) and result.reason.startswith("missing")


def test_load_image_downscales_and_converts(tmp_path: Path) -> None:
    jpg = save(tmp_path / "big.jpg", size=(800, 600))
    small = load_image(jpg, max_side=100)
    assert small.size == (100, 75) and small.mode == "RGB"
    assert load_image(jpg).size == (800, 600)
    grey = tmp_path / "grey16.png"
    Image.fromarray(np.full((10, 20), 40000, dtype=np.uint16)).save(grey)
    loaded = load_image(grey)
    assert loaded.mode == "RGB" and 150 < np.asarray(loaded).mean() < 160
    palette = tmp_path / "p.png"
    Image.new("P", (10, 10)).save(palette, transparency=0)
    assert load_image(palette).mode == "RGB"


def test_load_image_errors_are_sentences(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match=r"^Cannot load .*notes.png: not an image"):
        load_image(text)
    whole = save(tmp_path / "whole.jpg", size=(300, 200)).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidInput, match="truncated image data"):
        load_image(cut)
    with pytest.raises(InvalidInput, match="max_side"):
        load_image(tmp_path / "whole.jpg", max_side=0)


def scene(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A smooth random scene: strong large-scale structure, like a photo's layout."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (4, 5, 3), dtype=np.uint8))
    return np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)


def test_dhash_separates_scenes_and_tolerates_small_changes(tmp_path: Path) -> None:
    from PIL import ImageFilter

    base = scene(1)
    rng = np.random.default_rng(5)
    variants = {
        "same": base,
        "noise": base + rng.normal(0, 10, base.shape),
        "brighter": base + 25,
        "other": scene(2),
    }
    hashes = {}
    for name, arr in variants.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
        hashes[name] = dhash(path)
    blurred = tmp_path / "blur.jpg"
    Image.open(tmp_path / "same.png").filter(ImageFilter.GaussianBlur(2)).save(blurred)
    hashes["blur"] = dhash(blurred)
    for name in ("noise", "brighter", "blur"):
        assert hamming(hashes["same"], hashes[name]) <= 10, name
    assert hamming(hashes["same"], hashes["other"]) > 20
    assert 0 <= hashes["same"] < 2**64
