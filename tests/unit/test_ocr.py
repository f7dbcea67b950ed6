"""Plate OCR: rapidocr's recognizer alone on crops, engine choice, `read_plates`, `workbench ocr`."""

from __future__ import annotations

import importlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from workbench.core.demo_draw import PLATE_CHARS, plate_font
from workbench.ml.ocr.engines import OcrEngines, PlateResult, load_crop
from workbench.ml.ocr.rapid import CtcDecoder, EngineUnavailable, rapidocr_folder
from workbench.ml.predict import PlateReading, Predictor

SEED = 2024
KEYS = ["image", "text", "raw_text", "confidence", "char_confidences", "engine",
        "model_version", "ms", "error"]  # fmt: skip


def render_plate(text: str, path: Path, *, yellow: bool) -> Path:
    """A clean plate: dark DejaVu Sans Bold (or Pillow's font) on a white or yellow plate."""
    font = plate_font(44)
    left, top, right, bottom = font.getbbox(text)
    width, height = right - left + 28, bottom - top + 22
    plate = Image.new("RGB", (width, height), (235, 200, 40) if yellow else (245, 245, 240))
    draw = ImageDraw.Draw(plate)
    draw.rectangle((1, 1, width - 2, height - 2), outline=(25, 25, 25), width=3)
    draw.text((14 - left, 11 - top), text, font=font, fill=(20, 20, 20))
    plate.save(path)
    return path


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> list[tuple[Path, str]]:
    """20 clean synthetic plates of 5-8 characters (the demo's plate alphabet)."""
    folder = tmp_path_factory.mktemp("plates")
    rng = np.random.default_rng(SEED)
    out = []
    for i in range(20):
        text = "".join(rng.choice(list(PLATE_CHARS), int(rng.integers(5, 9))))
        out.append((render_plate(text, folder / f"plate_{i:02d}.png", yellow=i % 3 == 0), text))
    return out


@pytest.fixture(scope="module")
def engines() -> OcrEngines:
    return OcrEngines(None, threads=2)


def test_rapidocr_reads_at_least_16_of_20_clean_plates_exactly(engines, plates) -> None:
    results = engines.read([p for p, _ in plates], "rapidocr")
    exact = sum(r.text == truth for r, (_, truth) in zip(results, plates, strict=True))
    misses = [
        (truth, r.text) for r, (_, truth) in zip(results, plates, strict=True) if r.text != truth
    ]
    assert exact >= 16, f"only {exact} of 20 read exactly: {misses}"
    for r in results:
        assert r.engine == "rapidocr" and r.version.startswith("ch_PP-OCRv4_rec")
        assert len(r.char_confidences) == len(r.text) and 0 < r.confidence <= 1
        assert all(0 <= c <= 1 for c in r.char_confidences)
        assert r.error is None and r.ms > 0


def test_batches_and_threads_read_the_same(engines, plates) -> None:
    paths = [p for p, _ in plates]
    one_by_one = [engines.read([p], "rapidocr")[0].text for p in paths]
    batched = [r.text for r in engines.read(paths, "rapidocr", batch_size=64)]
    assert sum(a == b for a, b in zip(one_by_one, batched, strict=True)) >= 18
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda p: engines.read([p], "rapidocr")[0].text, paths))
    assert threaded == one_by_one


