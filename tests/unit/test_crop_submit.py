"""Submitting crops: files, rows and sidecars as seed 002 describes; undo; bad input changes nothing."""

from __future__ import annotations

import errno
import importlib
import io
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.core import crop_output, crop_submit, db
from workbench.core import doctor as doctor_mod
from workbench.core.crop_queue import inspect_image, pending_images, waiting_images
from workbench.core.crop_submit import CropRequest, crop_auto, submit_crops
from workbench.core.crops import CropBox
from workbench.core.errors import FileOperationError, WorkbenchError
from workbench.core.finalize import (
    StagedChoice,
    finalize_groups,
    journal_for,
    stage_choice,
    undo_last,
)
from workbench.core.images import probe_image
from workbench.core.project import Project, ProjectStore
from workbench.core.sidecar import sidecar_path
from workbench.core.timeutil import iso_utc

AI = CropBox(0.1, 0.1, 0.9, 0.9)


@dataclass
class Spec:
    """One group to finalize: its images, who picked which, the AI crop, the action."""

    size: tuple[int, int] = (400, 300)
    suffix: str = ".png"
    action: str = "crop"  # "crop" -> crop/, "auto" -> crop_auto/
    ai_crop: CropBox | None = AI
    n: int = 1
    ai_index: int = 0
    user_index: int = 0
    orientation: int = 1


def gradient(w: int, h: int, seed: int) -> Image.Image:
    """An image whose colour says where a pixel is (red = x, green = y)."""
    ys, xs = np.mgrid[0:h, 0:w]
    rgb = np.stack([xs * 255 // max(1, w - 1), ys * 255 // max(1, h - 1),
                    np.full_like(xs, (seed * 37) % 256)], axis=-1)  # fmt: skip
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def save(img: Image.Image, path: Path, orientation: int = 1) -> None:
    if path.suffix == ".png":
        img.save(path)
    elif orientation == 6:  # stored sideways; shown rotated 90 degrees clockwise
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "TestCam"
        img.transpose(Image.Transpose.ROTATE_90).save(path, quality=70, exif=exif.tobytes())
    else:
        img.save(path, quality=70)


def make_project(store: ProjectStore, source: Path, specs: list[Spec], name: str = "p") -> tuple[Project, sqlite3.Connection, list[Path]]:  # fmt: skip
    """A project whose groups are finalized per `specs`; the chosen images' new paths."""
    project = store.create(name, source)
    conn = project.connect()
    pks = []
    with db.transaction(conn):
        for g, spec in enumerate(specs):
            cur = conn.execute("INSERT INTO groups(batch_number, position, reason, created_at)"
                               " VALUES (1, ?, 'test', ?)", (g, iso_utc()))  # fmt: skip
            pks.append(int(cur.lastrowid or 0))
            for i in range(spec.n):
                path = source / f"g{g:02d}_{i}{spec.suffix}"
                save(gradient(*spec.size, g * 4 + i), path, spec.orientation)
                info = probe_image(path)
                st = path.stat()
                conn.execute("INSERT INTO group_images(group_pk, position, path, width, height,"
                             " size_bytes, mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (pks[-1], i, str(path), info.width, info.height, st.st_size,
                              st.st_mtime_ns))  # fmt: skip
    for pk, spec in zip(pks, specs, strict=True):
        action = "approve" if spec.action == "auto" else "crop"
        stage_choice(conn, pk, StagedChoice(action, spec.user_index, True, spec.ai_index,
                                            spec.ai_crop, 0.9))  # fmt: skip
    result = finalize_groups(project, conn, pks)
    return project, conn, [r.chosen for r in result.routes]


@pytest.fixture
def three(store, source_dir):
    specs = [
        Spec((400, 300), ".png"),
        Spec((300, 500), ".jpg"),
        Spec((600, 400), ".jpg", orientation=6),
    ]
    project, conn, images = make_project(store, source_dir, specs)
    yield project, conn, images
    conn.close()


def files(project: Project) -> dict[str, bytes]:
    return {str(p.relative_to(project.root)): p.read_bytes()
            for p in sorted(project.root.rglob("*")) if p.is_file() and p.suffix != ".db"
            and "-wal" not in p.name and "-shm" not in p.name and p.name != ".workbench.lock"}  # fmt: skip


