"""Smart-crop statistics (seed 000): fit, the suggestion rule, model validation,
evaluation, the training job on a generated project, and serving it in the Predictor."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from workbench.core.crops import CropBox, iou
from workbench.core.errors import WorkbenchError
from workbench.core.project import ProjectStore
from workbench.ml import heuristics
from workbench.ml.jobs import JobConfig, run_job
from workbench.ml.registry import STAGING_PREFIX, Registry
from workbench.ml.training.common import better
from workbench.ml.training.data import crop_samples
from workbench.ml.training.smartcrop import (
    FORMAT,
    MODEL_FILE,
    describe_cv,
    evaluate,
    fit,
    load_model,
    mean_box,
    suggest,
)

BOXES = [
    CropBox(0.10, 0.20, 0.50, 0.50),
    CropBox(0.20, 0.10, 0.70, 0.45),
    CropBox(0.00, 0.30, 0.30, 0.90),
    CropBox(0.40, 0.40, 0.80, 0.70),
]
SIZES = [(1000, 800), (1000, 800), (640, 480), (2000, 1000)]
# A model with round numbers: mean box (0.1, 0.2)-(0.5, 0.5).
MODEL = {"format": FORMAT, "avg_width": 0.4, "avg_height": 0.3, "avg_x": 0.1, "avg_y": 0.2,
         "deviation_threshold": 0.1}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not what these tests measure, and fsync makes them I/O-bound."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


# -- fit ---------------------------------------------------------------------------------------


def test_fit_computes_the_statistics() -> None:
    model = fit(BOXES, SIZES)
    b = np.array([c.to_list() for c in BOXES])
    px = np.array(SIZES, dtype=float)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert model["format"] == FORMAT and model["samples"] == 4
    assert model["patterns_learned"] == 2 and model["deviation_threshold"] == 0.1
    expected = {
        "width": w, "height": h, "x": b[:, 0], "y": b[:, 1],
        "cx": (b[:, 0] + b[:, 2]) / 2, "cy": (b[:, 1] + b[:, 3]) / 2,
        "width_px": w * px[:, 0], "height_px": h * px[:, 1],
    }  # fmt: skip
    for name, values in expected.items():
        assert model[f"avg_{name}"] == pytest.approx(values.mean(), abs=1e-6), name
        assert model[f"std_{name}"] == pytest.approx(values.std(), abs=1e-6), name  # population
    assert model["cv_width"] == pytest.approx(w.std() / w.mean(), abs=1e-5)
    assert model["cv_height"] == pytest.approx(h.std() / h.mean(), abs=1e-5)
    assert model["width_range"] == pytest.approx([0.3, 0.5])
    assert model["height_range"] == pytest.approx([0.3, 0.6])
    assert model["x_range"] == pytest.approx([0.0, 0.4])
    assert model["y_range"] == pytest.approx([0.1, 0.4])
    aspect = np.median((w * px[:, 0]) / (h * px[:, 1]))
    assert model["typical_aspect_ratio"] == pytest.approx(aspect, abs=1e-5)
    assert model["avg_width_px"] == pytest.approx((400 + 500 + 192 + 800) / 4, abs=1e-4)
    json.dumps(model)  # plain JSON
    assert load_model_round_trip(model) == model


def load_model_round_trip(model: dict) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / MODEL_FILE
        path.write_text(json.dumps(model))
        return load_model(path)


@pytest.mark.parametrize(
    ("cv", "text"),
    [
        (0.0, "very consistent crop sizes"),
        (0.0999, "very consistent crop sizes"),
        (0.1, "moderately consistent crop sizes"),
        (0.15, "moderately consistent crop sizes"),
        (0.2, "moderately consistent crop sizes"),
        (0.2001, "crop sizes vary a lot"),
        (0.8, "crop sizes vary a lot"),
    ],
)
def test_consistency_follows_seed_000s_thresholds(cv: float, text: str) -> None:
    assert describe_cv(cv) == text


def _boxes_with_spread(spread: float) -> list[CropBox]:
    """Widths 0.4*(1-spread), 0.4, 0.4*(1+spread): cv = spread*sqrt(2/3)."""
    return [CropBox(0.1, 0.1, 0.1 + 0.4 * f, 0.5) for f in (1 - spread, 1.0, 1 + spread)]


@pytest.mark.parametrize(
    ("spread", "text"),
    [(0.0, "very consistent crop sizes"), (0.1, "very consistent crop sizes"),
     (0.2, "moderately consistent crop sizes"), (0.4, "crop sizes vary a lot")],
)  # fmt: skip
def test_fit_reads_the_consistency_from_the_larger_cv(spread: float, text: str) -> None:
    model = fit(_boxes_with_spread(spread), [(100, 100)] * 3)
    assert model["cv_height"] == 0.0
    assert model["cv_width"] == pytest.approx(spread * np.sqrt(2 / 3), abs=1e-5)
    assert model["consistency"] == text
    # Heights varying instead of widths read the same.
    flipped = [CropBox(b.y1, b.x1, b.y2, b.x2) for b in _boxes_with_spread(spread)]
    assert fit(flipped, [(100, 100)] * 3)["consistency"] == text


def test_fit_needs_a_crop() -> None:
    with pytest.raises(WorkbenchError) as info:
        fit([], [])
    assert info.value.code == "not_ready" and "at least one crop" in info.value.message


# -- suggest and mean_box --------------------------------------------------------------------


def test_no_proposal_gives_the_mean_box() -> None:
    box, changed = suggest(MODEL, None)
    assert changed is True
    assert box == mean_box(MODEL) == CropBox(0.1, 0.2, 0.5, 0.5)


def test_mean_box_stays_inside_the_image() -> None:
    box = mean_box({**MODEL, "avg_x": 0.8, "avg_y": 0.9})
    assert box == CropBox(0.6, 0.7, 1.0, 1.0)
    assert mean_box({**MODEL, "avg_width": 0.0, "avg_height": 0.0}).width == pytest.approx(0.01)


@pytest.mark.parametrize(
    "proposal",
    [CropBox(0.3, 0.3, 0.72, 0.59),  # width +5%, height -3.3%
     CropBox(0.0, 0.0, 0.365, 0.325),  # width -8.75%, height +8.3%
     CropBox(0.5, 0.6, 0.9, 0.9)],  # exactly the mean size elsewhere
)  # fmt: skip
def test_a_proposal_within_ten_percent_is_kept(proposal: CropBox) -> None:
    assert suggest(MODEL, proposal) == (proposal, False)


def test_a_deviating_proposal_gets_the_learned_size_around_its_centre() -> None:
    box, changed = suggest(MODEL, CropBox(0.3, 0.3, 0.5, 0.5))  # width half the mean
    assert changed is True
    assert box == CropBox(0.2, 0.25, 0.6, 0.55)
    # Only the height deviating is enough.
    box, changed = suggest(MODEL, CropBox(0.3, 0.3, 0.7, 0.5))
    assert changed is True and box == CropBox(0.3, 0.25, 0.7, 0.55)


def test_a_deviating_proposal_at_the_edge_is_moved_inside() -> None:
    box, changed = suggest(MODEL, CropBox(0.9, 0.9, 1.0, 1.0))
    assert changed is True and box == CropBox(0.6, 0.7, 1.0, 1.0)
    box, _ = suggest(MODEL, CropBox(0.0, 0.0, 0.05, 0.05))
    assert box == CropBox(0.0, 0.0, 0.4, 0.3)


def test_suggestions_always_lie_inside_the_image() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        model = {**MODEL, "avg_width": float(rng.uniform(0.05, 1.0)),
                 "avg_height": float(rng.uniform(0.05, 1.0))}  # fmt: skip
        x1, y1 = rng.uniform(0, 0.95, 2)
        proposal = CropBox(float(x1), float(y1), float(rng.uniform(x1 + 0.01, 1.0)),
                           float(rng.uniform(y1 + 0.01, 1.0)))  # fmt: skip
        box, changed = suggest(model, proposal)
        assert 0.0 <= box.x1 < box.x2 <= 1.0 and 0.0 <= box.y1 < box.y2 <= 1.0
        if changed:
            assert box.width == pytest.approx(model["avg_width"], abs=2e-4)
            assert box.height == pytest.approx(model["avg_height"], abs=2e-4)
        else:
            assert box == proposal


def test_a_model_with_a_zero_mean_size_keeps_the_proposal() -> None:
    proposal = CropBox(0.2, 0.2, 0.4, 0.4)
    assert suggest({**MODEL, "avg_width": 0.0}, proposal) == (proposal, False)


# -- load_model --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({**MODEL, "format": "workbench-smartcrop-0"}),
        json.dumps({k: v for k, v in MODEL.items() if k != "format"}),
        json.dumps({**MODEL, "avg_width": 1.5}),
        json.dumps({**MODEL, "avg_height": -0.1}),
        json.dumps({**MODEL, "avg_x": "0.1"}),
        json.dumps({k: v for k, v in MODEL.items() if k != "avg_y"}),
        '{"format": "workbench-smartcrop-1", "avg_width": NaN, "avg_height": 0.3,'
        ' "avg_x": 0.1, "avg_y": 0.2}',
    ],
)
def test_load_model_refuses_what_is_not_a_smartcrop_model(tmp_path: Path, content: str) -> None:
    path = tmp_path / MODEL_FILE
    path.write_text(content)
    with pytest.raises(ValueError):
        load_model(path)


def test_load_model_takes_a_valid_model(tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    path.write_text(json.dumps(MODEL))
    assert load_model(path) == MODEL
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.json")


def test_load_model_refuses_a_threshold_that_is_not_a_number(tmp_path: Path) -> None:
    """`suggest` does float(model["deviation_threshold"]); a model.json whose threshold is
    not a number passes load_model today and then makes every Predictor.pick raise."""
    path = tmp_path / MODEL_FILE
    path.write_text(json.dumps({**MODEL, "deviation_threshold": "wide"}))
    with pytest.raises(ValueError):
        load_model(path)


# -- evaluate ----------------------------------------------------------------------------------


def test_evaluate_mean_iou_and_crop_match() -> None:
    truth = [CropBox(0.1, 0.1, 0.5, 0.5), CropBox(0.2, 0.2, 0.6, 0.8)]
    assert evaluate(truth, truth) == {"mean_iou": 1.0, "crop_match": 1.0, "n": 2}
    near = [CropBox(0.13, 0.1, 0.5, 0.52), CropBox(0.3, 0.2, 0.6, 0.8)]  # 3% off; 10% off
    expected_iou = round((iou(near[0], truth[0]) + iou(near[1], truth[1])) / 2, 4)
    assert evaluate(near, truth) == {"mean_iou": expected_iou, "crop_match": 0.5, "n": 2}
    # None counts as the whole image: its IoU is the truth's area.
    whole = evaluate([None, None], truth)
    assert whole["mean_iou"] == pytest.approx((0.16 + 0.24) / 2, abs=1e-4)
    assert whole["crop_match"] == 0.0
    assert evaluate([None], [CropBox(0.0, 0.0, 1.0, 1.0)])["crop_match"] == 1.0
    assert evaluate([], []) == {"mean_iou": 0.0, "crop_match": 0.0, "n": 0}
    with pytest.raises(ValueError):
        evaluate(truth[:1], truth)


# -- the training job and serving --------------------------------------------------------------

GROUPS = 60
HEURISTIC = heuristics.HEURISTIC_VERSION


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A generated 60-group project (made once); each test gets its own models folder."""
    from workbench.ml.training.synthetic import make_rule_project

    root = tmp_path_factory.mktemp("smartcrop")
    make_rule_project(
        ProjectStore(root / "projects", root / "unused"), "rule", GROUPS, seed=11, size=(128, 96)
    )
    return root / "projects", "rule"


