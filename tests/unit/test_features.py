"""Image features: what each one measures on synthetic images, and their database cache.

The synthetic scene makers here are shared with test_predict.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from workbench.core.content_key import content_key
from workbench.core.crops import CropBox
from workbench.core.thumbs import ThumbnailCache
from workbench.ml.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    INDEX,
    FeatureStore,
    compute_features,
    features_for,
    saliency_map,
)

# -- synthetic images -----------------------------------------------------------------------


def scene(rng: np.random.Generator, w: int = 512, h: int = 384) -> Image.Image:
    """A well exposed cluttered frame: gradient, shapes, lines, a textured patch, mild noise."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    img = Image.fromarray(np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(8, 20))):
        x, y, s = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.2) * w
        colour = tuple(int(v) for v in rng.uniform(25, 230, 3))
        kind = int(rng.integers(3))
        if kind == 0:
            d.rectangle((x, y, x + s, y + s * rng.uniform(0.3, 1.5)), fill=colour)
        elif kind == 1:
            d.ellipse((x, y, x + s, y + s), fill=colour)
        else:
            d.line(
                (x, y, x + s, y + rng.uniform(-s, s)), fill=colour, width=int(rng.integers(1, 4))
            )
    a = np.asarray(img, dtype=np.float32)
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    x1, x2 = int(rng.uniform(0, 0.6 * w)), int(rng.uniform(0.6 * w, w))
    texture = np.outer(np.sin(ys * rng.uniform(0.3, 1.2)), np.sin(xs * rng.uniform(0.3, 1.2)))
    a[int(0.6 * h) :, x1:x2] += 12 * texture[int(0.6 * h) :, x1:x2, None]
    a += _noise(rng, 1.5, a.shape)
    a = (a - a.mean()) * rng.uniform(0.8, 1.2) + rng.uniform(105, 145)  # mid-grey exposure
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


# Drawing fresh normals is the slowest part of making a scene; a random window of one
# bank is as good for these tests and several times faster.
_BANK = np.random.default_rng(12345).standard_normal((1200, 1200, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[0], shape[1]
    if h > _BANK.shape[0] or w > _BANK.shape[1]:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    y, x = (
        int(rng.integers(0, _BANK.shape[0] - h + 1)),
        int(rng.integers(0, _BANK.shape[1] - w + 1)),
    )
    return _BANK[y : y + h, x : x + w, : shape[2]] * np.float32(sigma)


def degrade(img: Image.Image, rng: np.random.Generator, kind: str) -> Image.Image:
    """The same frame blurred, over- or under-exposed, or noisier."""
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1.0, 2.2))))
    a = np.asarray(img, dtype=np.float32)
    if kind == "bright":
        a = a * rng.uniform(1.6, 2.2) + 20
    elif kind == "dark":
        a = a * rng.uniform(0.3, 0.5)
    elif kind == "noise":
        a = a + _noise(rng, float(rng.uniform(5, 12)), a.shape)
    else:
        raise ValueError(kind)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def subject_on_dark(
    rng: np.random.Generator, w: int = 512, h: int = 384
) -> tuple[Image.Image, CropBox]:
    """A bright subject (25-45% of each side) at a random place on a dark background."""
    a = rng.uniform(10, 50, 3).astype(np.float32) + _noise(rng, 3.0, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    bw, bh = rng.uniform(0.25, 0.45) * w, rng.uniform(0.25, 0.45) * h
    x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    colour = tuple(int(v) for v in rng.uniform(170, 250, 3))
    if rng.random() < 0.5:
        d.rectangle((x, y, x + bw, y + bh), fill=colour)
    else:
        d.ellipse((x, y, x + bw, y + bh), fill=colour)
    for _ in range(5):  # some detail on the subject (vertical: dark bars read as eyes)
        px, py = rng.uniform(x + 0.2 * bw, x + 0.8 * bw), rng.uniform(y + 0.1 * bh, y + 0.6 * bh)
        d.line((px, py, px, py + bh / 4), fill=(60, 60, 60), width=2)
    return img, CropBox(x / w, y / h, (x + bw) / w, (y + bh) / h)


def face_image(rng: np.random.Generator, w: int = 512, h: int = 384) -> tuple[Image.Image, CropBox]:
    """A plain schematic face (oval, brows, eyes, nose, mouth) somewhere in a cluttered-free frame."""
    size = rng.uniform(0.3, 0.4) * h
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.35, 0.65) * h
    img = Image.new("L", (w, h), int(rng.uniform(40, 120)))
    d = ImageDraw.Draw(img)

    def blob(x: float, y: float, rx: float, ry: float, value: int) -> None:
        d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=value)

    skin = int(rng.uniform(170, 210))
    blob(cx, cy, 0.42 * size, 0.55 * size, skin)
    for side in (-1, 1):
        blob(cx + side * 0.18 * size, cy - 0.08 * size, 0.09 * size, 0.045 * size, 60)
        blob(cx + side * 0.18 * size, cy - 0.18 * size, 0.11 * size, 0.025 * size, 70)
    blob(cx, cy + 0.25 * size, 0.14 * size, 0.04 * size, 80)
    blob(cx, cy + 0.08 * size, 0.04 * size, 0.03 * size, int(skin * 0.7))
    img = img.filter(ImageFilter.GaussianBlur(1.5)).convert("RGB")
    box = CropBox(
        (cx - 0.42 * size) / w,
        (cy - 0.55 * size) / h,
        (cx + 0.42 * size) / w,
        (cy + 0.55 * size) / h,
    )
    return img, box


