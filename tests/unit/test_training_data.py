"""Training data from the decision database: ranker groups, crop samples, feature
attachment, readiness with project.toml overrides, and the champion-gating rule."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from workbench.core.crops import CropBox
from workbench.core.decisions import Decision, insert_decision
from workbench.core.errors import WorkbenchError
from workbench.ml.jobs import Cancelled, NotReady, Progress
from workbench.ml.registry import SPLIT_FILE, HeldOutSplit, Registry
from workbench.ml.training.common import better, require
from workbench.ml.training.data import (
    DEFAULT_MINIMUMS,
    attach_features,
    crop_samples,
    feature_function,
    ranker_groups,
    readiness,
    training_settings,
)

HALF = HeldOutSplit("test-salt", 0.5)
NONE_HELD = HeldOutSplit("test-salt", 0.0)


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not what these tests measure, and fsync makes them I/O-bound."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def decide(
    conn: sqlite3.Connection,
    group_id: str,
    images: list[str],
    *,
    user: int = 0,
    action: str = "approve",
    ai: int | None = None,
    ai_crop: CropBox | None = None,
    accepted: bool | None = None,
    final: CropBox | None = None,
    directory: str | None = None,
    minute: int = 0,
    size: tuple[int, int] = (640, 480),
) -> None:
    with conn:
        insert_decision(conn, Decision(
            group_id=group_id, timestamp=f"2026-03-01T09:{minute:02d}:00+00:00", project_id="p",
            images=images, user_selected_index=user, user_action=action, image_width=size[0],
            image_height=size[1], directory=directory, ai_selected_index=ai, ai_crop=ai_crop,
            ai_crop_accepted=accepted, final_crop=final,
        ))  # fmt: skip


def raw_decision(conn: sqlite3.Connection, group_id: str, images_json: str, user: int = 0,
                 final: str | None = None, ai_crop: str | None = None) -> None:  # fmt: skip
    """A row the Decision validator would refuse (an import from an older tool)."""
    with conn:
        conn.execute(
            "INSERT INTO ai_decisions (group_id, timestamp, project_id, images, "
            "user_selected_index, user_action, image_width, image_height, final_crop_coords, "
            "ai_crop_coords) VALUES (?, '2026-03-01T10:00:00+00:00', 'p', ?, ?, 'crop', 640, 480,"
            " ?, ?)",
            (group_id, images_json, user, final, ai_crop),
        )


# -- ranker_groups -----------------------------------------------------------------------------


def test_ranker_groups_keep_decided_groups_of_two_or_more(conn: sqlite3.Connection) -> None:
    decide(conn, "g1", ["/a/1.jpg", "/a/2.jpg"], user=1, ai=1, minute=1)  # AI right
    decide(conn, "g2", ["/a/3.jpg", "/a/4.jpg", "/a/5.jpg"], user=2, ai=0, action="crop",
           final=CropBox(0.1, 0.1, 0.5, 0.5), minute=2)  # AI wrong  # fmt: skip
    decide(conn, "g3", ["/a/6.jpg", "/a/7.jpg"], user=0, action="reject", minute=3)
    decide(conn, "g4", ["/a/8.jpg"], user=0, minute=4)  # one image: nothing to rank
    decide(conn, "g5", ["/a/9.jpg", "/a/10.jpg"], user=0, ai=None, minute=5)  # no AI pick
    samples, skipped = ranker_groups(conn, HALF)
    assert [s.group_id for s in samples] == ["g1", "g2", "g5"]  # in decision order
    assert skipped == {"rejected": 1, "single_image": 1, "bad_row": 0}
    by_id = {s.group_id: s for s in samples}
    assert [by_id[g].weight for g in ("g1", "g2", "g5")] == [1.0, 2.0, 1.0]
    assert by_id["g2"].paths == [Path("/a/3.jpg"), Path("/a/4.jpg"), Path("/a/5.jpg")]
    assert (by_id["g2"].user_index, by_id["g2"].ai_index) == (2, 0)
    assert by_id["g5"].ai_index is None
    assert [s.held_out for s in samples] == [HALF.held_out(s.group_id) for s in samples]


def test_ranker_groups_follow_the_split(conn: sqlite3.Connection) -> None:
    for i in range(40):
        decide(conn, f"group-{i:02d}", [f"/a/{i}a.jpg", f"/a/{i}b.jpg"], minute=i)
    samples, _ = ranker_groups(conn, HALF)
    held = [s.group_id for s in samples if s.held_out]
    assert held == [f"group-{i:02d}" for i in range(40) if HALF.held_out(f"group-{i:02d}")]
    assert 0 < len(held) < 40
    assert not any(s.held_out for s in ranker_groups(conn, NONE_HELD)[0])


def test_ranker_groups_find_images_where_they_live_now(conn: sqlite3.Connection) -> None:
    decide(conn, "g1", ["1.jpg", "2.jpg"], directory="/shoot", user=1)
    decide(conn, "g2", ["/abs/3.jpg", "/abs/4.jpg"], directory="/shoot", minute=1)
    with conn:
        conn.execute("INSERT INTO decision_files VALUES ('g1', 1, '/shoot/2.jpg', '/kept/2.jpg')")
    samples, _ = ranker_groups(conn, HALF)
    by_id = {s.group_id: s for s in samples}
    # Moved by finalize: the current path; not moved: the row's directory + name.
    assert by_id["g1"].paths == [Path("/shoot/1.jpg"), Path("/kept/2.jpg")]
    assert by_id["g2"].paths == [Path("/abs/3.jpg"), Path("/abs/4.jpg")]  # absolute as is


def test_ranker_groups_count_bad_rows(conn: sqlite3.Connection) -> None:
    raw_decision(conn, "bad-json", "not json")
    raw_decision(conn, "not-a-list", '{"a": 1}')
    raw_decision(conn, "five", json.dumps([f"/a/{i}.jpg" for i in range(5)]))
    raw_decision(conn, "past-end", json.dumps(["/a/1.jpg", "/a/2.jpg"]), user=3)
    samples, skipped = ranker_groups(conn, HALF)
    assert samples == [] and skipped["bad_row"] == 4


# -- crop_samples ------------------------------------------------------------------------------


def test_crop_samples_take_the_final_crop_else_an_accepted_ai_crop(
    conn: sqlite3.Connection,
) -> None:
    ai = CropBox(0.2, 0.2, 0.6, 0.6)
    final = CropBox(0.25, 0.2, 0.6, 0.7)
    decide(conn, "final", ["/a/1.jpg", "/a/2.jpg"], user=1, action="crop", ai_crop=ai,
           accepted=False, final=final, minute=1, size=(800, 600))  # fmt: skip
    decide(conn, "accepted", ["/a/3.jpg", "/a/4.jpg"], user=0, ai_crop=ai, accepted=True,
           minute=2)  # fmt: skip
    decide(conn, "declined", ["/a/5.jpg", "/a/6.jpg"], ai_crop=ai, accepted=False, minute=3)
    decide(conn, "undecided", ["/a/7.jpg", "/a/8.jpg"], ai_crop=ai, minute=4)
    decide(conn, "no-crop", ["/a/9.jpg", "/a/10.jpg"], minute=5)
    decide(conn, "final-only", ["/a/11.jpg"], action="crop", final=final, minute=6)
    samples, skipped = crop_samples(conn, HALF)
    assert [s.group_id for s in samples] == ["final", "accepted", "final-only"]
    assert skipped == {"bad_row": 0}
    first, second, third = samples
    assert (first.path, first.box, first.ai_box) == (Path("/a/2.jpg"), final, ai)
    assert (first.width, first.height) == (800, 600)
    assert (second.path, second.box, second.ai_box) == (Path("/a/3.jpg"), ai, ai)
    assert (third.path, third.box, third.ai_box) == (Path("/a/11.jpg"), final, None)
    assert [s.held_out for s in samples] == [HALF.held_out(s.group_id) for s in samples]


def test_crop_samples_use_the_current_path_of_the_selected_image(
    conn: sqlite3.Connection,
) -> None:
    decide(conn, "g1", ["1.jpg", "2.jpg"], directory="/shoot", user=1, action="crop",
           final=CropBox(0.1, 0.1, 0.9, 0.9))  # fmt: skip
    with conn:
        conn.execute("INSERT INTO decision_files VALUES ('g1', 0, '/shoot/1.jpg', '/gone/1.jpg')")
        conn.execute("INSERT INTO decision_files VALUES ('g1', 1, '/shoot/2.jpg', '/kept/2.jpg')")
    (sample,), _ = crop_samples(conn, HALF)
    assert sample.path == Path("/kept/2.jpg")


def test_crop_samples_count_bad_rows(conn: sqlite3.Connection) -> None:
    raw_decision(conn, "bad-final", '["/a/1.jpg"]', final="[0.5, 0.5, 0.1, 0.1]")
    raw_decision(conn, "bad-ai", '["/a/1.jpg"]', final="[0.1, 0.1, 0.5, 0.5]", ai_crop="nope")
    raw_decision(conn, "past-end", '["/a/1.jpg"]', user=2, final="[0.1, 0.1, 0.5, 0.5]")
    samples, skipped = crop_samples(conn, HALF)
    assert samples == [] and skipped == {"bad_row": 3}


# -- attach_features ---------------------------------------------------------------------------


def _samples(n: int, per: int = 1) -> list[SimpleNamespace]:
    return [SimpleNamespace(paths=[Path(f"/img/{i}_{k}.png") for k in range(per)], held_out=False)
            for i in range(n)]  # fmt: skip


def test_attach_features_leaves_out_samples_with_an_unreadable_image() -> None:
    samples = _samples(5, per=2)
    samples[3].paths[1] = samples[0].paths[0]  # shared images are read once
    missing = samples[1].paths[0]
    broken = samples[4].paths[1]
    calls: list[Path] = []

    def features(path: Path) -> np.ndarray:
        calls.append(path)
        if path == missing:
            raise FileNotFoundError(path)
        if path == broken:
            raise WorkbenchError(f"{path} cannot be decoded")
        return np.arange(3, dtype=np.float64) + len(calls)

    seen: list[Progress] = []
    ds = attach_features(samples, lambda s: s.paths, features, seen.append, lambda: False)
    assert ds.samples == [samples[0], samples[2], samples[3]]
    assert ds.skipped == {"unreadable": 2}
    assert len(calls) == 9 and len(set(calls)) == 9
    assert missing not in ds.vectors and broken not in ds.vectors
    assert all(v.dtype == np.float32 for v in ds.vectors.values())
    assert seen[0] == Progress("features", 0, 9, message="reading image features")
    assert (seen[-1].step, seen[-1].total) == (9, 9)
    assert ds.counts() == {"train": 3, "held_out": 0, "skipped_unreadable": 2}


def test_attach_features_with_the_projects_feature_function(project, conn) -> None:  # noqa: ANN001
    good = project.source / "good.png"
    Image.new("RGB", (64, 48), (120, 30, 200)).save(good)
    corrupt = project.source / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    samples = [SimpleNamespace(paths=[good]), SimpleNamespace(paths=[project.source / "gone.png"]),
               SimpleNamespace(paths=[corrupt])]  # fmt: skip
    ds = attach_features(samples, lambda s: s.paths, feature_function(project, conn),
                         lambda p: None, lambda: False)  # fmt: skip
    assert ds.samples == samples[:1] and ds.skipped == {"unreadable": 2}
    assert ds.vectors[good].ndim == 1 and np.all(np.isfinite(ds.vectors[good]))


def test_attach_features_polls_should_stop() -> None:
    with pytest.raises(Cancelled):
        attach_features(_samples(3), lambda s: s.paths, lambda p: np.zeros(2),
                        lambda p: None, lambda: True)  # fmt: skip
    calls: list[Path] = []

    def features(path: Path) -> np.ndarray:
        calls.append(path)
        return np.zeros(2)

    with pytest.raises(Cancelled):  # asked to stop after 20 images: it stops within 16 more
        attach_features(_samples(100), lambda s: s.paths, features, lambda p: None,
                        lambda: len(calls) >= 20)  # fmt: skip
    assert 20 <= len(calls) < 40


# -- training_settings and readiness -----------------------------------------------------------


def _append_training(project, text: str) -> None:  # noqa: ANN001
    with open(project.root / "project.toml", "a", encoding="utf-8") as fp:
        fp.write("\n[training]\n" + text + "\n")


def test_training_settings_default_and_override(project) -> None:  # noqa: ANN001
    assert training_settings(project.root) == DEFAULT_MINIMUMS
    _append_training(project, "min_smartcrop_samples = 2\nmin_ranker_groups = 0\n"
                     "min_crop_samples = -3\nmin_crop_held_out = true\n"
                     'min_ranker_held_out = "7"\nunknown_key = 4')  # fmt: skip
    settings = training_settings(project.root)
    assert settings["min_smartcrop_samples"] == 2 and settings["min_ranker_groups"] == 0
    # Bad values are ignored, not fatal.
    for key in ("min_crop_samples", "min_crop_held_out", "min_ranker_held_out"):
        assert settings[key] == DEFAULT_MINIMUMS[key]
    assert "unknown_key" not in settings


def test_training_settings_survive_a_broken_project_toml(tmp_path: Path) -> None:
    assert training_settings(tmp_path) == DEFAULT_MINIMUMS  # no file
    (tmp_path / "project.toml").write_text("[training\nbroken")
    assert training_settings(tmp_path) == DEFAULT_MINIMUMS


def _frozen_registry(project, fraction: float) -> Registry:  # noqa: ANN001
    project.models_dir.mkdir(parents=True, exist_ok=True)
    (project.models_dir / SPLIT_FILE).write_text(
        json.dumps({"salt": "test-salt", "fraction": fraction})
    )
    return Registry(project.models_dir)


def _crops(conn: sqlite3.Connection, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        decide(conn, f"c{i:03d}", [f"/a/{i}.jpg"], action="crop", minute=i % 60,
               final=CropBox(0.1, 0.1, 0.6, 0.6))  # fmt: skip


def test_readiness_counts_what_is_missing(project, conn) -> None:  # noqa: ANN001
    registry = _frozen_registry(project, 1.0)  # every crop held out: only counts matter
    _crops(conn, 3)
    r = readiness(project, conn, "smartcrop", registry)
    assert (r.ready, r.samples, r.needed) == (False, 3, 5)
    assert r.reason == "needs 2 more final crops (3 of 5)"
    crop = readiness(project, conn, "crop", registry)
    assert not crop.ready and crop.reason.startswith("needs 17 more final crops")
    _crops(conn, 2, start=3)
    r = readiness(project, conn, "smartcrop", registry)
    assert r.ready and r.reason == "ready: 5 final crops" and r.new_since_champion is None
    assert (r.held_out, r.needed_held_out) == (5, 1)


def test_readiness_needs_held_out_samples(project, conn) -> None:  # noqa: ANN001
    registry = _frozen_registry(project, 0.0)
    _crops(conn, 8)
    r = readiness(project, conn, "smartcrop", registry)
    assert not r.ready and r.held_out == 0
    assert "held-out split" in r.reason and "1 are needed" in r.reason


def test_readiness_honours_project_toml(project, conn) -> None:  # noqa: ANN001
    registry = _frozen_registry(project, 1.0)
    _crops(conn, 3)
    for i in range(4):
        decide(conn, f"g{i}", [f"/b/{i}a.jpg", f"/b/{i}b.jpg"], minute=i)
    assert not readiness(project, conn, "smartcrop", registry).ready
    ranker = readiness(project, conn, "ranker", registry)
    assert not ranker.ready
    assert ranker.reason == "needs 26 more decided groups of 2+ images (4 of 30)"
    _append_training(
        project, "min_smartcrop_samples = 3\nmin_ranker_groups = 4\nmin_ranker_held_out = 2"
    )
    assert readiness(project, conn, "smartcrop", registry).ready
    ranker = readiness(project, conn, "ranker", registry)
    assert ranker.ready and ranker.needed == 4


def test_readiness_counts_what_is_new_since_the_champion(project, conn) -> None:  # noqa: ANN001
    registry = _frozen_registry(project, 1.0)
    with registry.stage("smartcrop") as staged:
        registry.commit(staged, metrics={}, config={},
                        data={"samples": {"train": 4, "held_out": 2}})  # fmt: skip
    registry.promote("smartcrop", "v1")
    _crops(conn, 9)
    r = readiness(project, conn, "smartcrop", registry)
    assert r.ready and r.new_since_champion == 3
    assert r.reason == "ready: 9 final crops, 3 new since the champion"


def test_readiness_draws_the_split_itself_and_refuses_unknown_kinds(project, conn) -> None:  # noqa: ANN001
    readiness(project, conn, "smartcrop")  # no registry given: the project's own
    assert (project.models_dir / SPLIT_FILE).is_file()
    with pytest.raises(WorkbenchError, match="Unknown model kind"):
        readiness(project, conn, "yolo")


# -- common: require and better ----------------------------------------------------------------


def test_better_needs_strictly_higher() -> None:
    assert better({"iou": 0.8}, {"iou": 0.7}, "iou", None) is True
    assert better({"iou": 0.7}, {"iou": 0.8}, "iou", None) is False
    assert better({"iou": 0.7}, {"iou": 0.7}, "iou", None) is False  # a tie keeps the champion
    assert better({"iou": 0.7 + 1e-12}, {"iou": 0.7}, "iou", None) is False  # noise is a tie
    assert better({}, {"iou": 0.1}, "iou", None) is False  # no figure never wins


def test_better_breaks_a_tie_with_the_tie_break() -> None:
    old = {"top1": 0.9, "pairwise": 0.8}
    assert better({"top1": 0.9, "pairwise": 0.85}, old, "top1", "pairwise") is True
    assert better({"top1": 0.9, "pairwise": 0.8}, old, "top1", "pairwise") is False
    assert better({"top1": 0.9, "pairwise": 0.7}, old, "top1", "pairwise") is False
    assert better({"top1": 0.9}, old, "top1", "pairwise") is False  # nothing to break it with
    assert better({"top1": 0.8, "pairwise": 0.99}, old, "top1", "pairwise") is False  # key first


@pytest.mark.parametrize("old", [None, {}, {"other": 1.0}])
def test_better_wins_when_there_is_nothing_to_beat(old: dict[str, Any] | None) -> None:
    assert better({"iou": 0.1}, old, "iou", None) is True


def _ctx(**minimums: int) -> SimpleNamespace:
    return SimpleNamespace(minimums={**DEFAULT_MINIMUMS, **minimums})


def test_require_checks_counts_and_the_held_out_share() -> None:
    def samples(n: int, held: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(held_out=i < held) for i in range(n)]

    require(_ctx(), "smartcrop", samples(5, 1), "final crops")  # type: ignore[arg-type]
    with pytest.raises(NotReady, match="needs at least 5 final crops; the project has 4"):
        require(_ctx(), "smartcrop", samples(4, 1), "final crops")  # type: ignore[arg-type]
    with pytest.raises(NotReady, match="needs 5 decided groups in the held-out split"):
        require(_ctx(), "ranker", samples(40, 4), "decided groups")  # type: ignore[arg-type]
    with pytest.raises(NotReady, match="no final crops left to train on"):
        require(_ctx(min_smartcrop_samples=2), "smartcrop", samples(2, 2), "final crops")  # type: ignore[arg-type]
    require(_ctx(min_crop_samples=2, min_crop_held_out=0), "crop", samples(2, 0), "crops")  # type: ignore[arg-type]
