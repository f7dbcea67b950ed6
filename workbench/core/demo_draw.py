"""Drawing the demo: near-duplicate photo groups with a subject, and plate crops.

Pillow and numpy only, from a seed: the same pictures on every machine. A group is one
scene framed 2-4 times, every frame but the best one damaged (blur, dark, noise, bright);
the demo's "AI" is the transparent `quality_score` rule, and its crop a box around the
drawn subject.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from workbench.core.crops import CropBox

PLATE_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_FONT_PATHS = (
    "DejaVuSans-Bold.ttf",  # found by FreeType in the system font folders on most Linuxes
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/Library/Fonts/DejaVuSans-Bold.ttf",
    "C:/Windows/Fonts/DejaVuSans-Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
)
# (width, height) of the groups, cycled: landscape and portrait mixed.
_SIZES = ((960, 640), (800, 600), (640, 880), (1024, 768), (720, 960), (900, 600))



def _gradient(h: int, w: int, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = top[None, None, :] * (1 - t) + bottom[None, None, :] * t
    return np.broadcast_to(col, (h, w, 3))


def _scene(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, tuple[float, ...]]:
    """A landscape with a face-like subject off centre; returns it and the subject's box."""
    horizon = int(h * rng.uniform(0.5, 0.68))
    sky = _gradient(horizon, w, rng.uniform([40, 90, 160], [90, 150, 230]),
                    rng.uniform([170, 200, 220], [230, 235, 250]))  # fmt: skip
    ground = _gradient(h - horizon, w, rng.uniform([60, 110, 40], [120, 160, 70]),
                       rng.uniform([30, 60, 20], [70, 90, 40]))  # fmt: skip
    img = Image.fromarray(np.concatenate([sky, ground]).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    sx, sy, sr = rng.uniform(0.1, 0.9) * w, rng.uniform(0.08, 0.3) * h, rng.uniform(0.03, 0.06) * w
    d.ellipse((sx - sr, sy - sr, sx + sr, sy + sr), fill=(255, 236, 150))
    for _ in range(int(rng.integers(2, 4))):  # hills
        cx, hw, hh = rng.uniform(0, w), rng.uniform(0.2, 0.5) * w, rng.uniform(0.08, 0.2) * h
        shade = tuple(int(v) for v in rng.uniform([50, 70, 60], [110, 120, 110]))
        d.polygon([(cx - hw, horizon), (cx, horizon - hh), (cx + hw, horizon)], fill=shade)
    for _ in range(int(rng.integers(3, 7))):  # trees and houses: edges for sharpness to see
        x, base = rng.uniform(0, w), horizon + rng.uniform(0, 0.15) * h
        s = rng.uniform(0.04, 0.09) * h
        if rng.random() < 0.6:
            d.polygon([(x - s / 2, base), (x, base - 2 * s), (x + s / 2, base)], fill=(20, 80, 30))
        else:
            d.rectangle((x - s, base - s, x + s, base), fill=(180, 90, 60), outline=(40, 20, 10))
            d.rectangle((x - s / 3, base - s / 2, x, base), fill=(60, 40, 30))
    for y in range(horizon + 4, h, 6):  # grass stripes: fine texture
        d.line((0, y, w, y + 3), fill=(50, 100, 35), width=1)
    # the subject: head, eyes, mouth, hair, a striped shirt
    fx = w * (0.3 if rng.random() < 0.5 else 0.68) + rng.uniform(-0.05, 0.05) * w
    r = min(w, h) * rng.uniform(0.11, 0.15)
    fy = h * rng.uniform(0.4, 0.5)
    skin = tuple(int(v) for v in rng.uniform([170, 120, 90], [240, 200, 170]))
    shirt = tuple(int(v) for v in rng.uniform([30, 30, 60], [200, 80, 200]))
    d.rectangle((fx - 1.4 * r, fy + 1.1 * r, fx + 1.4 * r, fy + 3.2 * r), fill=shirt)
    for stripe in np.arange(fy + 1.2 * r, fy + 3.2 * r, max(3.0, r / 8)):
        d.line((fx - 1.4 * r, stripe, fx + 1.4 * r, stripe), fill=(240, 240, 240), width=2)
    d.ellipse(
        (fx - 0.8 * r, fy - 1.05 * r, fx + 0.8 * r, fy + 1.05 * r),
        fill=skin,
        outline=(60, 40, 30),
        width=2,
    )
    d.chord(
        (fx - 0.85 * r, fy - 1.15 * r, fx + 0.85 * r, fy + 0.2 * r), 180, 360, fill=(60, 35, 20)
    )
    for ex in (fx - 0.32 * r, fx + 0.32 * r):
        d.ellipse(
            (ex - 0.17 * r, fy - 0.05 * r, ex + 0.17 * r, fy + 0.17 * r), fill=(250, 250, 250)
        )
        d.ellipse((ex - 0.07 * r, fy + 0.0 * r, ex + 0.07 * r, fy + 0.13 * r), fill=(20, 20, 40))
    d.arc(
        (fx - 0.4 * r, fy + 0.2 * r, fx + 0.4 * r, fy + 0.7 * r),
        20,
        160,
        fill=(120, 30, 30),
        width=3,
    )
    box = ((fx - 1.4 * r) / w, (fy - 1.15 * r) / h, (fx + 1.4 * r) / w, (fy + 3.2 * r) / h)
    return img, tuple(min(1.0, max(0.0, v)) for v in box)


def _frame(base: Image.Image, box: tuple[float, ...], w: int, h: int, zoom: float,
           dx: float, dy: float) -> tuple[Image.Image, tuple[float, ...]]:  # fmt: skip
    """A w x h view of `base`, zoomed in by `zoom` and shifted by (dx, dy) of the frame."""
    bw, bh = base.size
    cw, ch = (bw / zoom, bh / zoom) if zoom > 1 else (w, h)
    left = min(bw - cw, max(0.0, (bw - cw) / 2 + dx * bw))
    top = min(bh - ch, max(0.0, (bh - ch) / 2 + dy * bh))
    if zoom <= 1:
        left, top = float(int(left)), float(int(top))
    if zoom > 1:
        view = base.resize((w, h), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    else:
        view = base.crop((int(left), int(top), int(left) + w, int(top) + h))  # no resampling
    x1, y1, x2, y2 = box
    moved = (
        (x1 * bw - left) / cw,
        (y1 * bh - top) / ch,
        (x2 * bw - left) / cw,
        (y2 * bh - top) / ch,
    )
    return view, tuple(min(1.0, max(0.0, v)) for v in moved)


def _degrade(img: Image.Image, rng: np.random.Generator, faults: tuple[str, ...]) -> Image.Image:
    """The image made worse in the named ways (all in Pillow's C code, for speed)."""
    if "blur" in faults:
        # Blurring at half size and scaling back looks the same and costs a quarter.
        small = img.reduce(2).filter(ImageFilter.GaussianBlur(float(rng.uniform(1.3, 2.3))))
        img = small.resize(img.size, Image.Resampling.BILINEAR)
    if "dark" in faults:
        gain = float(rng.uniform(0.3, 0.45))
        img = img.point(lambda v: int(v * gain))
    if "bright" in faults:
        gain = float(rng.uniform(1.7, 2.1))
        img = img.point(lambda v: min(255, int(v * gain + 30)))
    if "noise" in faults:
        # Grain of 2x2 pixels, as a demosaiced sensor gives, at a quarter of the cost.
        half = ((img.width + 1) // 2, (img.height + 1) // 2)
        grain = Image.effect_noise(half, float(rng.uniform(18, 28))).resize(
            (half[0] * 2, half[1] * 2), Image.Resampling.NEAREST
        )
        noise = grain.crop((0, 0, *img.size)).convert("RGB")
        img = ImageChops.add(img, noise, scale=1.0, offset=-128)
    return img


def quality_score(img: Image.Image) -> float:
    """The demo AI's rule: edge energy at a quarter size, times exposure, less noise."""
    g = np.asarray(img.convert("L").reduce(4), dtype=np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    mean = float(g.mean()) / 255.0
    clipped = float(((g < 8) | (g > 247)).mean())
    # Most of a clean photo is smooth, so the median edge response measures the noise.
    noise = float(np.median(np.abs(lap)))
    exposure = max(0.05, 1 - 2.2 * abs(mean - 0.5)) * (1 - clipped)
    return float(lap.var()) * exposure / (1 + (noise / 3) ** 2)


def _ai_crop(box: tuple[float, ...], aspect: float) -> CropBox:
    """A box centred on the subject with a margin, clamped to the frame."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = min(0.5, (x2 - x1) * 0.8)
    half_h = min(0.5, max((y2 - y1) * 0.65, half_w * aspect * 0.8))
    cx = min(1 - half_w, max(half_w, cx))
    cy = min(1 - half_h, max(half_h, cy))
    return CropBox.from_seq(
        [round(v, 4) for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h)]
    )


def _save(img: Image.Image, path: Path, *, rotate_exif: bool = False) -> None:
    if path.suffix == ".png":
        img.save(path, compress_level=1)
    elif rotate_exif:
        # Stored sideways with orientation 6 ("rotate 90 clockwise to display").
        exif = Image.Exif()
        exif[0x0112] = 6
        img.transpose(Image.Transpose.ROTATE_90).save(path, quality=88, exif=exif.tobytes())
    else:
        img.save(path, quality=88)


_FAULT_SETS = (("blur",), ("dark",), ("noise",), ("bright",), ("blur", "noise"), ("dark", "blur"))


def render_group(seed: int, index: int, folder: Path, when: datetime) -> dict[str, Any]:
    """Draw one group of 2-4 near-duplicates into `folder`; returns its manifest entry."""
    rng = np.random.default_rng([seed, index])
    w, h = _SIZES[index % len(_SIZES)]
    base, box = _scene(rng, int(w * 1.08), int(h * 1.08))
    n = int(rng.choice([2, 3, 3, 4]))
    best = int(rng.integers(n))
    ext = ".png" if index % 3 == 0 else ".jpg"  # PNG encoding is the slow part: a third
    files, scores, boxes = [], [], []
    t = when
    for i in range(n):
        zoom = float(rng.uniform(1.02, 1.08)) if rng.random() < 0.25 else 1.0
        dx, dy = rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)
        img, b = _frame(base, box, w, h, zoom, dx, dy)
        if i != best:
            img = _degrade(img, rng, _FAULT_SETS[int(rng.integers(len(_FAULT_SETS)))])
        name = f"{t:%Y%m%d_%H%M%S}_stage{i + 1}{ext}"
        _save(img, folder / name, rotate_exif=(index == 1 and i == 0))
        files.append(name)
        scores.append(quality_score(img))
        boxes.append(b)
        t += timedelta(seconds=int(rng.integers(1, 4)))
    ai = int(np.argmax(scores))
    z = np.log(np.asarray(scores) + 1.0)
    p = np.exp(z - z.max())
    return {
        "files": files,
        "best_index": best,
        "ai_index": ai,
        "ai_crop": _ai_crop(boxes[ai], w / h).to_list(),
        "ai_confidence": round(float(p.max() / p.sum()), 4),
        "boxes": [[round(float(v), 4) for v in b] for b in boxes],  # the subject, per image
    }


# -- plates ----------------------------------------------------------------------------


def plate_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold when the system has it, else Pillow's bundled TrueType font."""
    for candidate in _FONT_PATHS:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def render_plate(seed: int, index: int, path: Path, font: Any) -> str:
    rng = np.random.default_rng([seed, 1000 + index])
    length = int(rng.integers(5, 9))
    text = "".join(PLATE_CHARS[int(i)] for i in rng.integers(len(PLATE_CHARS), size=length))
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    pw, ph = tw + 28, th + 22
    yellow = rng.random() < 0.35
    plate = Image.new("RGB", (pw, ph), (235, 200, 40) if yellow else (240, 240, 236))
    d = ImageDraw.Draw(plate)
    d.rectangle((1, 1, pw - 2, ph - 2), outline=(25, 25, 25), width=3)
    d.text((14 - left, 11 - top), text, font=font, fill=(20, 20, 20))
    mx, my = int(pw * rng.uniform(0.1, 0.3)), int(ph * rng.uniform(0.3, 0.7))
    body = tuple(int(v) for v in rng.uniform([20, 20, 20], [200, 200, 210]))
    plate = plate.rotate(float(rng.uniform(-5, 5)), Image.Resampling.BICUBIC, expand=True,
                         fillcolor=body)  # fmt: skip
    canvas = Image.new("RGB", (plate.width + 2 * mx, plate.height + 2 * my), body)
    canvas.paste(plate, (mx + int(rng.integers(-mx // 2, mx // 2 + 1)), my))
    scale = rng.uniform(0.45, 0.8)
    canvas = canvas.resize((max(40, int(canvas.width * scale)), max(16, int(canvas.height * scale))),
                           Image.Resampling.BILINEAR)  # fmt: skip
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.2))))
    a = np.asarray(canvas, dtype=np.float32)
    a += rng.standard_normal(a.shape, dtype=np.float32) * float(rng.uniform(3, 10))
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB").save(path, quality=85)
    return text
