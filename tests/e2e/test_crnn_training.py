"""The CRNN plate reader trains end to end: synthetic pretraining, fine-tuning on labels,
ONNX serving, promotion, cancel, blank collapse.

A project gets 200 synthetic plate crops written as image files and labeled in
plate_labels. One font and one plate style are kept out of pretraining and out of the
labels; the trained reader must still read 200 plates drawn in exactly that font and
style (CER <= 0.15, exact match >= 0.5), while an untrained model fails the same check.
Sized for CI on two CPU cores: 4,000 synthetic plates, the base model cached for the
runs after the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.plates import SKIP, LabelStore
from workbench.core.project import ProjectStore
from workbench.ml.jobs import JobConfig, Progress, run_job
from workbench.ml.ocr.dataset import score
from workbench.ml.ocr.synth import PlateSynth, save_crop
from workbench.ml.registry import Registry, data_hash

# The first test also pays for the module fixture: pretraining (about a minute on two idle
# cores, several on a busy CI machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

torch = pytest.importorskip("torch")

HELD_FONT, HELD_STYLE = "dejavu-sans-bold", "yellow"
NAME = "plates"
LABELS = 200
SYNTHETIC = 4000
MAX_CER, MIN_EXACT = 0.15, 0.5


def passes(metrics: dict[str, float]) -> bool:
    """The acceptance check on the unseen font and style."""
    return metrics["cer"] <= MAX_CER and metrics["exact_match"] >= MIN_EXACT


def config(root: Path, **kw) -> JobConfig:  # type: ignore[no-untyped-def]
    extra = {"synthetic": SYNTHETIC, "exclude_fonts": [HELD_FONT],
             "exclude_styles": [HELD_STYLE], **kw.pop("extra", {})}  # fmt: skip
    return JobConfig("ocr", NAME, str(root / "projects"), str(root / "models"),
                     epochs=kw.pop("epochs", 15), extra=extra, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A project with 200 labeled synthetic crops and a first trained reader."""
    root = tmp_path_factory.mktemp("crnn")
    (root / "source").mkdir()
    store = ProjectStore(root / "projects", root / "models")
    project = store.create(NAME, root / "source")
    folder = project.root / "plates" / "2025-07-05"
    folder.mkdir(parents=True)
    synth = PlateSynth(7, exclude_fonts=[HELD_FONT], exclude_styles=[HELD_STYLE])
    conn = project.connect()
    try:
        labels = LabelStore(conn)
        for i in range(LABELS):
            plate = synth.render(i)
            path = folder / f"CAM1_track{i}.jpg"
            save_crop(plate.image, path)
            labels.save(path, plate.text, "typed")
        for i in range(3):  # skipped crops never train
            path = folder / f"CAM2_sign{i}.jpg"
            save_crop(synth.render(1000 + i).image, path)
            labels.save(path, SKIP, "typed")
    finally:
        conn.close()
    events: list[Progress] = []
    result = run_job(config(root), events.append)
    return root, project, result, events


@pytest.fixture(scope="module")
def unseen() -> tuple[list[np.ndarray], list[str]]:
    """200 plates in the font and style that training never saw."""
    plates = PlateSynth(99, fonts=[HELD_FONT], styles=[HELD_STYLE]).many(0, 200)
    return [p.image for p in plates], [p.text for p in plates]


def test_the_reader_reads_a_font_and_style_it_never_saw(trained, unseen) -> None:
    from workbench.ml.ocr import crnn
    from workbench.ml.ocr.engines import OcrEngines, crnn_pixels

    _, project, result, _ = trained
    assert result.status == "promoted", result.message
    assert result.version == "v1" and result.champion == "v1" and result.previous_champion is None
    engines = OcrEngines(project.models_dir, threads=2)
    engine = engines.get("crnn")
    assert (engine.name, engine.version) == ("crnn", "v1")
    images, truths = unseen
    readings = engine.recognizer.read(images)
    trained_scores = score([r.text for r in readings], truths)
    assert passes(trained_scores), trained_scores
    for r in readings:
        assert len(r.char_confidences) == len(r.text)
        assert all(0.0 <= c <= 1.0 for c in r.char_confidences)
    # The check has teeth: a model that learned nothing reads nothing and fails it.
    untrained = crnn.predict(crnn.new_model(0), crnn_pixels(images, crnn.INPUT_SHAPE))
    untrained_scores = score([r.text for r in untrained], truths)
    assert not passes(untrained_scores), untrained_scores
    assert untrained_scores["cer"] > trained_scores["cer"] + 0.5


