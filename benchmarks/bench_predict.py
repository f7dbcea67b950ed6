"""Prints what the predictor and the thumbnail cache cost on 3072 px PNGs.

Figures (budgets from the brief of issue 3: features <= 15 ms per 512 px image, a pick
over 3 images with thumbnails in memory <= 30 ms):

- thumbnails: decode of the original (cold), disk-cache hit, memory hit, per image;
- features: compute_features per 512 px thumbnail;
- pick per group of 3: features in memory, in the database, thumbnails in memory only,
  thumbnails on disk only, and nothing cached at all (cold: decodes the 3072 px PNGs).

"Cold" means not in Workbench's caches; the operating system's page cache is warm (the
files were just written), so it measures decoding, not the disk.

    .venv/bin/python benchmarks/bench_predict.py [--size 3072] [--groups 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workbench.core import db  # noqa: E402
from workbench.core.thumbs import ThumbnailCache  # noqa: E402
from workbench.ml.features import FEATURE_SIDE, FeatureStore, compute_features  # noqa: E402
from workbench.ml.predict import Predictor  # noqa: E402

DISPLAY_SIDE = 1024


def photo(rng: np.random.Generator, size: int) -> Image.Image:
    """A photo-like frame: gradient sky, shapes with edges, fine texture and sensor noise."""
    small = size // 4
    t = np.linspace(0.0, 1.0, small, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(60, 200, 3), rng.uniform(40, 160, 3)
    img = Image.fromarray(
        np.broadcast_to(top * (1 - t) + bottom * t, (small, small, 3)).astype(np.uint8)
    )
    d = ImageDraw.Draw(img)
    for _ in range(40):
        x, y, s = rng.uniform(0, small), rng.uniform(0, small), rng.uniform(0.02, 0.15) * small
        colour = tuple(int(v) for v in rng.uniform(20, 235, 3))
        d.ellipse((x, y, x + s, y + s * rng.uniform(0.5, 1.5)), fill=colour)
    big = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    big += rng.standard_normal(big.shape, dtype=np.float32) * 3.0
    return Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))


def make_groups(folder: Path, groups: int, size: int) -> list[list[Path]]:
    rng = np.random.default_rng(7)
    out = []
    for g in range(groups):
        clean = photo(rng, size)
        blurred = clean.filter(ImageFilter.GaussianBlur(6))
        a = np.asarray(clean, dtype=np.float32)
        noisy = Image.fromarray(
            np.clip(a + rng.standard_normal(a.shape, dtype=np.float32) * 25, 0, 255).astype(
                np.uint8
            )
        )
        paths = []
        for name, im in (("blur", blurred), ("clean", clean), ("noise", noisy)):
            paths.append(folder / f"g{g}_{name}.png")
            im.save(paths[-1], compress_level=6)
        out.append(paths)
    return out


def ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms   (n={len(values)})"


def timed_gets(cache: ThumbnailCache, images: list[Path], side: int) -> list[float]:
    out = []
    for path in images:
        start = time.perf_counter()
        cache.get(path, side)
        out.append((time.perf_counter() - start) * 1000)
    return out


def bench_thumbnails(groups: list[list[Path]], work: Path) -> None:
    images = [p for g in groups for p in g]
    for side in (FEATURE_SIDE, DISPLAY_SIDE):
        folder = work / f"thumbs_{side}"
        cold = timed_gets(ThumbnailCache(folder), images, side)
        disk_cache = ThumbnailCache(folder)
        disk = timed_gets(disk_cache, images, side)
        memory = timed_gets(disk_cache, images, side)
        print(f"thumbnail {side:4d} px  cold (decode original) {summary(cold)}")
        print(f"thumbnail {side:4d} px  disk cache             {summary(disk)}")
        print(f"thumbnail {side:4d} px  memory                 {summary(memory)}")


def bench_features(groups: list[list[Path]], work: Path) -> None:
    thumbs = ThumbnailCache(work / "thumbs_512")
    images = [thumbs.get(p, FEATURE_SIDE) for g in groups for p in g]
    rng = np.random.default_rng(3)
    images += [photo(rng, 2048).resize((512, 384)) for _ in range(10)]
    for im in images[:2]:
        compute_features(im)  # loads the face cascade
    times = [ms(lambda im=im: compute_features(im)) for im in images for _ in range(3)]
    print(f"features  512 px  per image              {summary(times)}")


def bench_picks(groups: list[list[Path]], work: Path) -> None:
    conn_path = work / "bench.db"
    conn = db.connect(conn_path, create=True)

    def store() -> FeatureStore:
        return FeatureStore(db.connect(conn_path))

    cold_dir = work / "thumbs_cold_pick"
    cold = Predictor(None, thumbs=ThumbnailCache(cold_dir), feature_store_factory=store)
    cold_ms = [ms(lambda g=g: cold.pick(g)) for g in groups]
    warm_features = [ms(lambda g=g: cold.pick(g)) for g in groups for _ in range(5)]

    from_db = Predictor(None, thumbs=ThumbnailCache(None), feature_store_factory=store)
    db_ms = [ms(lambda g=g: from_db.pick(g)) for g in groups]

    memory_thumbs = ThumbnailCache(cold_dir)
    for g in groups:
        for p in g:
            memory_thumbs.get(p, FEATURE_SIDE)
    thumbs_in_memory = []
    for _ in range(3):  # a fresh predictor each time: features computed, thumbnails reused
        fresh = Predictor(None, thumbs=memory_thumbs)
        thumbs_in_memory += [ms(lambda g=g, f=fresh: f.pick(g)) for g in groups]

    on_disk = [
        ms(lambda g=g: Predictor(None, thumbs=ThumbnailCache(cold_dir)).pick(g)) for g in groups
    ]
    conn.close()
    print(f"pick 3 images  nothing cached (cold)   {summary(cold_ms)}")
    print(f"pick 3 images  thumbnails on disk      {summary(on_disk)}")
    print(f"pick 3 images  thumbnails in memory    {summary(thumbs_in_memory)}")
    print(f"pick 3 images  features in database    {summary(db_ms)}")
    print(f"pick 3 images  features in memory      {summary(warm_features)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3072, help="side of the test PNGs")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_predict_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        groups = make_groups(work, args.groups, args.size)
        sizes = [p.stat().st_size / 1e6 for g in groups for p in g]
        print(
            f"{len(sizes)} PNGs of {args.size}x{args.size} px, {min(sizes):.1f}-{max(sizes):.1f} MB "
            f"(made in {time.perf_counter() - start:.0f} s)"
        )
        bench_thumbnails(groups, work)
        bench_features(groups, work)
        bench_picks(groups, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