def crop_rows(conn: sqlite3.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT d.group_id, final_crop_coords, crop_timestamp, crop_match, final_crop_iou, current_path"
        " FROM ai_decisions d JOIN decision_extras e USING (group_id)"
        " JOIN decision_files f USING (group_id) ORDER BY d.group_id, f.image_index")]  # fmt: skip


# -- the happy path --------------------------------------------------------------------------


def test_submit_writes_crops_records_rows_and_removes_sidecars(three) -> None:
    project, conn, images = three
    boxes = [
        CropBox(0.1, 0.2, 0.6, 0.7),
        CropBox(0.11, 0.09, 0.91, 0.88),
        CropBox(0.0, 0.0, 0.5, 1.0),
    ]
    gids = [json.loads(sidecar_path(p).read_text())["group_id"] for p in images]
    report = submit_crops(
        project, conn, [CropRequest(p, b) for p, b in zip(images, boxes, strict=True)]
    )
    assert report.counts["cropped"] == 3 and report.counts["rows_updated"] == 3
    assert report.operation_id is not None and not report.errors
    for image, box, gid, result in zip(images, boxes, gids, report.results, strict=True):
        info = probe_image(result.original)
        left, top, right, bottom = box.to_pixels(info.width, info.height)
        with Image.open(result.output) as out:
            assert out.size == (right - left, bottom - top) == result.size
            assert out.format == ("PNG" if image.suffix == ".png" else "JPEG")
        assert result.output.parent == project.folder("crop_cropped")
        assert result.original == project.folder("crop_cropped") / "originals" / image.name
        assert not image.exists() and not sidecar_path(image).exists()
        r = conn.execute("SELECT * FROM ai_decisions WHERE group_id = ?", (gid,)).fetchone()
        assert CropBox.from_json(r["final_crop_coords"]) == box
        assert r["crop_timestamp"] and r["crop_match"] == (box == boxes[1])
        iou = conn.execute(
            "SELECT final_crop_iou FROM decision_extras WHERE group_id = ?", (gid,)
        ).fetchone()[0]
        assert iou == pytest.approx(result.iou) and 0 < iou < 1
        current = conn.execute("SELECT current_path FROM decision_files WHERE group_id = ? AND image_index = 0",
                               (gid,)).fetchone()[0]  # fmt: skip
        assert current == str(result.original)
    assert conn.execute("SELECT COUNT(*) FROM incomplete_crops").fetchone()[0] == 0
    assert not (project.folder("delete_staging") / crop_submit.STAGING).exists()
    assert doctor_mod.check(project, conn).clean


def test_png_is_lossless_and_a_jpeg_keeps_its_quantization(three) -> None:
    project, conn, images = three
    box = CropBox(0.25, 0.5, 0.75, 1.0)
    report = submit_crops(project, conn, [CropRequest(images[0], box), CropRequest(images[1], box)])
    png, jpg = report.results
    with Image.open(png.original) as src, Image.open(png.output) as out:
        assert np.array_equal(np.asarray(src.crop(box.to_pixels(*src.size))), np.asarray(out))
    with Image.open(jpg.original) as src, Image.open(jpg.output) as out:
        assert out.quantization == src.quantization
    assert (png.quality, jpg.quality) == ("lossless", "source tables")


def test_exif_orientation_is_applied_and_the_tag_reset(three) -> None:
    project, conn, images = three
    rotated = images[2]  # a 600 x 400 picture stored sideways (orientation 6)
    assert (probe_image(rotated).width, probe_image(rotated).height) == (600, 400)
    box = CropBox(0.5, 0.0, 1.0, 0.5)  # the top-right quarter as displayed
    (result,) = submit_crops(project, conn, [CropRequest(rotated, box)]).results
    with Image.open(result.output) as out:
        assert out.size == (300, 200)
        assert out.getexif().get(0x0112, 1) == 1 and out.getexif().get(0x010F) == "TestCam"
        r, g, _ = out.convert("RGB").getpixel((150, 100))
    # red grows to the right and green downwards in the displayed picture
    assert r == pytest.approx(255 * 0.75, abs=12) and g == pytest.approx(255 * 0.25, abs=12)


