"""Thumbnails (memory LRU, disk cache, decode) and the content key they are filed under."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.core.content_key import CHUNK_BYTES, content_key
from workbench.core.errors import InvalidInput
from workbench.core.images import UnreadableImage
from workbench.core.thumbs import ThumbnailCache, thumbs_dir


def noisy_png(path: Path, w: int, h: int, seed: int = 0) -> Path:
    """A PNG that compresses badly, so it is as large as a real photo's."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# -- content_key ------------------------------------------------------------------------------


def test_content_key_follows_content_not_name(tmp_path: Path) -> None:
    a = noisy_png(tmp_path / "a.png", 300, 300)
    b = tmp_path / "moved.png"
    b.write_bytes(a.read_bytes())
    assert content_key(a) == content_key(b) == content_key(str(a), os.stat(a))
    assert len(content_key(a)) == 40
    assert os.path.getsize(a) > 2 * CHUNK_BYTES  # head and tail are separate reads

    data = bytearray(a.read_bytes())
    data[-20] ^= 0xFF  # a change in the tail
    b.write_bytes(bytes(data))
    assert content_key(b) != content_key(a)
    data = bytearray(a.read_bytes())
    data[100] ^= 0xFF  # a change in the head
    b.write_bytes(bytes(data))
    assert content_key(b) != content_key(a)
    b.write_bytes(a.read_bytes() + b"\0")  # a change in size
    assert content_key(b) != content_key(a)


def test_content_key_of_small_and_missing_files(tmp_path: Path) -> None:
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    other = tmp_path / "t.bin"
    other.write_bytes(b"abd")
    assert content_key(small) != content_key(other)
    with pytest.raises(FileNotFoundError):
        content_key(tmp_path / "none.png")


# -- ThumbnailCache -------------------------------------------------------------------------------


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return noisy_png(tmp_path / "photo.png", 800, 600)


def test_get_downscales_and_never_upscales(tmp_path: Path, photo: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs")
    thumb = cache.get(photo, 200)
    assert thumb.mode == "RGB" and thumb.size == (200, 150)
    small = cache.get(photo, 2000)
    assert small.size == (800, 600)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown rotated by 90 degrees
    Image.new("RGB", (400, 200), (200, 30, 30)).save(path, exif=exif)
    thumb = ThumbnailCache(tmp_path / "thumbs").get(path, 100)
    assert thumb.size == (50, 100)


def test_memory_then_disk_then_decode(tmp_path: Path, photo: Path) -> None:
    folder = tmp_path / "thumbs"
    first = ThumbnailCache(folder)
    a = first.get(photo, 256)
    assert first.get(photo, 256) is a  # memory
    assert first.stats().decodes == 1 and first.stats().memory_hits == 1
    key = content_key(photo)
    on_disk = folder / key[:2] / f"{key}_256.jpg"
    assert on_disk.is_file() and not list(folder.rglob("*.tmp"))

    second = ThumbnailCache(folder)  # a restart: the disk copy serves
    b = second.get(photo, 256)
    assert second.stats().disk_hits == 1 and second.stats().decodes == 0
    assert b.size == a.size and b.mode == "RGB"
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean()
    assert diff < 20  # JPEG quality 90 of pure noise, the worst case for JPEG


def test_peek_never_touches_the_disk(tmp_path: Path, photo: Path) -> None:
    folder = tmp_path / "thumbs"
    ThumbnailCache(folder).get(photo, 128)
    cache = ThumbnailCache(folder)
    assert cache.peek(photo, 128) is None  # on disk only
    got = cache.get(photo, 128)
    assert cache.peek(photo, 128) is got
    assert cache.peek(photo, 64) is None


def test_a_smaller_size_is_derived_from_a_larger_one_in_memory(tmp_path: Path, photo: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs")
    cache.get(photo, 512)
    small = cache.get(photo, 128)
    assert small.size == (128, 96)
    stats = cache.stats()
    assert stats.decodes == 1 and stats.derived == 1


def test_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path, photo: Path) -> None:
    folder = tmp_path / "thumbs"
    ThumbnailCache(folder).get(photo, 200)
    key = content_key(photo)
    on_disk = folder / key[:2] / f"{key}_200.jpg"
    on_disk.write_bytes(on_disk.read_bytes()[:300])  # truncated, as by a crash
    cache = ThumbnailCache(folder)
    assert cache.get(photo, 200).size == (200, 150)
    assert cache.stats().decodes == 1
    with Image.open(on_disk) as im:
        im.load()  # rewritten whole
        assert im.size == (200, 150)


def test_an_edited_original_is_not_served_stale(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.new("RGB", (300, 200), (255, 0, 0)).save(path)
    cache = ThumbnailCache(tmp_path / "thumbs")
    assert cache.get(path, 100).getpixel((10, 10))[0] > 200
    Image.new("RGB", (300, 200), (0, 0, 255)).save(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert cache.get(path, 100).getpixel((10, 10))[2] > 200


def test_unreadable_originals_raise_a_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a PNG")
    cache = ThumbnailCache(tmp_path / "thumbs")
    with pytest.raises(UnreadableImage, match="not an image"):
        cache.get(bad, 100)
    with pytest.raises(UnreadableImage, match="does not exist"):
        cache.get(tmp_path / "gone.png", 100)
    with pytest.raises(InvalidInput, match="at least 1"):
        cache.get(bad, 0)


def test_memory_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    paths = [noisy_png(tmp_path / f"{i}.png", 100, 100, seed=i) for i in range(4)]
    cache = ThumbnailCache(None, max_memory_bytes=3 * 100 * 100 * 3)
    for p in paths[:3]:
        cache.get(p, 100)
    cache.get(paths[0], 100)  # now the most recently used
    cache.get(paths[3], 100)  # evicts paths[1]
    assert cache.peek(paths[1], 100) is None
    assert all(cache.peek(p, 100) is not None for p in (paths[0], paths[2], paths[3]))
    assert cache.stats().memory_bytes <= 3 * 100 * 100 * 3


def test_disk_is_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "thumbs"
    paths = [noisy_png(tmp_path / f"{i}.png", 160, 160, seed=i) for i in range(12)]
    one = ThumbnailCache(folder)
    one.get(paths[0], 160)
    size = next(folder.rglob("*.jpg")).stat().st_size
    cache = ThumbnailCache(folder, max_disk_bytes=4 * size)
    for p in paths:
        cache.get(p, 160)
    cache.prune_disk()
    total = sum(f.stat().st_size for f in folder.rglob("*.jpg"))
    assert 0 < total <= 4 * size * 1.1
    key = content_key(paths[-1])
    assert (folder / key[:2] / f"{key}_160.jpg").is_file()  # the newest is kept


def test_concurrent_requests_share_one_decode(tmp_path: Path, photo: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs")
    barrier = threading.Barrier(6)
    results: list[Image.Image] = []

    def work() -> None:
        barrier.wait()
        results.append(cache.get(photo, 300))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r is results[0] for r in results)
    assert cache.stats().decodes == 1


def test_thumbs_dir_is_inside_the_project(store, source_dir: Path) -> None:  # noqa: ANN001
    project = store.create("thumbs", source_dir)
    assert thumbs_dir(project) == project.root / "cache" / "thumbs"