def feature(vec: np.ndarray, name: str) -> float:
    return float(vec[INDEX[name]])


# -- compute_features -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean() -> Image.Image:
    return scene(np.random.default_rng(5))


def test_vector_shape_names_and_determinism(clean: Image.Image) -> None:
    vec = compute_features(clean)
    assert vec.dtype == np.float32 and vec.shape == (len(FEATURE_NAMES),)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert np.all(np.isfinite(vec))
    assert np.array_equal(vec, compute_features(clean))
    assert FEATURE_VERSION == "f1"


def test_blur_lowers_sharpness_and_detail_ratio(clean: Image.Image) -> None:
    sharp = compute_features(clean)
    blurred = compute_features(clean.filter(ImageFilter.GaussianBlur(1.5)))
    assert feature(blurred, "sharpness") < feature(sharp, "sharpness") - 0.5
    assert feature(blurred, "detail_ratio") < feature(sharp, "detail_ratio")


def test_noise_estimate_tracks_added_noise(clean: Image.Image) -> None:
    rng = np.random.default_rng(1)
    base = feature(compute_features(clean), "noise")
    a = np.asarray(clean, dtype=np.float32)
    noisy = Image.fromarray(np.clip(a + rng.normal(0, 8, a.shape) + 0.5, 0, 255).astype(np.uint8))
    estimate = feature(compute_features(noisy), "noise")
    assert base < 2.5
    # sigma 8 on each channel is 8 * |(0.299, 0.587, 0.114)| = 5.3 in luminance
    assert 4.8 < estimate < 6.3
    # the noise is subtracted from the detail energy: noise alone is not "sharpness"
    assert (
        feature(compute_features(noisy), "sharpness")
        < feature(compute_features(clean), "sharpness") + 0.7
    )


def test_exposure_features(clean: Image.Image) -> None:
    rng = np.random.default_rng(2)
    mid, bright, dark = (
        compute_features(im)
        for im in (clean, degrade(clean, rng, "bright"), degrade(clean, rng, "dark"))
    )
    assert 0.35 < feature(mid, "brightness") < 0.65
    assert feature(bright, "brightness") > 0.75 and feature(bright, "clipped_bright") > 0.05
    assert feature(dark, "brightness") < 0.3
    assert feature(mid, "clipped_bright") < 0.01 and feature(mid, "clipped_dark") < 0.01
    black = compute_features(Image.new("RGB", (200, 100)))
    assert feature(black, "clipped_dark") == 1.0 and feature(black, "contrast") == 0.0


def test_colour_features() -> None:
    grey = compute_features(Image.new("RGB", (256, 256), (128, 128, 128)))
    red = compute_features(Image.new("RGB", (256, 256), (220, 20, 20)))
    assert feature(grey, "saturation") == pytest.approx(0.0, abs=1e-6)
    assert feature(grey, "colourfulness") == pytest.approx(0.0, abs=1e-6)
    assert feature(red, "saturation") > 0.85 and feature(red, "colourfulness") > 0.2


def test_saliency_finds_the_bright_subject() -> None:
    img, box = subject_on_dark(np.random.default_rng(3))
    vec = compute_features(img)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    assert abs(feature(vec, "saliency_cx") - cx) < 0.12
    assert abs(feature(vec, "saliency_cy") - cy) < 0.12
    assert feature(vec, "saliency_concentration") > 0.3
    sal = saliency_map(img)
    assert sal.shape == (64, 64) and sal.max() == pytest.approx(1.0) and sal.min() >= 0.0


