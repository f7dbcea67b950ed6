"""A generated demo project: near-duplicate photo groups, plate crops, a half-done first batch.

Everything is drawn here with Pillow and numpy from a seed, so the demo needs no download
and comes out the same on every machine. `generate_demo` writes the images into the
project folder (`source/` and `plates/`), creates the project on that source, scans it into
groups and finalizes a few groups of the first batch so every view has work to show.

The "AI" of the demo is a transparent rule, not a model: it picks the image with the best
sharpness-times-exposure score and proposes a box centred on the drawn subject.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput, ProjectExists
from workbench.core.project import SETTINGS_FILE, Project, ProjectStore

Progress = Callable[[str, int, int], None]

MANIFEST = "demo.json"
PLATE_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_START = datetime(2025, 7, 5, 14, 0, 0)
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


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoGroup:
    """One generated group: its files in time order, the truly best one and the AI's view."""

    files: tuple[Path, ...]
    best_index: int
    ai_index: int
    ai_crop: CropBox
    ai_confidence: float


@dataclass(frozen=True)
class DemoChoice:
    """A choice the demo finalized for a group of the first batch."""

    group_index: int
    user_action: str
    user_selected_index: int
    crop_overlay_on: bool
    folder: str


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo` made (or found): paths, the generated truth and the choices."""

    name: str
    root: Path
    source: Path
    plates_dir: Path
    truth_file: Path
    groups: tuple[DemoGroup, ...]
    skipped: tuple[tuple[Path, str], ...]
    plates: int
    choices: tuple[DemoChoice, ...]
    created: bool
    seconds: float

    @property
    def images(self) -> int:
        return sum(len(g.files) for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings) for `workbench demo --json`."""
        return {
            "project": self.name,
            "path": str(self.root),
            "source": str(self.source),
            "plates_dir": str(self.plates_dir),
            "truth_file": str(self.truth_file),
            "groups": len(self.groups),
            "images": self.images,
            "plates": self.plates,
            "skipped": [{"path": str(p), "fault": why} for p, why in self.skipped],
            "finalized": [
                {
                    "group": c.group_index,
                    "action": c.user_action,
                    "image": c.user_selected_index,
                    "folder": c.folder,
                }  # fmt: skip
                for c in self.choices
            ],
            "created": self.created,
            "seconds": round(self.seconds, 3),
        }


# -- drawing ---------------------------------------------------------------------------


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


def _render_group(seed: int, index: int, folder: Path, when: datetime) -> dict[str, Any]:
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


def _render_plate(seed: int, index: int, path: Path, font: Any) -> str:
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


# -- the project -----------------------------------------------------------------------


def _draw_files(
    folder: Path, groups: int, plates: int, seed: int, report: Progress, history: int = 0
) -> dict[str, Any]:
    """Write source/ and plates/ under `folder`; returns the manifest."""
    source, plates_dir = folder / "source", folder / "plates"
    source.mkdir(parents=True)
    plates_dir.mkdir()
    days = [(_START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(3)]
    plate_paths = [
        f"{days[i * len(days) // max(1, plates)]}/CAM1_track{i + 1}.jpg" for i in range(plates)
    ]
    for day in {p.split("/")[0] for p in plate_paths}:
        (plates_dir / day).mkdir()
    font = plate_font(44)
    total, done = groups + plates + history, 0
    workers = max(1, min(4, os.cpu_count() or 1))
    earlier = _START - timedelta(days=7)  # the earlier batches' groups sort first
    with ThreadPoolExecutor(workers) as pool:
        history_jobs = [pool.submit(_render_group, seed, 10_000 + i, source,
                                    earlier + timedelta(minutes=5 * i))
                        for i in range(history)]  # fmt: skip
        group_jobs = [pool.submit(_render_group, seed, i, source, _START + timedelta(minutes=5 * i))
                      for i in range(groups)]  # fmt: skip
        plate_jobs = [pool.submit(_render_plate, seed, i, plates_dir / rel, font)
                      for i, rel in enumerate(plate_paths)]  # fmt: skip
        jobs: list[Future[Any]] = [*history_jobs, *group_jobs, *plate_jobs]
        for job in jobs:
            job.result()
            done += 1
            report("Drawing demo images", done, total)
    # One corrupt file and one empty file, each alone in time, for the skipped list.
    end = _START + timedelta(minutes=5 * groups + 10)
    corrupt = f"{end:%Y%m%d_%H%M%S}_stage1.jpg"
    empty = f"{end + timedelta(minutes=5):%Y%m%d_%H%M%S}_stage1.png"
    (source / corrupt).write_bytes(
        b"This is not a JPEG: the demo wrote it to show a skipped file.\n" * 40
    )
    (source / empty).write_bytes(b"")
    texts = [job.result() for job in plate_jobs]
    lines = ["path\ttext"] + [
        f"{rel}\t{text}" for rel, text in zip(plate_paths, texts, strict=True)
    ]
    (plates_dir / "truth.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "version": 1,
        "seed": seed,
        "groups": [job.result() for job in group_jobs],
        "history": [job.result() for job in history_jobs],
        "history_batch_size": groups,
        "skipped": [{"file": corrupt, "fault": "corrupt"}, {"file": empty, "fault": "empty"}],
        "plates": plates,
    }


# The demo reviewer's choices for the first groups: (action, overlay on, user picks).
_PLAN = (
    ("approve", True, "ai"),  # AI pick with its crop -> crop_auto/
    ("crop", True, "best"),  # -> crop/ with a sidecar (the group with the EXIF-rotated photo)
    ("approve", True, "ai"),  # -> crop_auto/
    ("crop", True, "other"),  # the user disagrees with the AI -> crop/
    ("reject", True, "ai"),  # -> delete_staging/
    ("approve", False, "ai"),  # overlay off -> selected/
)


def _plan_choices(groups: list[dict[str, Any]]) -> list[DemoChoice]:
    out = []
    for i, (action, overlay, who) in enumerate(_PLAN[: len(groups)]):
        g = groups[i]
        n = len(g["files"])
        pick = {"ai": g["ai_index"], "best": g["best_index"], "other": (g["ai_index"] + 1) % n}[who]
        if action == "reject":
            folder = "delete_staging"
        elif action == "crop":
            folder = "crop"
        else:
            folder = "crop_auto" if overlay else "selected"
        out.append(DemoChoice(i, action, pick, overlay, folder))
    return out


def _group_pk(conn: sqlite3.Connection, first_image: Path) -> int | None:
    row = conn.execute(
        "SELECT group_pk FROM group_images WHERE path = ?", (str(first_image),)
    ).fetchone()
    return None if row is None else int(row[0])


def _scan(project: Project, conn: sqlite3.Connection, report: Progress, expected: int) -> None:
    from workbench.core.scan_store import scan_project

    stage = "Grouping the demo photos"
    report(stage, 0, expected)
    scan_project(
        project, conn, on_group=lambda pk, group: report(stage, min(pk, expected), expected)
    )
    report(stage, expected, expected)


def _finalize_first(project: Project, conn: sqlite3.Connection, manifest: dict[str, Any],
                    report: Progress) -> None:  # fmt: skip
    """Stage and finalize the planned choices, so crop/ and crop_auto/ have work."""
    from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice

    pks = []
    for choice in _plan_choices(manifest["groups"]):
        g = manifest["groups"][choice.group_index]
        pk = _group_pk(conn, project.source / g["files"][0])
        if (
            pk is None
            or conn.execute("SELECT group_id FROM groups WHERE id = ?", (pk,)).fetchone()[0]
        ):
            continue  # not scanned as expected, or finalized already
        stage_choice(conn, pk, StagedChoice(
            user_action=choice.user_action,
            user_selected_index=choice.user_selected_index,
            crop_overlay_on=choice.crop_overlay_on,
            ai_selected_index=g["ai_index"],
            ai_crop=CropBox.from_seq(g["ai_crop"]),
            ai_confidence=g["ai_confidence"],
            ranker_version="heuristic",
            crop_version="heuristic",
        ))  # fmt: skip
        pks.append(pk)
    if pks:
        report("Finalizing the first demo groups", 0, 1)
        finalize_groups(project, conn, pks)
        report("Finalizing the first demo groups", 1, 1)


def generate_demo(
    store: ProjectStore,
    name: str = "demo",
    *,
    groups: int = 24,
    plates: int = 30,
    seed: int = 7,
    history_batches: int = 0,
    progress: Progress | None = None,
) -> DemoSummary:
    """The demo project `name`, generated on first use and reused afterwards.

    A project of that name that the demo did not make raises ProjectExists; the demo
    never deletes or overwrites anything but its own half-written temporary folder.
    `progress(stage, done, total)` is called as the work goes on. With an existing demo,
    the arguments other than `name` are ignored (the demo's own manifest says what it holds).
    There is deliberately no `force`: to start over, move the demo's folder away (or pass
    another name); an interrupted generation is completed on the next call.
    """
    started = time.perf_counter()
    report: Progress = progress or (lambda stage, done, total: None)
    if not 1 <= groups <= 500 or not 0 <= plates <= 5000 or not 0 <= history_batches <= 10:
        raise InvalidInput(
            "A demo has 1 to 500 groups, 0 to 5000 plates and 0 to 10 earlier batches."
        )
    root = store.path_of(name)
    manifest_file = root / MANIFEST
    created = False
    if not manifest_file.is_file():
        if (root / SETTINGS_FILE).exists():
            raise ProjectExists(
                f"Project '{name}' already exists in {store.projects_dir} and is not a demo; "
                "choose another name for the demo."
            )
        if root.exists():
            raise InvalidInput(
                f"{root} exists but holds no project; move it away or choose another demo name."
            )
        store.projects_dir.mkdir(parents=True, exist_ok=True)
        partial = store.projects_dir / f".{name}.demo-partial-{os.getpid()}"
        if partial.exists():
            shutil.rmtree(partial)  # our own leftover from an earlier failed run of this process
        try:
            manifest = _draw_files(partial, groups, plates, seed, report,
                                   history=groups * history_batches)  # fmt: skip
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            os.replace(partial, root)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        created = True
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if not (root / SETTINGS_FILE).exists():
        # With earlier batches, a batch is as long as the demo's own groups, so those
        # come last as one batch of their own.
        history = bool(manifest.get("history"))
        if history:
            store.create(name, root / "source", batch_size=len(manifest["groups"]))
        else:
            store.create(name, root / "source")
    project = store.open(name)
    _complete(project, manifest, report)
    return _summary(project, manifest, created, time.perf_counter() - started)


def _complete(project: Project, manifest: dict[str, Any], report: Progress) -> None:
    """Run the steps an earlier, interrupted generation did not finish."""
    from workbench.core import db

    conn = project.connect()
    try:
        if db.get_meta(conn, "demo_steps") == "done":
            return
        with project.lock("demo"):
            if not conn.execute("SELECT 1 FROM groups LIMIT 1").fetchone():
                _scan(project, conn, report,
                      len(manifest["groups"]) + len(manifest.get("history", [])))  # fmt: skip
            if manifest.get("history"):
                from workbench.core import demo_history

                demo_history.allow_small_held_out(project)
                demo_history.finalize_history(project, conn, manifest, _group_pk, report)
            _finalize_first(project, conn, manifest, report)
            with db.transaction(conn):
                db.set_meta(conn, "demo_steps", "done")
    finally:
        conn.close()


def _summary(
    project: Project, manifest: dict[str, Any], created: bool, seconds: float
) -> DemoSummary:
    source = project.root / "source"
    reasons = {"corrupt": "not a readable image", "empty": "an empty (zero-byte) file"}
    return DemoSummary(
        name=project.name,
        root=project.root,
        source=source,
        plates_dir=project.root / "plates",
        truth_file=project.root / "plates" / "truth.tsv",
        groups=tuple(
            DemoGroup(
                files=tuple(source / f for f in g["files"]),
                best_index=int(g["best_index"]),
                ai_index=int(g["ai_index"]),
                ai_crop=CropBox.from_seq(g["ai_crop"]),
                ai_confidence=float(g["ai_confidence"]),
            )
            for g in manifest["groups"]
        ),
        skipped=tuple((source / s["file"], reasons[s["fault"]]) for s in manifest["skipped"]),
        plates=int(manifest["plates"]),
        choices=tuple(_plan_choices(manifest["groups"])),
        created=created,
        seconds=seconds,
    )
