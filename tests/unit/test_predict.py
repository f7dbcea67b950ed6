"""The predictor: heuristic pick and crop on synthetic groups, the Pick layout, bad files,
the feature cache, threads, and picking up a trained champion without a restart."""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ImageFilter

from tests.unit.test_features import degrade, scene, subject_on_dark
from workbench.core.crops import CropBox, iou
from workbench.core.errors import InvalidInput
from workbench.core.thumbs import ThumbnailCache
from workbench.ml import heuristics
from workbench.ml.features import FEATURE_NAMES, FeatureStore, compute_features
from workbench.ml.predict import PlateReading, Predictor

# -- the heuristics on synthetic groups ---------------------------------------------------


def test_degraded_variants_rank_below_the_clean_frame() -> None:
    rng = np.random.default_rng(2024)
    wins, groups = 0, 100
    for _ in range(groups):
        img = scene(rng)
        kinds = rng.choice(["blur", "bright", "noise"], size=int(rng.integers(1, 4)), replace=False)
        variants = [img] + [degrade(img, rng, str(k)) for k in kinds]
        order = rng.permutation(len(variants))  # the clean frame is anywhere in the group
        probabilities = heuristics.rank([compute_features(variants[i]) for i in order])
        wins += int(order[int(np.argmax(probabilities))] == 0)
    assert wins >= 0.95 * groups


def test_identical_images_give_uniform_scores() -> None:
    vec = compute_features(scene(np.random.default_rng(4)))
    for n in (2, 3, 4):
        assert heuristics.rank([vec] * n) == pytest.approx([1 / n] * n, abs=1e-9)


def test_sharp_beats_blurred_with_confidence() -> None:
    rng = np.random.default_rng(8)
    for _ in range(10):
        img = scene(rng)
        blurred = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1.2, 2.2))))
        p = heuristics.rank([compute_features(blurred), compute_features(img)])
        assert p[1] > 0.8 and p.sum() == pytest.approx(1.0)


def test_crop_box_finds_a_bright_subject() -> None:
    rng = np.random.default_rng(99)
    hits = 0
    for _ in range(50):
        img, subject = subject_on_dark(rng)
        box, confidence = heuristics.propose_crop(compute_features(img))
        assert 0.0 <= confidence <= 1.0
        hits += int(box is not None and iou(box, subject) >= 0.5)
    assert hits >= 0.8 * 50


def test_crop_is_clamped_and_at_least_min_size() -> None:
    vec = compute_features(scene(np.random.default_rng(1)))
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    vec[[i["subject_x1"], i["subject_y1"], i["subject_x2"], i["subject_y2"]]] = (
        0.95,
        0.0,
        1.0,
        0.05,
    )
    box, _ = heuristics.propose_crop(vec)
    assert box is not None
    assert box.x2 == 1.0 and box.y1 == 0.0
    assert (
        box.width >= heuristics.CROP_MIN_SIDE - 1e-4
        and box.height >= heuristics.CROP_MIN_SIDE - 1e-4
    )
    # nothing to cut: a subject covering the frame proposes no crop
    vec[[i["subject_x1"], i["subject_y1"], i["subject_x2"], i["subject_y2"]]] = (0.0, 0.0, 1.0, 1.0)
    assert heuristics.propose_crop(vec)[0] is None


# -- Predictor on files ----------------------------------------------------------------------


@pytest.fixture
def group(tmp_path: Path) -> list[Path]:
    """blurred, clean, noisy copies of one frame, as PNG files."""
    rng = np.random.default_rng(6)
    img = scene(rng, 640, 480)
    paths = []
    for name, im in (
        ("blur", degrade(img, rng, "blur")),
        ("clean", img),
        ("noise", degrade(img, rng, "noise")),
    ):
        paths.append(tmp_path / f"{name}.png")
        im.save(paths[-1])
    return paths


def test_pick_layout_and_choice(group: list[Path]) -> None:
    pick = Predictor(None).pick(group)
    assert pick.selected_index == 1
    assert sum(pick.scores) == pytest.approx(1.0) and len(pick.scores) == 3
    assert pick.confidence == max(pick.scores)
    assert pick.versions == {"ranker": "heuristic", "crop": "heuristic"}
    doc = json.loads(pick.to_json())
    assert list(doc) == ["selected_index", "scores", "confidence", "crop", "models"]
    assert doc["models"] == {"ranker": "heuristic", "crop": "heuristic"}
    assert doc["crop"] is None or CropBox.from_seq(doc["crop"]) == pick.crop
    assert pick.unreadable == {}