def test_faces_are_counted_and_draw_the_saliency() -> None:
    rng = np.random.default_rng(21)
    found = 0
    for _ in range(10):
        img, face = face_image(rng)
        vec = compute_features(img)
        if feature(vec, "face_count") >= 1:
            found += 1
            assert 0.5 * face.area < feature(vec, "face_area") < 2.0 * face.area
            assert abs(feature(vec, "saliency_cx") - (face.x1 + face.x2) / 2) < 0.1
    assert found >= 8
    assert feature(compute_features(scene(np.random.default_rng(5))), "face_count") == 0


def test_flat_image_has_whole_frame_subject() -> None:
    vec = compute_features(Image.new("RGB", (300, 200), (90, 90, 90)))
    subject = [feature(vec, f"subject_{c}") for c in ("x1", "y1", "x2", "y2")]
    assert subject == [0.0, 0.0, 1.0, 1.0]
    assert feature(vec, "saliency_concentration") == 0.0
    assert feature(vec, "face_count") == 0


@pytest.mark.parametrize(
    "img",
    [
        Image.new("RGB", (3, 2), (10, 200, 30)),
        Image.new("RGB", (1, 700), (10, 200, 30)),
        Image.new("L", (64, 48), 77),
        Image.new("RGBA", (64, 48), (1, 2, 3, 0)),
    ],
    ids=["tiny", "sliver", "grey", "rgba"],
)
def test_odd_images_give_finite_vectors(img: Image.Image) -> None:
    vec = compute_features(img)
    assert vec.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(vec))


def test_large_image_is_scaled_down_first(clean: Image.Image) -> None:
    big = clean.resize((2048, 1536), Image.Resampling.LANCZOS)
    vec = compute_features(big)
    assert feature(vec, "aspect") == pytest.approx(np.log(2048 / 1536), abs=1e-6)
    assert abs(feature(vec, "brightness") - feature(compute_features(clean), "brightness")) < 0.02


# -- the cache --------------------------------------------------------------------------------


@pytest.fixture
def conn(store, source_dir: Path):  # noqa: ANN001 - fixtures from conftest
    project = store.create("feat", source_dir)
    connection = project.connect()
    yield connection
    connection.close()


def test_feature_store_round_trip(conn: sqlite3.Connection, clean: Image.Image) -> None:
    fs = FeatureStore(conn)
    vec = compute_features(clean)
    assert fs.get("k1") is None
    fs.put("k1", vec)
    assert np.array_equal(fs.get("k1"), vec)
    row = conn.execute("SELECT feature_version, length(features) FROM image_features").fetchone()
    assert tuple(row) == (FEATURE_VERSION, 4 * len(FEATURE_NAMES))
    fs.put("k1", vec + 1)  # replaced, not duplicated
    assert np.array_equal(fs.get("k1"), vec + 1)
    # another feature version, or a blob of the wrong length, is a miss
    conn.execute("INSERT INTO image_features VALUES ('k2', 'f0', ?, 'x')", (vec.tobytes(),))
    conn.execute(
        "INSERT INTO image_features VALUES ('k3', ?, ?, 'x')", (FEATURE_VERSION, b"\0" * 8)
    )
    assert fs.get("k2") is None and fs.get("k3") is None
    with pytest.raises(ValueError):
        fs.put("k4", vec[:3])


def test_features_for_computes_once_then_reads_the_database(
    conn: sqlite3.Connection, clean: Image.Image, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    clean.save(path)
    first_cache = ThumbnailCache(None)
    vec = features_for(path, first_cache, conn)
    assert first_cache.stats().decodes == 1
    assert FeatureStore(conn).get(content_key(path)) is not None
    second_cache = ThumbnailCache(None)
    again = features_for(path, second_cache, conn)
    assert np.array_equal(vec, again)
    assert second_cache.stats().decodes == 0  # nothing decoded: the row was used


def test_opencv_import_leaves_qt_plugin_path_alone() -> None:
    """Plain `import cv2` points Qt at OpenCV's own plugins; ours puts the variable back."""
    import os
    import subprocess
    import sys

    probe = "import os; {}; print(os.environ.get('QT_QPA_PLATFORM_PLUGIN_PATH'))"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM_PLUGIN_PATH"}

    def run(statement: str) -> str:
        out = subprocess.run([sys.executable, "-c", probe.format(statement)], env=env,
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return out.stdout.strip()

    assert run("import cv2") != "None"  # the wheel does redirect it: the guard matters
    assert run("from workbench.ml import opencv; opencv.cv2()") == "None"
