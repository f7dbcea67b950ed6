"""A generated project whose decisions follow a rule on image content, for measuring training.

`make_rule_project` draws groups of near-duplicate scenes (a textured subject at a
random place and size on a quiet background), varies each copy's colour saturation,
blur and noise independently, and records a decision per group as a user with a
clear taste would make it:

  keep   the most colourful copy (a colour preference the sharpness heuristic does
         not share, so the heuristic is near chance and a ranker must learn it)
  crop   the subject's box plus MARGIN of its size on each side

Images are shuffled within each group, so position says nothing. The tests, the
training benchmark and the demo use it; everything comes from the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from workbench.core.crops import CropBox
from workbench.core.decisions import Decision, insert_decision, make_group_id
from workbench.core.project import Project, ProjectStore

MARGIN = 0.10
SIZE = (256, 192)
_START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def _scene(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, CropBox]:
    """An RGB float image 0-1 and the subject's normalized box."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    top, bottom = rng.uniform(0.25, 0.7, 3), rng.uniform(0.25, 0.7, 3)
    t = (yy / h)[..., None]
    img = top * (1 - t) + bottom * t
    img = img * 0.85 + 0.15 * img.mean(axis=-1, keepdims=True)
    sw, sh = rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45)
    x1, y1 = rng.uniform(0.02, 0.98 - sw), rng.uniform(0.02, 0.98 - sh)
    box = (int(x1 * w), int(y1 * h), int((x1 + sw) * w), int((y1 + sh) * h))
    canvas = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    hue = rng.uniform(0, 1)
    base = np.array([np.sin(2 * np.pi * (hue + k / 3)) * 0.5 + 0.5 for k in range(3)])
    colours = [tuple(int(v) for v in np.clip(base * s * 255, 0, 255)) for s in (1.0, 0.55)]
    stripe = max(3, (box[2] - box[0]) // 6)
    draw.rectangle(box, fill=colours[0])
    for i, sx in enumerate(range(box[0], box[2], stripe)):
        if i % 2:
            draw.rectangle((sx, box[1], min(sx + stripe - 1, box[2]), box[3]), fill=colours[1])
    draw.ellipse((box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2), outline=(250, 250, 250), width=2)
    arr = np.asarray(canvas).astype(np.float32) / 255.0
    norm = CropBox(box[0] / w, box[1] / h, box[2] / w, box[3] / h)
    return arr, norm


def _variant(arr: np.ndarray, saturation: float, blur: float, noise: float,
             rng: np.random.Generator) -> Image.Image:  # fmt: skip
    grey = arr.mean(axis=-1, keepdims=True)
    out = grey + (arr - grey) * saturation
    img = Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8))
    if blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(img).astype(np.float32)
    a += rng.normal(0, noise, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def crop_for(subject: CropBox) -> CropBox:
    """The crop the rule's user draws around a subject."""
    mw, mh = MARGIN * (subject.x2 - subject.x1), MARGIN * (subject.y2 - subject.y1)
    return CropBox.from_seq([round(max(0.0, subject.x1 - mw), 4), round(max(0.0, subject.y1 - mh), 4),
                             round(min(1.0, subject.x2 + mw), 4), round(min(1.0, subject.y2 + mh), 4)])  # fmt: skip


def make_rule_project(
    store: ProjectStore,
    name: str,
    groups: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = SIZE,
    report: Callable[[int, int], None] | None = None,
) -> Project:
    """A new project with `groups` decided groups of 2-4 images following the rule."""
    rng = np.random.default_rng(seed)
    source = store.projects_dir / name / "source"
    source.mkdir(parents=True, exist_ok=True)
    project = store.create(name, source)
    conn = project.connect()
    w, h = size
    try:
        with conn:
            for g in range(groups):
                arr, subject = _scene(rng, w, h)
                n = int(rng.integers(2, 5))
                sats = rng.permutation(np.linspace(0.05, 1.0, 8))[:n]
                paths = []
                for i in range(n):
                    img = _variant(arr, float(sats[i]), float(rng.uniform(0, 2.0)),
                                   float(rng.uniform(0, 6.0)), rng)  # fmt: skip
                    path = source / f"g{g:05d}_{i}.png"
                    img.save(path, compress_level=1)
                    paths.append(str(path))
                keep = int(np.argmax(sats))
                when = _START + timedelta(minutes=g)
                batch = g // 100 + 1
                insert_decision(conn, Decision(
                    group_id=make_group_id(name, when, batch, g % 100), timestamp=when.isoformat(),
                    project_id=name, images=paths, user_selected_index=keep, user_action="crop",
                    image_width=w, image_height=h, batch_number=batch,
                    ai_selected_index=int(rng.integers(0, n)), final_crop=crop_for(subject),
                    crop_timestamp=when.isoformat(),
                ))  # fmt: skip
                if report is not None and g % 20 == 0:
                    report(g, groups)
    finally:
        conn.close()
    return project