@pytest.fixture
def rule(generated: tuple[Path, str], tmp_path: Path):
    projects, name = generated
    store = ProjectStore(projects, tmp_path / "models")
    return store, store.open(name)


def _config(store: ProjectStore, name: str = "rule", **kw) -> JobConfig:  # noqa: ANN003
    return JobConfig(kind="smartcrop", project=name, projects_dir=str(store.projects_dir),
                     models_dir=str(store.models_dir), **kw)  # fmt: skip


def test_the_job_registers_v1_with_its_model_and_baselines(rule) -> None:  # noqa: ANN001
    store, project = rule
    result = run_job(_config(store))
    assert result.status in ("promoted", "kept"), result
    assert result.version == "v1" and result.kind == "smartcrop"
    registry = Registry(project.models_dir)
    info = registry.version("smartcrop", "v1")
    model = load_model(info.path / MODEL_FILE)
    samples = result.samples
    assert samples["train"] + samples["held_out"] == GROUPS and samples["held_out"] >= 1
    assert model["samples"] == samples["train"]  # fit on the training side only
    assert info.metrics["held_out"] == result.metrics and info.metrics["key"] == "mean_iou"
    assert info.metrics["summary"] == model
    assert set(info.metrics["baselines"]) == {"heuristic", "whole_image", "mean_box"}
    assert info.metrics["baselines"] == result.baselines
    assert info.serving == {"format": FORMAT}
    assert info.config["kind"] == "smartcrop" and len(info.data["data_hash"]) == 64
    for metrics in (result.metrics, *result.baselines.values()):
        assert metrics["n"] == samples["held_out"]
        assert 0.0 <= metrics["mean_iou"] <= 1.0 and 0.0 <= metrics["crop_match"] <= 1.0
    # The baselines are what they say, on the held-out crops.
    conn = project.connect()
    try:
        crops, _ = crop_samples(conn, registry.split())
    finally:
        conn.close()
    truth = [c.box for c in crops if c.held_out]
    assert len(truth) == samples["held_out"]
    assert result.baselines["whole_image"] == evaluate([None] * len(truth), truth)
    assert result.baselines["mean_box"] == evaluate([mean_box(model)] * len(truth), truth)
    # Gating: champion exactly when it beat the heuristic on mean_iou.
    wins = better(result.metrics, result.baselines["heuristic"], "mean_iou", None)
    assert result.status == ("promoted" if wins else "kept")
    assert registry.champion("smartcrop") == ("v1" if wins else None)
    assert [p for p in registry.kind_dir("smartcrop").iterdir()
            if p.name.startswith(STAGING_PREFIX)] == []  # fmt: skip


