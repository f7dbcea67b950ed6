"""The plate reader's data (ocr/dataset.py): which labels train, the frozen held-out split,
readiness with project.toml minimums, CER / exact match, blank collapse; no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from workbench.core.plates import SKIP, LabelStore
from workbench.ml.ocr.dataset import (
    better,
    collapsed,
    edit_distance,
    ocr_readiness,
    ocr_settings,
    plate_samples,
    score,
)
from workbench.ml.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def test_edit_distance_and_scores() -> None:
    assert edit_distance("ABC123", "ABC123") == 0
    assert edit_distance("ABC123", "A8C123") == 1
    assert edit_distance("ABC123", "ABC12") == 1
    assert edit_distance("", "ABC") == 3 and edit_distance("ABC", "") == 3
    s = score(["ABC123", "A8C12", ""], ["ABC123", "ABC123", "XY1"])
    assert s["exact_match"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["cer"] == pytest.approx((0 + 2 + 3) / 15, abs=1e-4)
    assert s["empty"] == pytest.approx(1 / 3, abs=1e-4) and s["n"] == 3
    with pytest.raises(ValueError):
        score(["A"], [])


def test_blank_collapse_and_which_scores_are_better() -> None:
    assert collapsed(score([""] * 10, ["AB12"] * 10))
    assert collapsed(score([""] * 9 + ["AB12"], ["AB12"] * 10))
    assert not collapsed(score([""] * 5 + ["AB1"] * 5, ["AB12"] * 10))
    assert not collapsed(score([], []))
    assert better({"exact_match": 0.8, "cer": 0.1}, {"exact_match": 0.7, "cer": 0.01})
    assert better({"exact_match": 0.8, "cer": 0.05}, {"exact_match": 0.8, "cer": 0.1})
    assert not better({"exact_match": 0.8, "cer": 0.1}, {"exact_match": 0.8, "cer": 0.1})


def _crops(project, conn, labels: list[str]) -> list[Path]:  # type: ignore[no-untyped-def]
    folder = project.root / "plates"
    folder.mkdir(exist_ok=True)
    store, paths = LabelStore(conn), []
    for i, text in enumerate(labels):
        path = folder / f"CAM1_track{i}.jpg"
        Image.new("RGB", (60, 20), (240, 240, 240)).save(path)
        store.save(path, text, "typed")
        paths.append(path)
    return paths


def test_samples_leave_out_skips_signs_bad_text_and_missing_files(project, conn) -> None:
    paths = _crops(project, conn, ["AB123", SKIP, "EXIT12", "PLATE", "CD456", "ZZ999"])
    paths[5].unlink()
    conn.execute("INSERT INTO plate_labels(image_path, text, source, labeled_at) "
                 "VALUES ('/nowhere/x.jpg', 'ab-12', 'imported', 'now')")  # fmt: skip
    split = Registry(project.models_dir).split()
    data = plate_samples(project, conn, split)
    assert [s.text for s in data.samples] == ["AB123", "PLATE", "CD456"]  # no digit is kept
    assert data.skipped == {"skip": 1, "bad_text": 1, "too_long": 0, "sign_word": 1,
                            "missing_file": 1}  # fmt: skip
    assert all(s.held_out == split.held_out(str(s.path)) for s in data.samples)
    unchecked = plate_samples(project, conn, split, check_files=False)
    assert len(unchecked.samples) == 4
    assert data.samples[0].record() == {"image_path": str(paths[0]), "text": "AB123"}


def test_the_split_is_frozen_per_crop(project, conn) -> None:
    _crops(project, conn, [f"AB{i:03d}" for i in range(60)])
    first = plate_samples(project, conn, Registry(project.models_dir).split())
    again = plate_samples(project, conn, Registry(project.models_dir).split())
    assert [s.held_out for s in first.samples] == [s.held_out for s in again.samples]
    assert 0 < len(first.held_out()) < len(first.train())


def test_readiness_counts_labels_against_the_project_minimums(project, conn) -> None:
    assert ocr_settings(project.root) == {"min_ocr_labels": 100, "min_ocr_held_out": 10}
    _crops(project, conn, [f"AB{i:03d}" for i in range(30)] + [SKIP])
    ready = ocr_readiness(project, conn)
    assert not ready.ready and ready.kind == "ocr"
    assert ready.samples == 30 and ready.needed == 100
    assert "70 more labeled plates" in ready.reason
    with open(project.root / "project.toml", "a", encoding="utf-8") as fp:
        fp.write("\n[training]\nmin_ocr_labels = 20\nmin_ocr_held_out = 1\n")
    ready = ocr_readiness(project, conn)
    assert ready.ready and ready.reason.startswith("ready: 30 labeled plates"), ready.reason
    assert ready.details["skipped"] == {"skip": 1}
    with open(project.root / "project.toml", "a", encoding="utf-8") as fp:
        fp.write("min_ocr_feature = 3\n")  # unknown keys are ignored
    assert ocr_settings(project.root)["min_ocr_labels"] == 20


def test_readiness_through_the_training_module(project, conn) -> None:
    from workbench.ml.training.data import readiness

    _crops(project, conn, ["AB123"])
    assert readiness(project, conn, "ocr").samples == 1


def test_the_gui_side_imports_no_torch() -> None:
    code = ("import sys\nimport workbench.ml.ocr.dataset, workbench.ml.ocr.engines\n"
            "print(','.join(m for m in ('torch', 'onnxruntime', 'PySide6') if m in sys.modules))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