def test_a_bad_crop_gets_an_error_and_the_others_are_read(engines, plates, tmp_path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    paths = [plates[0][0], broken, tmp_path / "missing.png", tiny, plates[1][0]]
    results = engines.read(paths, "rapidocr")
    assert [r.image for r in results] == [str(p) for p in paths]
    assert [bool(r.error) for r in results] == [False, True, True, True, False]
    assert "missing" in results[2].error and results[2].text == ""
    assert results[0].text == plates[0][1]


def test_decoder_folds_case_and_drops_other_characters() -> None:
    decoder = CtcDecoder(["a", "A", "1", "-", "b"])  # classes 1..5, 0 is the blank
    steps = [
        [0.1, 0.5, 0.3, 0, 0, 0.1],  # a+A -> A (0.8)
        [0.1, 0.0, 0.9, 0, 0, 0],  # A again: same character, confidence max
        [0.9, 0, 0, 0, 0.1, 0],  # blank
        [0, 0, 0, 0, 1.0, 0],  # '-': separates, not in text
        [0.2, 0, 0, 0.7, 0, 0.1],  # 1
        [0.6, 0, 0, 0, 0, 0.4],  # blank beats b
    ]
    reading = decoder.decode(np.array([steps], dtype=np.float32))[0]
    assert reading.text == "A1" and reading.raw_text == "aA-1"  # raw: per-class argmax
    assert reading.char_confidences == [0.9, 0.7] and reading.confidence == 0.8


def test_crnn_without_a_champion_says_so_and_auto_uses_rapidocr(tmp_path) -> None:
    engines = OcrEngines(tmp_path / "models" / "demo", threads=1)
    with pytest.raises(EngineUnavailable, match="no trained plate OCR model"):
        engines.get("crnn")
    assert engines.get("auto").name == "rapidocr"
    with pytest.raises(EngineUnavailable, match="paddleocr_dir"):
        engines.get("paddleocr")


def test_a_crnn_champion_is_served_and_picked_up_without_a_restart(tmp_path, plates) -> None:
    models = tmp_path / "models" / "demo"
    engines = OcrEngines(models, threads=1)
    assert engines.get("auto").name == "rapidocr"
    # A stand-in champion with the CRNN contract: rapidocr's network at a fixed 48x320.
    import onnxruntime

    rec = rapidocr_folder() / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    meta = onnxruntime.InferenceSession(str(rec), providers=["CPUExecutionProvider"])
    alphabet = "".join(meta.get_modelmeta().custom_metadata_map["character"].splitlines()) + " "
    (models / "ocr" / "v1").mkdir(parents=True)
    shutil.copyfile(rec, models / "ocr" / "v1" / "model.onnx")
    (models / "ocr" / "champion.json").write_text(json.dumps(
        {"version": "v1", "alphabet": alphabet, "input_shape": [3, 48, 320]}))  # fmt: skip
    engines.reload()
    result = engines.read([plates[0][0]], "auto")[0]
    assert (result.engine, result.version, result.error) == ("crnn", "v1", None)
    assert result.text  # it reads something; a real champion is trained for plates
    (models / "ocr" / "champion.json").unlink()
    engines.reload()
    assert engines.get("auto").name == "rapidocr"
    (models / "ocr" / "champion.json").write_text('{"version": "latest"}')
    engines.reload()
    with pytest.raises(EngineUnavailable, match="cannot be used"):
        engines.get("crnn")
    assert engines.get("auto").name == "rapidocr"  # a broken champion never stops labeling


def test_paddleocr_serves_a_local_onnx_model_folder(tmp_path, plates) -> None:
    folder = tmp_path / "paddle_rec"
    folder.mkdir()
    engines = OcrEngines(None, paddleocr_dir=folder, threads=1)
    with pytest.raises(EngineUnavailable, match="No ONNX"):
        engines.get("paddleocr")
    (folder / "inference.pdmodel").write_bytes(b"")
    with pytest.raises(EngineUnavailable, match="paddle2onnx"):
        OcrEngines(None, paddleocr_dir=folder).get("paddleocr")
    import onnxruntime

    rec = rapidocr_folder() / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    shutil.copyfile(rec, folder / "inference.onnx")
    meta = onnxruntime.InferenceSession(str(rec), providers=["CPUExecutionProvider"])
    (folder / "ppocr_keys_dict.txt").write_text(
        meta.get_modelmeta().custom_metadata_map["character"]
    )
    results = OcrEngines(None, paddleocr_dir=folder, threads=1).read(
        [p for p, _ in plates[:4]], "paddleocr"
    )
    assert [r.engine for r in results] == ["paddleocr"] * 4
    assert sum(r.text == t for r, (_, t) in zip(results, plates[:4], strict=True)) >= 3


def test_predictor_read_plates_gives_plate_readings(store, source_dir, plates) -> None:
    project = store.create("ocr", source_dir)
    readings = Predictor(project.models_dir).read_plates([p for p, _ in plates[:3]])
    assert all(isinstance(r, PlateReading) and isinstance(r, PlateResult) for r in readings)
    assert [r.engine for r in readings] == ["rapidocr"] * 3


def test_load_crop_applies_exif_orientation(tmp_path) -> None:
    path = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways
    image.save(path, exif=exif)
    crop = load_crop(path)
    assert crop.shape == (40, 20, 3) and crop[0, 0, 2] > 200  # BGR: red last


def test_cli_ocr_json_layout(store, source_dir, plates, tmp_path, monkeypatch, capsys) -> None:
    store.create("ocr", source_dir)
    main_module = importlib.import_module("workbench.cli.main")
    from workbench.cli import plates_cmds

    if plates_cmds not in main_module.COMMAND_MODULES:
        monkeypatch.setattr(
            main_module, "COMMAND_MODULES", (*main_module.COMMAND_MODULES, plates_cmds)
        )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"nope")
    base = ["--projects-dir", str(store.projects_dir), "--models-dir", str(store.models_dir)]
    args = ["ocr", "ocr", str(plates[0][0]), str(broken), str(plates[1][0]), "--json"]
    assert main_module.main([*base, *args]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["results"]
    results = doc["results"]
    assert [list(r) for r in results] == [KEYS] * 3
    assert [r["image"] for r in results] == args[2:5]
    assert results[0]["text"] == plates[0][1] and results[0]["error"] is None
    assert results[1]["error"] and results[1]["text"] == ""
    assert results[0]["engine"] == "rapidocr" and results[0]["ms"] > 0
    assert (
        main_module.main([*base, "ocr", "ocr", str(plates[0][0]), "--engine", "crnn", "--json"])
        == 1
    )
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "engine_unavailable" and "--engine rapidocr" in error["message"]
    assert main_module.main([*base, "ocr", "ocr", str(broken), "--json"]) == 1  # nothing read