def test_a_rerun_on_the_same_data_gives_the_same_model(rule) -> None:  # noqa: ANN001
    store, project = rule
    first = run_job(_config(store, promote=False))
    second = run_job(_config(store, promote=False))
    assert (first.status, second.status) == ("kept", "kept")
    assert (first.version, second.version) == ("v1", "v2")
    registry = Registry(project.models_dir)
    v1, v2 = registry.version("smartcrop", "v1"), registry.version("smartcrop", "v2")
    assert v1.data["data_hash"] == v2.data["data_hash"]
    assert (v1.path / MODEL_FILE).read_text() == (v2.path / MODEL_FILE).read_text()
    assert first.metrics == second.metrics
    assert registry.champion("smartcrop") is None  # promote=False


def test_the_job_is_not_ready_without_crops(store, project) -> None:  # noqa: ANN001
    result = run_job(_config(store, project.name))
    assert result.status == "not_ready"
    assert "at least 5 final crops" in result.message and "has 0" in result.message
    assert Registry(project.models_dir).versions("smartcrop") == []


def test_a_cancel_keeps_nothing(rule) -> None:  # noqa: ANN001
    store, project = rule
    seen = []

    def stop() -> bool:
        return any(p.stage == "features" and p.step > 0 for p in seen)

    result = run_job(_config(store), seen.append, stop)
    assert result.status == "cancelled"
    registry = Registry(project.models_dir)
    assert registry.versions("smartcrop") == [] and registry.champion("smartcrop") is None
    folder = registry.kind_dir("smartcrop")
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []


