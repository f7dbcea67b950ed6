"""Serving a trained CRNN (engines.CrnnRecognizer): the same pixels as training, batched,
input order kept, per-character confidences from the CTC output, safe across threads.

The ONNX session is a stand-in here (no torch, no model file); the real exported model is
served in tests/e2e/test_crnn_training.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from workbench.ml.ocr.engines import CrnnRecognizer, crnn_pixels, crnn_recognizer
from workbench.ml.ocr.rapid import PLATE_ALPHABET

K = 1 + len(PLATE_ALPHABET)


class FakeSession:
    """Reads each crop's mean grey level as one plate character, twice: "AA", "BB", ...

    Output [n, 5, K] probabilities: char, blank, char, blank, blank (confidence 0.9 then 0.7).
    """

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.lock = threading.Lock()

    def get_inputs(self) -> list[object]:
        return [type("Input", (), {"name": "input"})()]

    def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["input"]
        with self.lock:
            self.shapes.append(x.shape)
        pixels = (x * 0.5 + 0.5) * 255  # undo (x / 255 - 0.5) / 0.5
        out = np.zeros((len(x), 5, K), np.float32)
        for n in range(len(x)):
            k = 1 + int(round(float(pixels[n].mean()) / 10))
            for t, p in ((0, 0.9), (2, 0.7)):
                out[n, t, k], out[n, t, 0] = p, 1 - p
            out[n, (1, 3, 4), 0] = 1.0
        return [out]


def grey(level: int, w: int = 90, h: int = 30) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


def test_pixels_are_resized_grey_or_rgb() -> None:
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, :, 0] = 255  # blue in BGR
    g = crnn_pixels([img, img], (1, 32, 128))
    assert g.shape == (2, 1, 32, 128) and g.dtype == np.uint8
    assert abs(int(g[0, 0, 5, 5]) - 29) <= 1  # BGR -> grey weights blue 0.114
    rgb = crnn_pixels([img], (3, 16, 64))
    assert rgb.shape == (1, 3, 16, 64) and rgb[0, 2].min() == 255 and rgb[0, 0].max() == 0
    assert crnn_pixels([], (1, 32, 128)).shape == (0, 1, 32, 128)


def test_reads_in_batches_keep_input_order_and_carry_char_confidences() -> None:
    session = FakeSession()
    rec = CrnnRecognizer(session, PLATE_ALPHABET, (1, 32, 128), 0.5, 0.5, batch_size=4)
    levels = [0, 100, 250, 40, 70, 10, 200, 120, 30, 90]
    readings = rec.read([grey(v, w=60 + 7 * i) for i, v in enumerate(levels)])
    assert [s[0] for s in session.shapes] == [4, 4, 2]  # 10 crops, 4 at a time
    expected = [PLATE_ALPHABET[round(v / 10)] * 2 for v in levels]
    assert [r.text for r in readings] == expected
    for r in readings:
        assert r.char_confidences == [0.9, 0.7] and r.confidence == 0.8
    assert rec.read([]) == []


def test_threads_read_the_same_as_one_thread() -> None:
    rec = CrnnRecognizer(FakeSession(), PLATE_ALPHABET, (1, 32, 128), 0.5, 0.5)
    crops = [grey(int(v)) for v in np.random.default_rng(0).integers(0, 255, 48)]
    alone = [r.text for r in rec.read(crops)]
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda i: rec.read(crops[i : i + 3]), range(0, 48, 3)))
    assert [r.text for part in parts for r in part] == alone


def test_unusable_serving_fields_are_refused_before_loading(tmp_path) -> None:
    model = tmp_path / "model.onnx"  # never opened: the fields fail first
    for fields in ({"alphabet": "", "input_shape": [1, 32, 128]},
                   {"alphabet": "AB", "input_shape": [2, 32, 128]},
                   {"alphabet": "AB", "input_shape": [1, 32]},
                   {"alphabet": "AB", "std": 0}):  # fmt: skip
        with pytest.raises(ValueError):
            crnn_recognizer(model, fields, threads=1)
    with pytest.raises(KeyError):
        crnn_recognizer(model, {"input_shape": [1, 32, 128]}, threads=1)
