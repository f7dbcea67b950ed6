"""grouping.py: sequence and similarity rules, laziness, skips, storing and rescans."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from workbench.core import grouping
from workbench.core.errors import InvalidInput
from workbench.core.grouping import (
    FormedGroup,
    GroupingEvent,
    burst_stem,
    iter_groups,
    name_timestamp,
    natural_key,
    scan_folder,
)
from workbench.core.images import SkippedFile
from workbench.core.project import Project, ProjectStore
from workbench.core.scan_store import known_paths, load_groups, scan_into, store_scan

T0 = 1_750_000_000  # an arbitrary epoch second for mtimes


def img(folder: Path, name: str, mtime: float | None = None, color: int = 0) -> Path:
    """A tiny PNG or JPEG (by suffix), optionally with a given mtime."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), (color % 256, 80, 160)).save(path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def formed(source: Path, **options: Any) -> list[FormedGroup]:
    return [ev for ev in iter_groups(source, **options) if isinstance(ev, FormedGroup)]


def groups_of(source: Path, **options: Any) -> list[list[str]]:
    return [[im.path.name for im in g.images] for g in formed(source, **options)]


def reasons_of(source: Path, **options: Any) -> list[str]:
    return [g.reason for g in formed(source, **options)]


# --- file-name rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("20250705_220230", "2025-07-05 22:02:30"),
        ("IMG_20250705_220230", "2025-07-05 22:02:30"),
        ("2025-07-05 22.02.30", "2025-07-05 22:02:30"),
        ("Screenshot 2025-07-05 at 22.02.30", "2025-07-05 22:02:30"),
        ("PXL_20250705_220230123", "2025-07-05 22:02:30.123"),
        ("IMG_0042", None),
        ("20251399_999999", None),  # not a valid date/time
        ("ID_123456789012345", None),
    ],
)
def test_name_timestamp(stem: str, expected: str | None) -> None:
    from datetime import UTC, datetime

    got = name_timestamp(stem)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        text = datetime.fromtimestamp(got, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert text.rstrip("0").rstrip(".").startswith(expected)


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("IMG_0042", "IMG_0042"),
        ("IMG_0042_1", "IMG_0042"),
        ("IMG_0042-2", "IMG_0042"),
        ("IMG_0042 (3)", "IMG_0042"),
        ("IMG_0042_a", "IMG_0042"),
        ("IMG_0042_stage3_enhanced", "IMG_0042"),
        ("IMG_0042 copy 2", "IMG_0042"),
        ("IMG_0042-Edit", "IMG_0042"),
        ("DSC01234_v2", "DSC01234"),
        ("20250705_220230_1", "20250705_220230"),
        ("2025-07-05 22.02.30 (2)", "2025-07-05 22.02.30"),
        ("IMG_001", None),  # stripping "_001" leaves no shot number
        ("holiday_2", None),
        ("2025-07-05", None),  # a date alone is not one shot
    ],
)
def test_burst_stem(stem: str, expected: str | None) -> None:
    assert burst_stem(stem) == expected


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["img10.png", "IMG2.png", "img1.png"]
    assert sorted(names, key=natural_key) == ["img1.png", "IMG2.png", "img10.png"]


# --- sequence grouping ---------------------------------------------------------------


def test_sequence_by_filename_timestamps_wins_over_mtime(source_dir: Path) -> None:
    for i, name in enumerate(
        ["20250705_220230.jpg", "20250705_220232.jpg", "20250705_220234.jpg",
         "20250705_220300.jpg", "20250705_221000.jpg", "20250705_221003.png"]
    ):  # fmt: skip
        img(source_dir, name, mtime=T0 + 1000 * i)  # mtimes far apart: names must decide
    assert groups_of(source_dir) == [
        ["20250705_220230.jpg", "20250705_220232.jpg", "20250705_220234.jpg"],
        ["20250705_220300.jpg"],
        ["20250705_221000.jpg", "20250705_221003.png"],
    ]
    assert reasons_of(source_dir)[:2] == [
        "sequence: 3 files within 4.0 s (20250705_220230 ... 20250705_220234)",
        "single image: no neighbour within 10 s",
    ]


def test_sequence_by_mtime_in_natural_name_order(source_dir: Path) -> None:
    img(source_dir, "shot10.png", mtime=T0 + 100)
    img(source_dir, "shot2.png", mtime=T0 + 5)
    img(source_dir, "shot1.png", mtime=T0)
    img(source_dir, "shot11.png", mtime=T0 + 103)
    img(source_dir, "shot12.png", mtime=T0 + 500)
    assert groups_of(source_dir) == [
        ["shot1.png", "shot2.png"],
        ["shot10.png", "shot11.png"],
        ["shot12.png"],
    ]
    singles = [["shot1.png"], ["shot2.png"], ["shot10.png"], ["shot11.png"], ["shot12.png"]]
    assert groups_of(source_dir, gap_seconds=2) == singles