def test_one_image_gets_its_crop(tmp_path: Path) -> None:
    img, subject = subject_on_dark(np.random.default_rng(3))
    path = tmp_path / "one.png"
    img.save(path)
    pick = Predictor(None).pick([path])
    assert pick.selected_index == 0 and pick.scores == [1.0] and pick.confidence == 1.0
    assert pick.crop is not None and iou(pick.crop, subject) >= 0.5
    assert pick.crop_confidence is not None and pick.crop_confidence > 0.3


def test_unreadable_images_score_zero(group: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    missing = tmp_path / "missing.png"
    pick = Predictor(None).pick([bad, group[1], missing])
    assert pick.selected_index == 1
    assert pick.scores[0] == 0.0 and pick.scores[2] == 0.0 and pick.scores[1] == pytest.approx(1.0)
    assert set(pick.unreadable) == {0, 2}
    assert "not an image" in pick.unreadable[0] and "does not exist" in pick.unreadable[2]

    nothing = Predictor(None).pick([bad, missing])
    assert nothing.selected_index == 0 and nothing.crop is None
    assert nothing.scores == [0.0, 0.0] and nothing.confidence == 0.0


def test_group_size_is_checked(group: list[Path]) -> None:
    with pytest.raises(InvalidInput, match="1 to 4"):
        Predictor(None).pick([])
    with pytest.raises(InvalidInput, match="1 to 4"):
        Predictor(None).pick(group + group)


def test_features_are_cached_in_the_database(group: list[Path], store, source_dir: Path) -> None:  # noqa: ANN001
    project = store.create("pred", source_dir)
    thumbs = ThumbnailCache(project.root / "cache" / "thumbs")
    first = Predictor(
        None, thumbs=thumbs, feature_store_factory=lambda: FeatureStore(project.connect())
    )
    expected = first.pick(group)
    conn = project.connect()
    assert conn.execute("SELECT COUNT(*) FROM image_features").fetchone()[0] == 3
    conn.close()
    fresh = ThumbnailCache(None)
    second = Predictor(
        None, thumbs=fresh, feature_store_factory=lambda: FeatureStore(project.connect())
    )
    assert second.pick(group) == expected
    assert fresh.stats().decodes == 0  # every vector came from the database


def test_pick_is_thread_safe(group: list[Path], store, source_dir: Path) -> None:  # noqa: ANN001
    project = store.create("threads", source_dir)
    predictor = Predictor(
        None,
        thumbs=ThumbnailCache(project.root / "cache" / "thumbs"),
        feature_store_factory=lambda: FeatureStore(project.connect()),
    )
    groups = [group, group[:2], group[1:], [group[2]]]
    expected = [Predictor(None).pick(g) for g in groups]
    results: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for k in range(8):
                i = (seed + k) % len(groups)
                results.append((i, predictor.pick(groups[i])))
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 32
    for i, pick in results:
        assert pick.selected_index == expected[i].selected_index
        assert pick.scores == pytest.approx(expected[i].scores, abs=1e-6)


def test_plate_reading_is_declared() -> None:
    reading = PlateReading("AB123", 0.9, [0.9] * 5, "rapidocr", "1.4")
    assert reading.text == "AB123" and reading.engine == "rapidocr"


def test_proposal_provider_gives_review_proposals(group: list[Path], tmp_path: Path) -> None:
    from workbench.core.review import AIProposal

    provide = Predictor(None).as_proposal_provider()
    proposal = provide(group)
    assert isinstance(proposal, AIProposal)
    assert proposal.selected_index == 1 and proposal.ranker_version == "heuristic"
    assert proposal.crop_version == "heuristic"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"junk")
    none = provide([bad])
    assert none.selected_index is None and none.confidence is None and none.crop is None


# -- trained champions ------------------------------------------------------------------------


class _Input:
    name = "features"
    shape = [None, len(FEATURE_NAMES)]


class _FakeSession:
    """Stands in for onnxruntime.InferenceSession; the "model" file holds JSON behaviour."""

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None) -> None:
        self.spec = json.loads(Path(path).read_text())

    def get_inputs(self) -> list[_Input]:
        return [_Input()]

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["features"]
        if "box" in self.spec:
            return [np.array([self.spec["box"]], dtype=np.float32)]
        logits = np.zeros(len(x), dtype=np.float32)
        logits[self.spec["prefer"]] = 5.0
        return [logits[:, None]]


