"""The generated demo project: files, grouping, skipped files, a finalized first batch, plates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from workbench.core.demo import generate_demo
from workbench.core.demo_draw import PLATE_CHARS
from workbench.core.errors import ProjectExists
from workbench.core.sidecar import read_sidecar, sidecar_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from workbench.core.project import ProjectStore

    base = tmp_path_factory.mktemp("demo")
    store = ProjectStore(base / "projects", base / "models")
    stages: list[tuple[str, int, int]] = []
    summary = generate_demo(store, groups=9, plates=7, progress=lambda *a: stages.append(a))
    return store, summary, stages


def _conn(store, summary):
    return store.open(summary.name).connect()


def test_counts_and_files(demo) -> None:
    store, summary, stages = demo
    assert summary.created
    assert len(summary.groups) == 9
    assert all(2 <= len(g.files) <= 4 for g in summary.groups)
    assert summary.images == sum(len(g.files) for g in summary.groups)
    assert summary.source == summary.root / "source"
    assert store.open("demo").source == summary.source.resolve()
    suffixes = {f.suffix for g in summary.groups for f in g.files}
    assert suffixes == {".png", ".jpg"}
    assert stages and all(done <= total or total == 0 for _, done, total in stages)
    # members of a group are 1-3 s apart, groups minutes apart (file-name timestamps)
    stamps = [[int(f.name[9:15]) for f in g.files] for g in summary.groups]
    for group in stamps:
        assert all(0 < b - a <= 3 for a, b in zip(group, group[1:], strict=False))


def test_grouping_keeps_each_generated_group_together(demo) -> None:
    store, summary, _ = demo
    conn = _conn(store, summary)
    try:
        for g in summary.groups:
            marks = ",".join("?" * len(g.files))
            rows = conn.execute(
                f"SELECT group_pk, position, path FROM group_images WHERE path IN ({marks})",
                [str(f.resolve()) for f in g.files],
            ).fetchall()
            assert len(rows) == len(g.files)
            assert len({r[0] for r in rows}) == 1, f"{g.files[0].name}'s group was split"
            members = conn.execute(
                "SELECT COUNT(*) FROM group_images WHERE group_pk = ?", (rows[0][0],)
            ).fetchone()[0]
            assert members == len(g.files)
            assert [Path(r[2]).name for r in sorted(rows, key=lambda r: r[1])] == [
                f.name for f in g.files
            ]
        assert conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0] == 9
    finally:
        conn.close()


def test_skipped_files_are_listed_with_reasons(demo) -> None:
    store, summary, _ = demo
    assert len(summary.skipped) == 2
    conn = _conn(store, summary)
    try:
        reasons = dict(conn.execute("SELECT path, reason FROM scan_skipped").fetchall())
    finally:
        conn.close()
    for path, _fault in summary.skipped:
        assert path.exists()
        assert reasons.get(str(path.resolve())), f"{path.name} is not in scan_skipped"
    empty = [p for p, _ in summary.skipped if p.stat().st_size == 0]
    assert len(empty) == 1


def test_exif_rotated_photo_is_stored_sideways(demo) -> None:
    store, summary, _ = demo
    rotated = []
    for path in summary.root.rglob("*.jpg"):
        if path in dict(summary.skipped):
            continue
        with Image.open(path) as im:
            if im.getexif().get(0x0112) == 6:
                rotated.append((path.resolve(), im.size))
    assert len(rotated) == 1
    path, (stored_w, stored_h) = rotated[0]
    conn = _conn(store, summary)
    try:
        row = conn.execute(
            "SELECT gi.width, gi.height FROM group_images gi "
            "LEFT JOIN decision_files df ON df.original_path = gi.path "
            "WHERE gi.path = ? OR df.current_path = ?",
            (str(path), str(path)),
        ).fetchone()
    finally:
        conn.close()
    assert (row[0], row[1]) == (stored_h, stored_w)  # shown turned by 90 degrees


def test_first_groups_are_finalized_into_every_folder(demo) -> None:
    store, summary, _ = demo
    project = store.open(summary.name)
    folders = {c.folder for c in summary.choices}
    assert folders == {"crop", "crop_auto", "selected", "delete_staging"}
    for folder in ("crop", "crop_auto"):
        images = [p for p in project.folder(folder).iterdir() if p.suffix in (".png", ".jpg")]
        assert len(images) == sum(c.folder == folder for c in summary.choices) == 2
        for image in images:
            sidecar = read_sidecar(sidecar_path(image), project=project)
            assert sidecar.needs_crop == (folder == "crop")
            assert sidecar.ai_crop_coords is not None
    conn = project.connect()
    try:
        rows = conn.execute(
            "SELECT user_action, ai_crop_accepted, selection_match, ai_confidence, batch_number "
            "FROM ai_decisions ORDER BY group_id"
        ).fetchall()
        assert len(rows) == len(summary.choices) == 6
        assert sorted(r[0] for r in rows) == sorted(c.user_action for c in summary.choices)
        assert {r[1] for r in rows} == {1, 0, None}
        assert 0 in {r[2] for r in rows}  # one choice disagrees with the AI
        assert all(r[4] == 1 for r in rows)
        assert conn.execute("SELECT COUNT(*) FROM incomplete_crops").fetchone()[0] == 2
        assert conn.execute("SELECT decisions FROM ai_performance").fetchone()[0] == 6
        moved = conn.execute("SELECT current_path FROM decision_files").fetchall()
        assert all(Path(r[0]).is_file() for r in moved)
    finally:
        conn.close()


def test_plates_and_truth_match(demo) -> None:
    _, summary, _ = demo
    files = sorted(summary.plates_dir.rglob("*.jpg"))
    assert len(files) == summary.plates == 7
    for f in files:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", f.parent.name)
        assert re.fullmatch(r"CAM1_track\d+\.jpg", f.name)
    lines = summary.truth_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path\ttext"
    truth = dict(line.split("\t") for line in lines[1:])
    assert sorted(summary.plates_dir / p for p in truth) == files
    for text in truth.values():
        assert 5 <= len(text) <= 8 and set(text) <= set(PLATE_CHARS)


def test_the_demo_ai_picks_the_best_image(demo) -> None:
    _, summary, _ = demo
    right = sum(g.ai_index == g.best_index for g in summary.groups)
    assert right >= len(summary.groups) - 1
    assert all(0.0 < g.ai_confidence <= 1.0 for g in summary.groups)


def test_second_call_reuses_the_demo(demo) -> None:
    store, summary, _ = demo
    before = sorted(p.relative_to(summary.root) for p in summary.root.rglob("*") if p.is_file())
    again = generate_demo(store, groups=3)
    assert not again.created
    assert again.groups == summary.groups and again.choices == summary.choices
    after = sorted(p.relative_to(summary.root) for p in summary.root.rglob("*") if p.is_file())
    assert before == after
    assert json.loads((summary.root / "demo.json").read_text())["plates"] == 7
    assert again.to_dict()["groups"] == 9


def test_never_takes_over_a_real_project(store, source_dir: Path) -> None:
    store.create("demo", source_dir)
    with pytest.raises(ProjectExists):
        generate_demo(store, groups=2, plates=1)
    assert not (store.path_of("demo") / "plates").exists()


def test_same_seed_same_demo(tmp_path: Path) -> None:
    from workbench.core.project import ProjectStore

    texts = []
    for sub in ("a", "b"):
        store = ProjectStore(tmp_path / sub / "projects", tmp_path / sub / "models")
        summary = generate_demo(store, groups=2, plates=3, seed=11)
        texts.append(summary.truth_file.read_text(encoding="utf-8"))
        assert [g.best_index for g in summary.groups] == [
            g.best_index for g in generate_demo(store).groups
        ]
    assert texts[0] == texts[1]


def test_earlier_batches_are_decided_cropped_and_ready_to_train(tmp_path: Path) -> None:
    from workbench.core import demo_history
    from workbench.core.doctor import check
    from workbench.core.project import ProjectStore
    from workbench.ml.training.data import readiness

    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    summary = generate_demo(store, groups=8, plates=0, history_batches=2)
    project = store.open(summary.name)
    manifest = json.loads((summary.root / "demo.json").read_text(encoding="utf-8"))
    actions = demo_history.plan(manifest["history"], manifest["seed"])
    assert len(actions) == 16 and project.settings.batch_size == 8
    conn = project.connect()
    try:
        rows = conn.execute(
            "SELECT batch_number, user_action, final_crop_coords FROM ai_decisions"
        ).fetchall()
        earlier = [r for r in rows if r[0] in (1, 2)]
        assert sorted(r[1] for r in earlier) == sorted(actions)
        # Every earlier crop went through the crop code: a final crop, the sidecar gone.
        assert all((r[2] is not None) == (r[1] == "crop") for r in earlier)
        assert {r[0] for r in rows} == {1, 2, 3}  # the demo's own groups are batch 3
        assert sum(r[0] == 3 for r in rows) == len(summary.choices)
        assert "min_crop_held_out = 2" in (project.root / "project.toml").read_text()
        assert readiness(project, conn, "ranker").samples >= 14
        assert readiness(project, conn, "crop").samples == actions.count("crop") + 2
        report = check(project, conn)
    finally:
        conn.close()
    assert report.problems == []
    # Reused as it is on the next call: nothing decided twice.
    again = generate_demo(store, history_batches=2)
    assert not again.created


def test_the_demo_user_crops_tightly_around_the_subject() -> None:
    from workbench.core import demo_history

    box = demo_history.user_crop([0.2, 0.3, 0.6, 0.5])
    assert box.to_list() == [0.16, 0.28, 0.64, 0.52]
    assert demo_history.user_crop([0.0, 0.0, 1.0, 1.0]).to_list() == [0.0, 0.0, 1.0, 1.0]
