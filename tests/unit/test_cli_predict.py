"""`workbench predict NAME IMG...`: the JSON layout, human output, bad input, caches."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_features import degrade, scene
from workbench import cli


@pytest.fixture
def setup(tmp_path: Path) -> tuple[list[str], list[Path]]:
    source = tmp_path / "photos"
    source.mkdir()
    rng = np.random.default_rng(12)
    img = scene(rng, 600, 400)
    paths = []
    for name, im in (
        ("a_blur", degrade(img, rng, "blur")),
        ("b_clean", img),
        ("c_dark", degrade(img, rng, "dark")),
    ):
        paths.append(source / f"{name}.png")
        im.save(paths[-1])
    common = [
        "--projects-dir",
        str(tmp_path / "projects"),
        "--models-dir",
        str(tmp_path / "models"),
    ]
    assert cli.main([*common, "init", "shots", "--source", str(source), "--json"]) == 0
    return common, paths


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_predict_json_layout(capsys, setup) -> None:  # noqa: ANN001
    common, paths = setup
    capsys.readouterr()
    code, doc = run_json(capsys, *common, "predict", "shots", *map(str, paths), "--json")
    assert code == 0
    assert list(doc) == ["selected_index", "scores", "confidence", "crop", "models"]
    assert doc["selected_index"] == 1
    assert len(doc["scores"]) == 3 and sum(doc["scores"]) == pytest.approx(1.0)
    assert doc["confidence"] == max(doc["scores"])
    assert doc["crop"] is None or (len(doc["crop"]) == 4 and doc["crop"][0] < doc["crop"][2])
    assert doc["models"] == {"ranker": "heuristic", "crop": "heuristic"}


def test_predict_one_image_and_caches(capsys, setup, tmp_path: Path) -> None:  # noqa: ANN001
    common, paths = setup
    capsys.readouterr()
    code, doc = run_json(capsys, "predict", "shots", str(paths[0]), *common, "--json")
    assert code == 0 and doc["selected_index"] == 0 and doc["scores"] == [1.0]
    project = tmp_path / "projects" / "shots"
    assert list((project / "cache" / "thumbs").rglob("*_512.jpg"))
    conn = sqlite3.connect(project / "shots.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM image_features").fetchone()[0] == 1
    finally:
        conn.close()


def test_predict_human_output(capsys, setup) -> None:  # noqa: ANN001
    common, paths = setup
    capsys.readouterr()
    assert cli.main([*common, "predict", "shots", *map(str, paths)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  1 ") and out[1].startswith("> 2 ") and out[2].startswith("  3 ")
    assert str(paths[1]) in out[1]
    assert out[3].startswith("pick 2, confidence") and "crop" in out[3]
    assert out[4] == "models: ranker heuristic, crop heuristic"


def test_predict_bad_input(capsys, setup, tmp_path: Path) -> None:  # noqa: ANN001
    common, paths = setup
    capsys.readouterr()
    code, doc = run_json(capsys, *common, "predict", "shots", str(tmp_path / "nope.png"), "--json")
    assert code == 1 and "does not exist" in doc["error"]["message"]
    code, doc = run_json(
        capsys, *common, "predict", "shots", *map(str, paths + paths[:2]), "--json"
    )
    assert code == 1 and "1 to 4" in doc["error"]["message"]
    code, doc = run_json(capsys, *common, "predict", "other", str(paths[0]), "--json")
    assert code == 1 and doc["error"]["code"] == "project_not_found"
    code, doc = run_json(capsys, *common, "predict", "shots", "--json")
    assert code == 2 and doc["error"]["code"] == "usage"


def test_predict_unreadable_image_scores_zero(capsys, setup, tmp_path: Path) -> None:  # noqa: ANN001
    common, paths = setup
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    capsys.readouterr()
    code = cli.main([*common, "predict", "shots", str(bad), str(paths[1]), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 0 and doc["selected_index"] == 1 and doc["scores"][0] == 0.0
    assert "image 1" in captured.err and "not an image" in captured.err