def _promote_v1(store: ProjectStore, project) -> dict:  # noqa: ANN001
    result = run_job(_config(store, promote=False))
    assert result.version == "v1"
    registry = Registry(project.models_dir)
    registry.promote("smartcrop", "v1")
    return load_model(registry.version("smartcrop", "v1").path / MODEL_FILE)


def test_the_predictor_serves_a_smartcrop_champion(rule) -> None:  # noqa: ANN001
    from workbench.ml.predict import Predictor

    store, project = rule
    predictor = Predictor(project.models_dir, check_interval_s=0)
    assert predictor.reload() == {"ranker": HEURISTIC, "crop": HEURISTIC}
    model = _promote_v1(store, project)
    assert predictor.reload()["crop"] == "smartcrop"
    assert predictor.versions() == {"ranker": HEURISTIC, "crop": "smartcrop"}
    changed_somewhere = False
    for path in sorted(project.source.glob("*.png"))[:12]:
        proposal = heuristics.propose_crop(predictor.features(path))[0]
        expected, changed = suggest(model, proposal)
        pick = predictor.pick([path])
        assert pick.crop == expected, path
        assert pick.versions["crop"] == "smartcrop"
        changed_somewhere |= changed and expected != proposal
    assert changed_somewhere  # the statistics really moved a heuristic crop
    # Rolled back: the heuristic's own crop again.
    Registry(project.models_dir).rollback("smartcrop")
    assert predictor.reload()["crop"] == HEURISTIC
    path = sorted(project.source.glob("*.png"))[0]
    assert predictor.pick([path]).crop == heuristics.propose_crop(predictor.features(path))[0]


def test_a_broken_smartcrop_champion_falls_back_to_the_heuristic(rule) -> None:  # noqa: ANN001
    from workbench.ml.predict import Predictor

    store, project = rule
    _promote_v1(store, project)
    model_file = Registry(project.models_dir).version("smartcrop", "v1").path / MODEL_FILE
    model_file.write_text(json.dumps({"format": "something else"}))
    predictor = Predictor(project.models_dir, check_interval_s=0)
    assert predictor.reload()["crop"] == HEURISTIC
    path = sorted(project.source.glob("*.png"))[0]
    assert predictor.pick([path]).crop == heuristics.propose_crop(predictor.features(path))[0]


def test_a_smartcrop_champion_with_a_bad_threshold_never_breaks_a_pick(rule) -> None:  # noqa: ANN001
    """Predictor.pick "never raises per file"; a hand-edited model.json must not stop the
    review. Today load_model accepts it and `suggest` raises ValueError inside pick."""
    from workbench.ml.predict import Predictor

    store, project = rule
    model = _promote_v1(store, project)
    model_file = Registry(project.models_dir).version("smartcrop", "v1").path / MODEL_FILE
    model_file.write_text(json.dumps({**model, "deviation_threshold": "wide"}))
    predictor = Predictor(project.models_dir, check_interval_s=0)
    predictor.reload()
    path = sorted(project.source.glob("*.png"))[0]
    pick = predictor.pick([path])
    assert pick.crop == heuristics.propose_crop(predictor.features(path))[0]