def test_same_timestamp_burst_is_ordered_by_natural_name(source_dir: Path) -> None:
    for name in ["20250705_220230_10.jpg", "20250705_220230_2.jpg", "20250705_220230_1.jpg"]:
        img(source_dir, name, mtime=T0)
    assert groups_of(source_dir) == [
        ["20250705_220230_1.jpg", "20250705_220230_2.jpg", "20250705_220230_10.jpg"]
    ]


def test_burst_stem_joins_variants_edited_much_later(source_dir: Path) -> None:
    img(source_dir, "IMG_0042.jpg", mtime=T0)
    img(source_dir, "IMG_0042_1.jpg", mtime=T0 + 3600)
    img(source_dir, "IMG_0042_stage3_enhanced.png", mtime=T0 + 86400)
    img(source_dir, "IMG_0043.jpg", mtime=T0 + 200_000)
    assert groups_of(source_dir) == [
        ["IMG_0042.jpg", "IMG_0042_1.jpg", "IMG_0042_stage3_enhanced.png"],
        ["IMG_0043.jpg"],
    ]
    reason = reasons_of(source_dir)[0]
    assert reason.startswith("burst stem 'IMG_0042': 3 files")


@pytest.mark.parametrize(
    ("count", "max_size", "sizes"),
    [
        (4, 4, [4]),
        (5, 4, [3, 2]),
        (8, 4, [4, 4]),
        (9, 4, [4, 3, 2]),
        (7, 3, [3, 2, 2]),
        (3, 2, [2, 1]),  # unavoidable with groups of at most 2
        (1, 4, [1]),
    ],
)
def test_long_runs_split_into_balanced_groups(
    source_dir: Path, count: int, max_size: int, sizes: list[int]
) -> None:
    for i in range(count):
        img(source_dir, f"p{i:03d}.png", mtime=T0 + i)
    assert [len(g) for g in groups_of(source_dir, max_size=max_size)] == sizes


def test_split_groups_say_so(source_dir: Path) -> None:
    for i in range(5):
        img(source_dir, f"p{i}.png", mtime=T0 + i)
    assert reasons_of(source_dir) == [
        "sequence: 3 files within 2.0 s (p0 ... p2); part of a run of 5 split into groups of at most 4",
        "sequence: 2 files within 1.0 s (p3 ... p4); part of a run of 5 split into groups of at most 4",
    ]


def test_a_huge_run_streams_and_never_leaves_a_single(source_dir: Path) -> None:
    for i in range(101):
        img(source_dir, f"same_{i:03d}.png", mtime=T0)  # copied files: identical mtimes
    sizes = [len(g) for g in groups_of(source_dir)]
    assert sum(sizes) == 101 and max(sizes) <= 4 and min(sizes) >= 2


def test_folders_never_share_a_group_and_hidden_things_are_ignored(source_dir: Path) -> None:
    img(source_dir, "a.png", mtime=T0)
    img(source_dir / "sub", "b.png", mtime=T0 + 1)
    img(source_dir / ".cache", "c.png", mtime=T0 + 2)
    img(source_dir, ".hidden.png", mtime=T0 + 3)
    (source_dir / "a.png.decision").write_text("{}")
    (source_dir / "notes.txt").write_text("ignored: not an image name")
    assert groups_of(source_dir) == [["a.png"], ["b.png"]]


def test_symlinks_are_reported_not_followed(source_dir: Path, tmp_path: Path) -> None:
    outside = img(tmp_path / "elsewhere", "x.png")
    (source_dir / "link.png").symlink_to(outside)
    img(source_dir, "real.png")
    events = list(iter_groups(source_dir))
    assert SkippedFile(source_dir / "link.png", "symbolic link: not followed") in events
    assert [g.images[0].path.name for g in events if isinstance(g, FormedGroup)] == ["real.png"]


def test_bad_options_and_source_are_sentences(tmp_path: Path, source_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="2 to 4"):
        iter_groups(source_dir, max_size=5)
    with pytest.raises(InvalidInput, match="group_by"):
        iter_groups(source_dir, group_by="colour")
    with pytest.raises(InvalidInput, match="does not exist"):
        iter_groups(tmp_path / "missing")
    with pytest.raises(InvalidInput, match="does not exist"):
        list(scan_folder(tmp_path / "missing"))


def test_scan_folder_entries_carry_size_and_mtime(source_dir: Path) -> None:
    path = img(source_dir, "a.png", mtime=T0)
    (entry,) = list(scan_folder(source_dir))
    assert entry.path == str(path) and entry.size == path.stat().st_size
    assert entry.mtime_ns == T0 * 1_000_000_000
    (bare,) = list(scan_folder(source_dir, stat=False))
    assert bare.size is None and os.path.isabs(bare.path)