def test_undo_restores_row_sidecar_and_original_and_sets_the_crop_aside(three) -> None:
    project, conn, images = three
    before_files, before_rows = files(project), crop_rows(conn)
    report = submit_crops(
        project, conn, [CropRequest(p, CropBox(0.2, 0.2, 0.7, 0.7)) for p in images]
    )
    assert crop_rows(conn) != before_rows
    outputs = {r.output.name: r.output.read_bytes() for r in report.results}
    assert undo_last(project, conn, 1) == ["crop 3 image(s)"]
    assert crop_rows(conn) == before_rows  # final crop, timestamp, match, IoU: NULL again
    after = files(project)
    aside = {
        k: v for k, v in after.items() if k.startswith(f"delete_staging/{crop_submit.STAGING}/")
    }
    assert {k: v for k, v in after.items() if k not in aside} == before_files  # originals, sidecars
    assert {Path(k).name: v for k, v in aside.items()} == outputs  # the crops, set aside
    assert not any(p.is_file() for p in project.folder("crop_cropped").rglob("*"))
    assert doctor_mod.check(project, conn).clean
    # and the images can be cropped again, as if the first time
    again = submit_crops(project, conn, [CropRequest(p, AI) for p in images])
    assert again.counts["rows_updated"] == 3 and all(r.crop_match for r in again.results)


def test_seed_scenarios_agree_and_disagree(store, source_dir) -> None:
    specs = [Spec(n=3, ai_index=1, user_index=1), Spec(n=3, ai_index=0, user_index=2)]
    project, conn, images = make_project(store, source_dir, specs)
    user = [CropBox(0.11, 0.09, 0.91, 0.88), CropBox(0.3, 0.0, 0.7, 0.6)]
    report = submit_crops(
        project, conn, [CropRequest(p, b) for p, b in zip(images, user, strict=True)]
    )
    agree, disagree = report.results
    rows = {r["group_id"]: r for r in conn.execute("SELECT * FROM ai_decisions")}
    assert (rows[agree.group_id]["selection_match"], rows[agree.group_id]["crop_match"]) == (1, 1)
    assert (rows[disagree.group_id]["selection_match"], rows[disagree.group_id]["crop_match"]) == (
        0,
        0,
    )
    assert agree.iou == pytest.approx(0.6162 / 0.6558, abs=1e-3)
    assert disagree.iou == pytest.approx(0.2 / 0.68, abs=1e-3)
    perf = conn.execute("SELECT * FROM ai_performance").fetchone()
    assert (perf["decisions_with_both_crops"], perf["crop_correct"]) == (2, 1)
    assert conn.execute("SELECT COUNT(*) FROM ai_mistakes").fetchone()[0] == 1
    conn.close()


def test_a_taken_name_in_crop_cropped_gets_a_new_one(three) -> None:
    project, conn, images = three
    users_file = project.folder("crop_cropped") / images[0].name
    users_file.write_bytes(b"the user's own file")
    (result,) = submit_crops(project, conn, [CropRequest(images[0], AI)]).results
    assert result.output.name == f"{images[0].stem}__2{images[0].suffix}"
    assert users_file.read_bytes() == b"the user's own file"


def test_a_crash_after_the_commit_is_rolled_forward(three) -> None:
    project, conn, images = three

    def hook(step: str, ident: int) -> None:
        if step == "committed":
            raise KeyboardInterrupt  # the process dies right after the commit

    with pytest.raises(KeyboardInterrupt):
        submit_crops(project, conn, [CropRequest(images[0], AI)], step_hook=hook)
    assert images[0].exists()  # nothing moved yet, but the row is recorded
    assert journal_for(project, conn).recover().clean
    assert not images[0].exists() and not sidecar_path(images[0]).exists()
    assert (project.folder("crop_cropped") / images[0].name).is_file()
    assert doctor_mod.check(project, conn).clean


# -- sidecars that are missing or cannot be trusted ------------------------------------------