def test_the_job_reports_progress_metrics_and_baselines(trained) -> None:
    root, _, result, events = trained
    stages = {e.stage for e in events}
    assert {"loading", "pretrain", "training", "evaluating"} <= stages
    curves = [e.metrics for e in events if e.stage == "training" and e.metrics]
    assert curves and all({"loss", "cer", "exact"} <= set(m) for m in curves)
    assert any(e.stage == "pretrain" and e.metrics for e in events)
    assert result.samples["train"] + result.samples["held_out"] == LABELS
    assert result.samples["held_out"] >= 10
    assert {"cer", "exact_match"} <= set(result.metrics)
    assert result.champion_metrics == {}  # there was no champion before
    rapid = result.baselines["rapidocr"]
    assert "error" in rapid or {"cer", "exact_match"} <= set(rapid)
    assert any((root / "models" / ".cache" / "ocr-base").iterdir())


def test_the_version_holds_its_files_and_the_hash_of_its_labels(trained) -> None:
    _, project, _, _ = trained
    registry = Registry(project.models_dir)
    info = registry.version("ocr", "v1")
    for name in ("weights.pt", "model.onnx", "metrics.json", "config.json", "data.json",
                 "serving.json"):  # fmt: skip
        assert (info.path / name).is_file(), name
    conn = project.connect()
    try:
        rows = conn.execute("SELECT image_path, text FROM plate_labels WHERE text != ?", (SKIP,))
        records = [{"image_path": p, "text": t} for p, t in rows]
    finally:
        conn.close()
    assert info.data["data_hash"] == data_hash(records)
    pointer = json.loads((project.models_dir / "ocr" / "champion.json").read_text())
    assert pointer["version"] == "v1" and pointer["alphabet"] == info.serving["alphabet"]
    assert pointer["input_shape"] == [1, 32, 128]
    assert info.metrics["onnx_max_abs_diff"] <= 1e-4


def test_onnx_outputs_match_torch(trained, unseen) -> None:
    import onnxruntime

    from workbench.ml.ocr import crnn
    from workbench.ml.ocr.engines import crnn_pixels

    _, project, _, _ = trained
    folder = Registry(project.models_dir).version("ocr", "v1").path
    model = crnn.load_weights(crnn.new_model(), folder / "weights.pt").eval()
    pixels = crnn_pixels(unseen[0][:64], crnn.INPUT_SHAPE)
    x = crnn.normalize(torch.from_numpy(pixels))
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=-1).numpy()
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    for batch in (1, 7, 64):  # the batch axis is dynamic
        got = session.run(None, {"input": x[:batch].numpy()})[0]
        assert got.shape == expected[:batch].shape
        assert np.abs(got - expected[:batch]).max() <= 1e-4


def test_cancel_mid_epoch_keeps_nothing_and_leaves_the_champion(trained) -> None:
    root, project, _, _ = trained
    pointer = project.models_dir / "ocr" / "champion.json"
    before = pointer.read_bytes()
    seen: list[Progress] = []
    calls = {"after": 0}

    def should_stop() -> bool:
        # Stop three batches into the second fine-tuning epoch.
        if any(e.stage == "training" and e.step >= 1 for e in seen):
            calls["after"] += 1
        return calls["after"] > 3

    result = run_job(config(root, seed=0), seen.append, should_stop)
    assert result.status == "cancelled", result.message
    assert [e.step for e in seen if e.stage == "training"][-1] == 1  # stopped inside epoch 2
    assert [v.version for v in Registry(project.models_dir).versions("ocr")] == ["v1"]
    assert not [p for p in (project.models_dir / "ocr").iterdir() if p.name.startswith(".")]
    assert pointer.read_bytes() == before


def test_no_pretraining_collapses_to_blanks_and_says_so(trained) -> None:
    root, project, _, _ = trained
    result = run_job(config(root, epochs=2, extra={"synthetic": 0}))
    assert result.status == "failed"
    assert "collapsed to blanks" in result.message and "synthetic" in result.message
    assert [v.version for v in Registry(project.models_dir).versions("ocr")] == ["v1"]


def test_a_second_version_is_compared_with_the_champion_on_the_same_crops(trained) -> None:
    root, project, first, _ = trained
    result = run_job(config(root, epochs=3, promote=False))
    assert result.status == "kept" and result.version == "v2", result.message
    assert result.champion == "v1" and result.previous_champion == "v1"
    assert result.champion_metrics["version"] == "v1"
    assert result.champion_metrics["exact_match"] == first.metrics["exact_match"]
    assert result.champion_metrics["n"] == first.metrics["n"]


def test_cuda_without_a_gpu_is_a_sentence(trained) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    root, _, _, _ = trained
    result = run_job(config(root, device="cuda"))
    assert result.status == "failed" and "cuda" in result.message.lower()
    assert "--device cpu" in result.message


def test_too_few_labels_is_not_ready(tmp_path) -> None:
    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    (tmp_path / "source").mkdir()
    store.create(NAME, tmp_path / "source")
    result = run_job(config(tmp_path))
    assert result.status == "not_ready"
    assert "more labeled plates" in result.message