# --- skips ---------------------------------------------------------------------------


def test_unusable_files_are_skipped_never_grouped(source_dir: Path) -> None:
    img(source_dir, "a.png", mtime=T0)
    (source_dir / "b.png").touch()
    os.utime(source_dir / "b.png", (T0 + 1, T0 + 1))
    (source_dir / "c.jpg").write_text("not a picture")
    whole = img(source_dir, "d_whole.jpg").read_bytes()
    (source_dir / "d_whole.jpg").unlink()
    (source_dir / "d.jpg").write_bytes(whole[: len(whole) // 2])
    img(source_dir, "e.png", mtime=T0 + 2)
    events = list(iter_groups(source_dir))
    skipped = {e.path.name: e.reason for e in events if isinstance(e, SkippedFile)}
    assert skipped == {
        "b.png": "zero-byte file",
        "c.jpg": "not an image (unknown format)",
        "d.jpg": "truncated image data",
    }
    assert [[im.path.name for im in g.images] for g in events if isinstance(g, FormedGroup)] == [
        ["a.png", "e.png"]
    ]


# --- similarity grouping -------------------------------------------------------------


def scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (4, 5, 3), dtype=np.uint8))
    return np.asarray(coarse.resize((160, 120), Image.Resampling.BICUBIC), dtype=np.float64)


def save_array(path: Path, arr: np.ndarray, mtime: float) -> None:
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
    os.utime(path, (mtime, mtime))


def test_similarity_joins_near_duplicates_and_separates_scenes(source_dir: Path) -> None:
    rng = np.random.default_rng(3)
    a, b = scene(11), scene(12)
    # Hours apart, so sequence grouping would keep every image alone.
    save_array(source_dir / "s1.png", a, T0)
    save_array(source_dir / "s2.png", a + rng.normal(0, 10, a.shape), T0 + 3600)
    save_array(source_dir / "s3.png", a + 25, T0 + 7200)
    blurred = Image.open(source_dir / "s1.png").filter(ImageFilter.GaussianBlur(2))
    blurred.save(source_dir / "s4.jpg")
    save_array(source_dir / "s5.png", b, T0 + 14400)
    save_array(source_dir / "s6.png", b + rng.normal(0, 8, b.shape), T0 + 18000)
    save_array(source_dir / "s7.png", scene(13), T0 + 21600)
    events = [
        e for e in iter_groups(source_dir, group_by="similarity") if isinstance(e, FormedGroup)
    ]
    assert [[im.path.name for im in g.images] for g in events] == [
        ["s1.png", "s2.png", "s3.png", "s4.jpg"],
        ["s5.png", "s6.png"],
        ["s7.png"],
    ]
    assert events[0].reason.startswith("similar: dHash distances ")
    assert events[2].reason == "single image: no similar neighbour (dHash distance > 10)"
    # The same files by sequence: hours apart, so each one is alone.
    assert [len(g) for g in groups_of(source_dir)] == [1] * 7


# --- laziness ------------------------------------------------------------------------