def test_an_image_without_a_sidecar_is_cropped_with_a_warning_and_a_log_entry(
    three, caplog
) -> None:
    project, conn, images = three
    loose = project.folder("crop") / "loose.png"
    gradient(200, 100, 9).save(loose)
    before = crop_rows(conn)
    assert "has no sidecar" in inspect_image(project, conn, loose).warning
    with caplog.at_level("WARNING"):
        (result,) = submit_crops(
            project, conn, [CropRequest(loose, CropBox(0, 0, 0.5, 0.5))]
        ).results
    assert result.ok and result.group_id is None and "has no sidecar" in result.warning
    assert any("loose.png has no sidecar" in r.getMessage() for r in caplog.records)
    with Image.open(result.output) as out:
        assert out.size == (100, 50)
    assert crop_rows(conn) == before
    assert (project.folder("crop_cropped") / "originals" / "loose.png").is_file()


def _spoil(kind: str, image: Path, project: Project, tmp_path: Path) -> Path:
    sc = sidecar_path(image)
    data = json.loads(sc.read_text())
    if kind == "foreign":
        data["project_id"] = "other"
    elif kind == "traversal":
        data["image"] = "../../../etc/passwd"
    elif kind == "other_image":
        data["image"] = "someone_else.png"
    elif kind == "unknown_group":
        data["group_id"] = "p_group_20250101T000000Z_batch001_img999"
    elif kind == "malformed":
        sc.write_text("{not json")
        return sc
    elif kind == "symlink":
        target = tmp_path / "elsewhere.decision"
        target.write_text(sc.read_text())
        sc.unlink()
        sc.symlink_to(target)
        return sc
    sc.write_text(json.dumps(data))
    return sc


@pytest.mark.parametrize(
    "kind", ["foreign", "traversal", "other_image", "unknown_group", "malformed", "symlink"]
)
def test_a_sidecar_that_cannot_be_trusted_is_reported_and_left_alone(three, tmp_path, kind) -> None:
    project, conn, images = three
    sc = _spoil(kind, images[0], project, tmp_path)
    sc_bytes = sc.read_bytes()
    before = crop_rows(conn)
    item = inspect_image(project, conn, images[0])
    assert item.sidecar is None and "is not used" in item.warning
    (result,) = submit_crops(project, conn, [CropRequest(images[0], AI)]).results
    assert result.ok and result.group_id is None and "is not used" in result.warning
    assert [r[:-1] for r in crop_rows(conn)] == [r[:-1] for r in before]  # no decision touched
    assert crop_rows(conn)[0][-1] == str(result.original)  # only the file's place followed it
    assert os.path.lexists(sc) and sc.read_bytes() == sc_bytes  # never removed or rewritten
    assert not Path("/etc/passwd").is_relative_to(project.root)


# -- bad input: a clear sentence, nothing lost -----------------------------------------------


def test_an_unreadable_image_is_refused_and_the_others_go_ahead(three) -> None:
    project, conn, images = three
    images[1].write_bytes(b"not a picture any more")
    gid = json.loads(sidecar_path(images[1]).read_text())["group_id"]
    report = submit_crops(project, conn, [CropRequest(p, AI) for p in images])
    bad = report.results[1]
    assert "cannot be read" in bad.error and bad.output is None
    assert images[1].exists() and sidecar_path(images[1]).exists()
    assert report.counts["cropped"] == 2 and report.counts["errors"] == 1
    r = conn.execute(
        "SELECT final_crop_coords, crop_match FROM ai_decisions WHERE group_id = ?", (gid,)
    ).fetchone()
    assert tuple(r) == (None, None)


@pytest.mark.parametrize("path", ["/etc/passwd", "crop/../../../etc/passwd", "selected/x.png"])
def test_paths_outside_crop_folders_are_refused(three, path) -> None:
    project, conn, _ = three
    target = Path(path) if path.startswith("/") else project.root / path
    (result,) = submit_crops(project, conn, [CropRequest(target, AI)]).results
    assert "not in crop/ or crop_auto/" in result.error
    assert not any(project.folder("crop_cropped").glob("*.*"))