@pytest.fixture
def fake_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("onnxruntime")
    module.InferenceSession = _FakeSession  # type: ignore[attr-defined]
    module.SessionOptions = types.SimpleNamespace  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "onnxruntime", module)
    return module


def _champion(models: Path, kind: str, version: str, spec: dict[str, Any], **extra: Any) -> None:
    folder = models / kind / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_text(json.dumps(spec))
    pointer = models / kind / "champion.json"
    pointer.write_text(json.dumps({"version": version, "feature_version": "f1", **extra}))
    # a distinct mtime even on coarse-clock file systems
    stamp = pointer.stat().st_mtime_ns + 10_000_000 * (1 + int(version[1:]))
    os.utime(pointer, ns=(stamp, stamp))


def test_trained_champions_are_used_and_swapped_without_restart(
    group: list[Path],
    tmp_path: Path,
    fake_onnxruntime: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = tmp_path / "models" / "proj"
    throttled = Predictor(models)
    assert throttled.pick(group).versions == {"ranker": "heuristic", "crop": "heuristic"}
    predictor = Predictor(models, check_interval_s=0.0)
    assert predictor.pick(group).versions == {"ranker": "heuristic", "crop": "heuristic"}

    _champion(models, "ranker", "v1", {"prefer": 2})
    _champion(models, "crop", "v1", {"box": [0.1, 0.2, 0.6, 0.7]})
    # the default predictor looks again only a second after its last look
    assert throttled.pick(group).versions["ranker"] == "heuristic"
    assert throttled.reload() == {"ranker": "v1", "crop": "v1"}
    pick = predictor.pick(group)
    assert pick.versions == {"ranker": "v1", "crop": "v1"}
    assert pick.selected_index == 2 and pick.confidence > 0.95
    assert pick.crop == CropBox(0.1, 0.2, 0.6, 0.7)
    assert pick.to_dict()["models"] == {"ranker": "v1", "crop": "v1"}

    _champion(models, "ranker", "v2", {"prefer": 0})  # retrained: picked up on the next pick
    pick = predictor.pick(group)
    assert pick.versions["ranker"] == "v2" and pick.selected_index == 0

    (models / "ranker" / "champion.json").unlink()  # rolled back to nothing
    assert predictor.reload() == {"ranker": "heuristic", "crop": "v1"}
    assert predictor.pick(group).selected_index == 1


@pytest.mark.parametrize(
    "problem",
    ["missing model", "bad version", "other features", "escaping path", "not json"],
)
def test_a_bad_champion_falls_back_to_the_heuristic(
    group: list[Path], tmp_path: Path, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> None:
            if name == "onnxruntime":
                attempts.append(name)
            return None

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    models = tmp_path / "models" / "proj"
    pointer = models / "ranker" / "champion.json"
    pointer.parent.mkdir(parents=True)
    content = {
        "missing model": {"version": "v1"},
        "bad version": {"version": "latest"},
        "other features": {"version": "v1", "feature_version": "f0"},
        "escaping path": {"version": "v1/../../../../x"},
    }.get(problem)
    pointer.write_text("{oops" if content is None else json.dumps(content))
    if problem == "other features":
        (models / "ranker" / "v1").mkdir()
        (models / "ranker" / "v1" / "model.onnx").write_text("{}")
    pick = Predictor(models).pick(group)
    assert pick.versions["ranker"] == "heuristic" and pick.selected_index == 1
    assert attempts == []  # the ML runtime was never even looked for


def test_no_models_dir_imports_no_ml_runtime(
    group: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other tests of the session may have loaded them; this pick must not.
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    Predictor(None).pick(group)
    assert "onnxruntime" not in sys.modules and "torch" not in sys.modules


def test_a_repeated_pick_decodes_nothing(group: list[Path]) -> None:
    # Not a timing test (benchmarks/bench_predict.py measures): the features are kept.
    thumbs = ThumbnailCache(None)
    predictor = Predictor(None, thumbs=thumbs)
    first = predictor.pick(group)
    assert predictor.pick(group) == first
    stats = thumbs.stats()
    assert stats.decodes == 3 and stats.memory_hits == 0