def test_first_group_comes_before_later_files_are_probed(
    source_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(60):
        img(source_dir, f"IMG_{i:04d}.png", mtime=T0 + (i // 3) * 100 + i % 3)
    calls: list[str] = []
    real = grouping.probe_image

    def counting(path: str, stat: object = None) -> object:
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(grouping, "probe_image", counting)
    events = iter_groups(source_dir)
    first = next(events)
    assert isinstance(first, FormedGroup) and len(first.images) == 3
    assert calls == ["IMG_0000.png", "IMG_0001.png", "IMG_0002.png", "IMG_0003.png"]
    assert sum(1 for _ in events) == 19 and len(calls) == 60


# --- storing -------------------------------------------------------------------------


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    return store.create("p", source_dir)


def test_store_scan_writes_groups_batches_and_skips(project: Project, source_dir: Path) -> None:
    for i in range(7):
        img(source_dir, f"IMG_{i:04d}.png", mtime=T0 + i * 100)  # 7 singles
    (source_dir / "bad.png").write_text("nope")
    conn = project.connect()
    seen: list[tuple[int, int]] = []
    other = project.connect()

    def on_group(pk: int, group: FormedGroup) -> None:
        # Called only after commit: another connection already sees the group.
        count = other.execute("SELECT COUNT(*) FROM groups WHERE id = ?", (pk,)).fetchone()[0]
        seen.append((pk, count))

    summary = store_scan(conn, iter_groups(source_dir), batch_size=2, on_group=on_group)
    assert (summary.groups, summary.images, summary.batches) == (7, 7, [1, 2, 3, 4])
    assert [s.path.name for s in summary.skipped] == ["bad.png"]
    assert summary.skip_counts() == {"not an image (unknown format)": 1}
    assert summary.first_group_s is not None and summary.first_group_s <= summary.elapsed_s
    assert [c for _, c in seen] == [1] * 7
    stored = load_groups(conn)
    assert [(g.batch_number, g.position) for g in stored] == [
        (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1), (4, 0)
    ]  # fmt: skip
    assert stored[0].group_id is None and stored[0].reason.startswith("single image")
    first = stored[0].images[0]
    assert first.path == str(source_dir / "IMG_0000.png") and os.path.isabs(first.path)
    assert (first.width, first.height) == (24, 16)
    assert [g.pk for g in load_groups(conn, batch_number=2)] == [stored[2].pk, stored[3].pk]
    row = conn.execute("SELECT reason, scanned_at FROM scan_skipped").fetchone()
    assert row[0] == "not an image (unknown format)" and row[1].endswith("Z")
    summary_dict = summary.to_dict()
    assert summary_dict["groups"] == 7 and summary_dict["skipped"][0]["path"].endswith("bad.png")


def test_rescan_adds_only_new_files_in_new_batches(project: Project, source_dir: Path) -> None:
    for i in range(3):
        img(source_dir, f"IMG_{i:04d}.png", mtime=T0 + i)
    (source_dir / "IMG_0100.png").write_text("half-copied")
    conn = project.connect()
    first = scan_into(conn, source_dir, batch_size=100)
    assert (first.groups, first.images, first.batches, len(first.skipped)) == (1, 3, [1], 1)
    img(source_dir, "IMG_0100.png", mtime=T0 + 10_000)  # the copy finished
    img(source_dir, "IMG_0101.png", mtime=T0 + 10_001)
    again = scan_into(conn, source_dir, batch_size=100)
    assert (again.groups, again.images, again.batches, again.skipped) == (1, 2, [2], [])
    assert len(known_paths(conn)) == 5
    assert conn.execute("SELECT COUNT(*) FROM scan_skipped").fetchone()[0] == 0
    nothing = scan_into(conn, source_dir)
    assert (nothing.groups, nothing.batches) == (0, [])


def test_store_scan_never_stores_a_path_twice(project: Project, source_dir: Path) -> None:
    img(source_dir, "a.png", mtime=T0)
    img(source_dir, "b.png", mtime=T0 + 1)
    conn = project.connect()
    store_scan(conn, iter_groups(source_dir), batch_size=10)
    img(source_dir, "c.png", mtime=T0 + 2)
    # A caller that forgot known_paths: a, b are dropped from the group rather than duplicated.
    summary = store_scan(conn, iter_groups(source_dir), batch_size=10)
    assert (summary.groups, summary.images) == (1, 1)
    assert [len(g.images) for g in load_groups(conn)] == [2, 1]


def test_store_scan_keeps_what_was_found_when_stopped(project: Project, source_dir: Path) -> None:
    for i in range(10):
        img(source_dir, f"IMG_{i:04d}.png", mtime=T0 + i * 100)
    conn = project.connect()
    seen: list[int] = []
    summary = store_scan(
        conn, iter_groups(source_dir), batch_size=3, should_stop=lambda: len(seen) >= 4,
        on_group=lambda pk, g: seen.append(pk),
    )  # fmt: skip
    assert summary.stopped and 4 <= summary.groups < 10
    assert len(load_groups(conn)) == summary.groups
    rest = scan_into(conn, source_dir, batch_size=3)
    assert summary.groups + rest.groups == 10


def test_store_scan_flushes_formed_groups_when_the_scan_fails(
    project: Project, source_dir: Path
) -> None:
    img(source_dir, "a.png", mtime=T0)
    img(source_dir, "b.png", mtime=T0 + 1000)
    conn = project.connect()

    def events() -> Iterator[GroupingEvent]:
        yield from iter_groups(source_dir)
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError):
        store_scan(conn, events(), batch_size=10)
    assert len(load_groups(conn)) == 2
    assert isinstance(conn, sqlite3.Connection) and not conn.in_transaction


def test_undecodable_camera_files_travel_or_are_reported(tmp_path: Path) -> None:
    """A RAW/HEIC beside a same-stem JPEG is its companion; one alone is listed as skipped."""
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(src / "20250101_120000.jpg")
    (src / "20250101_120000.CR2").write_bytes(b"raw bytes")
    (src / "lonely.heic").write_bytes(b"heic bytes")
    Image.new("RGB", (40, 30), (10, 20, 30)).save(src / "anim.gif")
    events = list(iter_groups(src))
    skipped = {e.path.name: e.reason for e in events if isinstance(e, SkippedFile)}
    grouped = {i.path.name for e in events if isinstance(e, FormedGroup) for i in e.images}
    assert grouped == {"20250101_120000.jpg", "anim.gif"}
    assert list(skipped) == ["lonely.heic"] and "unsupported image format" in skipped["lonely.heic"]