def test_a_linked_image_is_refused(three, tmp_path) -> None:
    project, conn, images = three
    outside = tmp_path / "outside.png"
    gradient(50, 50, 1).save(outside)
    link = project.folder("crop") / "link.png"
    link.symlink_to(outside)
    (result,) = submit_crops(project, conn, [CropRequest(link, AI)]).results
    assert "is a link" in result.error and link.is_symlink() and outside.is_file()


def _snapshot(project: Project, conn: sqlite3.Connection) -> tuple[object, ...]:
    ops = conn.execute("SELECT COUNT(*) FROM file_operations").fetchone()[0]
    return files(project), crop_rows(conn), ops


def test_a_read_only_output_folder_changes_nothing(three, monkeypatch) -> None:
    project, conn, images = three
    before = _snapshot(project, conn)
    out = project.folder("crop_cropped")
    real_open = crop_output._open_probe

    def refuse(path, *args):  # root ignores permission bits: refuse like the kernel would
        if Path(path).parent == out:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args)

    monkeypatch.setattr(crop_output, "_open_probe", refuse)
    out.chmod(0o555)
    try:
        with pytest.raises(FileOperationError, match="read-only"):
            submit_crops(project, conn, [CropRequest(p, AI) for p in images])
    finally:
        out.chmod(0o755)
    assert _snapshot(project, conn) == before


def test_a_full_disk_changes_nothing(three, monkeypatch) -> None:
    project, conn, images = three
    before = _snapshot(project, conn)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(crop_submit, "write_new_file", full)
    report = submit_crops(project, conn, [CropRequest(p, AI) for p in images])
    assert report.operation_id is None and report.counts["errors"] == 3
    assert all("disk is full" in r.error for r in report.results)
    assert _snapshot(project, conn) == before
    assert not (project.folder("delete_staging") / crop_submit.STAGING).exists()


def test_a_database_failure_rolls_back_and_removes_the_staged_crops(three, monkeypatch) -> None:
    project, conn, images = three
    before = _snapshot(project, conn)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(crop_submit, "record_final_crop", broken)
    with pytest.raises(WorkbenchError) as caught:
        submit_crops(project, conn, [CropRequest(p, AI) for p in images])
    assert caught.value.code == "disk_full"
    assert _snapshot(project, conn) == before


# -- crop_auto/ ------------------------------------------------------------------------------


def test_crop_auto_crops_every_image_to_its_ai_crop(store, source_dir) -> None:
    boxes = [CropBox(0.0, 0.2, 0.7, 1.0), CropBox(0.25, 0.25, 0.75, 0.75)]
    specs = [Spec(ai_crop=b, action="auto") for b in boxes] + [Spec(action="crop")]
    project, conn, images = make_project(store, source_dir, specs)
    gradient(80, 60, 3).save(project.folder("crop_auto") / "no_sidecar.png")
    seen = []
    report = crop_auto(
        project, conn, progress=lambda stage, done, total: seen.append((done, total))
    )
    assert report.counts == {"requested": 3, "cropped": 2, "rows_updated": 2, "without_row": 0,
                             "skipped": 1, "errors": 0, "warnings": 1}  # fmt: skip
    assert seen and seen[-1] == (2, 2)
    for image, box in zip(images[:2], boxes, strict=True):
        (res,) = [r for r in report.results if r.image == image]
        assert res.crop_match is True and res.iou == pytest.approx(1.0)
        r = conn.execute(
            "SELECT * FROM ai_decisions WHERE group_id = ?", (res.group_id,)
        ).fetchone()
        assert (r["ai_crop_accepted"], r["crop_match"]) == (1, 1)
        assert CropBox.from_json(r["final_crop_coords"]) == box
        with Image.open(res.output) as out:
            assert out.size == (box.to_pixels(400, 300)[2] - box.to_pixels(400, 300)[0],
                                box.to_pixels(400, 300)[3] - box.to_pixels(400, 300)[1])  # fmt: skip
    assert waiting_images(project, "crop_auto") == [project.folder("crop_auto") / "no_sidecar.png"]
    assert [p.path for p in pending_images(project, conn, "crop")] == [images[2]]  # crop/ untouched
    assert undo_last(project, conn, 1) == ["auto-crop 2 image(s) of crop_auto/"]
    assert len(waiting_images(project, "crop_auto")) == 3
    conn.close()


