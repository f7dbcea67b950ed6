"""The reviewer benchmark's data: 3072 px PNGs in groups of three, projects over them, resets.

Used by bench_reviewer.py; `make_images` reuses a kept folder when it already holds them.
"""

from __future__ import annotations

import shutil
import zlib
from datetime import datetime, timedelta
from pathlib import Path

NAME = "bench"


def png_variant(data: bytes, tag: str) -> bytes:
    """The same PNG with a text chunk after its header: other bytes, the same pixels.

    The caches key files by content (size, first and last 64 KiB), so each variant is a
    distinct image to them and is decoded on its own, as distinct photos would be.
    """
    payload = b"Comment\x00" + tag.encode()
    chunk = len(payload).to_bytes(4, "big") + b"tEXt" + payload
    chunk += zlib.crc32(b"tEXt" + payload).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]  # signature (8) + IHDR (25)


def make_images(folder: Path, groups: int, size: int) -> None:
    """groups x 3 PNGs (blurred, clean, noisy), named by time so they group by sequence."""
    import numpy as np
    from bench_predict import photo
    from PIL import Image, ImageFilter

    marker = folder / ".bench_reviewer"
    if marker.is_file() and marker.read_text() == f"{groups} {size}":
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    bases: list[list[bytes]] = []
    for _ in range(2):
        clean = photo(rng, size)
        a = np.asarray(clean, dtype=np.float32)
        noisy = Image.fromarray(np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8))
        trio = []
        for im in (clean.filter(ImageFilter.GaussianBlur(6)), clean, noisy):
            path = folder / "base.png"
            im.save(path, compress_level=6)
            trio.append(path.read_bytes())
        bases.append(trio)
    (folder / "base.png").unlink()
    start = datetime(2025, 7, 5, 8, 0, 0)
    for g in range(groups):
        for i, data in enumerate(bases[g % 2]):
            stamp = start + timedelta(minutes=5 * g, seconds=2 * i)
            name = f"IMG_{stamp:%Y%m%d_%H%M%S}.png"
            (folder / name).write_bytes(png_variant(data, f"group {g} image {i}"))
    marker.write_text(f"{groups} {size}")


def make_project(projects: Path, source: Path, name: str = NAME) -> None:
    from workbench.core.project import ProjectStore
    from workbench.core.scan_store import scan_project

    store = ProjectStore(projects, projects.parent / "models")
    if name in store.names():
        return
    project = store.create(name, source)
    conn = project.connect()
    try:
        scan_project(project, conn)
    finally:
        conn.close()


def reset(projects: Path, name: str, *, cold: bool) -> None:
    """Forget choices and position; `cold` also empties the thumbnail and feature caches."""
    from workbench.core.project import ProjectStore
    from workbench.core.thumbs import thumbs_dir

    project = ProjectStore(projects, projects.parent / "models").open(name)
    conn = project.connect()
    try:
        conn.execute("DELETE FROM staged_choices")
        conn.execute("DELETE FROM meta WHERE key = 'review.position'")
        if cold:
            conn.execute("DELETE FROM image_features")
    finally:
        conn.close()
    if cold:
        shutil.rmtree(thumbs_dir(project), ignore_errors=True)