def test_cli_crop_auto_and_list_and_undo(store, source_dir, capsys, monkeypatch) -> None:
    project, conn, images = make_project(
        store, source_dir, [Spec(action="auto"), Spec(action="crop")]
    )
    conn.close()
    importlib.import_module("workbench.cli.main")
    cli = sys.modules["workbench.cli.main"]
    from workbench.cli import crop_cmds

    if crop_cmds not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, crop_cmds))
    base = ["--projects-dir", str(store.projects_dir), "--models-dir", str(store.models_dir)]

    def run(*args: str) -> tuple[int, dict]:
        code = cli.main([*base, *args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, listed = run("crop", "p", "--list", "--folder", "crop_auto")
    assert code == 0 and [i["image"] for i in listed["images"]] == [str(images[0])]
    code, done = run("crop", "p", "--auto")
    assert code == 0 and done["counts"]["cropped"] == 1 and done["results"][0]["crop_match"] is True
    assert not images[0].exists()
    code, manual = run("crop", "p", str(images[1]), "--box", "0.1,0.1,0.6,0.6")
    assert code == 0 and manual["results"][0]["size"] == [200, 150]
    code, undone = run("undo", "p", "--count", "2")
    assert code == 0 and undone["undone"] == [
        "crop 1 image(s)",
        "auto-crop 1 image(s) of crop_auto/",
    ]
    assert images[0].exists() and images[1].exists() and sidecar_path(images[0]).exists()
    code, bad = run("crop", "p", "/etc/passwd", "--box", "0,0,1,1")
    assert code == 1 and bad["counts"]["errors"] == 1


@pytest.mark.parametrize(
    ("name", "mode", "save_args", "quality"),
    [("rgba.png", "RGBA", {}, "lossless"), ("i16.png", "I;16", {}, "lossless"),
     ("gray.jpg", "L", {"quality": 60}, "source tables"),
     ("cmyk.jpg", "CMYK", {"quality": 60}, "source tables"),
     ("x.gif", "P", {}, "lossless"), ("x.bmp", "RGB", {}, "lossless"),
     ("x.tif", "RGB", {"compression": "tiff_lzw"}, "lossless"),
     ("lossless.webp", "RGB", {"lossless": True}, "lossless"),
     ("lossy.webp", "RGB", {"quality": 60}, "95")],
)  # fmt: skip
def test_every_format_keeps_its_format_mode_and_exact_size(
    tmp_path, name, mode, save_args, quality
) -> None:
    path = tmp_path / name
    Image.new(mode, (121, 81)).save(path, **save_args)
    box = CropBox(0.1, 0.25, 0.6, 0.75)
    cropped = crop_output.crop_image(path, box)
    with Image.open(path) as src, Image.open(io.BytesIO(cropped.data)) as out:
        assert (out.format, out.mode) == (src.format, src.mode)
        left, top, right, bottom = box.to_pixels(121, 81)
        assert out.size == (right - left, bottom - top) == cropped.size
    assert cropped.quality == quality


def test_a_known_image_whose_sidecar_was_lost_keeps_its_file_tracked(three) -> None:
    """Seed scenario 4: no sidecar, so no decision update; but the file's place stays known."""
    project, conn, images = three
    gid = json.loads(sidecar_path(images[0]).read_text())["group_id"]
    sidecar_path(images[0]).unlink()
    warning = inspect_image(project, conn, images[0]).warning
    assert "has no sidecar" in warning and gid in warning and "doctor p --repair" in warning
    (result,) = submit_crops(project, conn, [CropRequest(images[0], AI)]).results
    assert result.ok and result.group_id is None
    r = conn.execute(
        "SELECT final_crop_coords FROM ai_decisions WHERE group_id = ?", (gid,)
    ).fetchone()
    assert r[0] is None
    where = "SELECT current_path FROM decision_files WHERE group_id = ? AND image_index = 0"
    assert conn.execute(where, (gid,)).fetchone()[0] == str(result.original)
    assert doctor_mod.check(project, conn).clean  # waiting for a crop, but nothing is missing
    undo_last(project, conn, 1)
    assert conn.execute(where, (gid,)).fetchone()[0] == str(images[0]) and images[0].exists()
