"""End to end: a project whose user keeps the most colourful copy and crops around the subject.

After `workbench train all`, the ranker must have learned the colour preference (the
sharpness heuristic does not share it) and the crop proposer the crop; `workbench
predict` must serve both. A cancel and a kill mid-training keep nothing and leave the
champion alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.cli.main import main
from workbench.core.project import ProjectStore
from workbench.ml.jobs import JobConfig, Progress, run_job
from workbench.ml.registry import SPLIT_FILE, STAGING_PREFIX, Registry
from workbench.ml.training.data import ranker_groups
from workbench.ml.training.synthetic import make_rule_project

pytestmark = pytest.mark.slow
GROUPS = 560
NAME = "rule"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The generated project after one `workbench train all --json`, and its output."""
    root = tmp_path_factory.mktemp("training")
    store = ProjectStore(root / "projects", root / "models")
    project = make_rule_project(store, NAME, GROUPS, seed=7)
    # A fixed salt makes the held-out split (and so the figures) the same on every run.
    project.models_dir.mkdir(parents=True)
    (project.models_dir / SPLIT_FILE).write_text(json.dumps({"salt": "e2e", "fraction": 0.2}))
    argv = ["--projects-dir", str(root / "projects"), "--models-dir", str(root / "models")]
    return root, project, argv


def _cli(argv: list[str], capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture(scope="module")
def train_all(trained):
    root, project, argv = trained
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main([*argv, "train", "all", NAME, "--json"])
    return code, json.loads(buffer.getvalue())


def test_train_all_learns_the_users_rule(trained, train_all):
    _, project, _ = trained
    code, doc = train_all
    results = {r["kind"]: r for r in doc["results"]}
    assert code == 0, doc
    assert set(results) == {"ranker", "crop", "smartcrop", "ocr"}

    ranker = results["ranker"]
    assert ranker["status"] == "promoted", ranker
    assert ranker["metrics"]["n"] >= 100  # held-out groups
    heuristic = ranker["baselines"]["heuristic"]["top1"]
    assert ranker["metrics"]["top1"] >= 0.8
    assert ranker["metrics"]["top1"] >= heuristic + 0.2
    assert ranker["metrics"]["pairwise"] > ranker["baselines"]["random"]["pairwise"]

    crop = results["crop"]
    assert crop["status"] == "promoted", crop
    assert crop["metrics"]["n"] >= 100
    assert crop["metrics"]["mean_iou"] >= crop["baselines"]["smartcrop"]["mean_iou"] + 0.1
    assert crop["metrics"]["mean_iou"] > crop["baselines"]["whole_image"]["mean_iou"]

    assert results["smartcrop"]["status"] in ("promoted", "kept")
    assert results["smartcrop"]["version"] == "v1"
    # Every trained version is complete on disk, with the data hash and the config.
    registry = Registry(project.models_dir)
    for kind in ("ranker", "crop"):
        (info,) = registry.versions(kind)
        assert (info.path / "model.onnx").is_file() and (info.path / "weights.pt").is_file()
        assert len(info.data["data_hash"]) == 64
        assert info.config["kind"] == kind
        assert registry.champion(kind) == "v1"
    # OCR has no labels in this project: reported, never a failure of the others.
    assert results["ocr"]["status"] == "not_ready", results["ocr"]


def test_predict_serves_the_trained_champions(trained, train_all, capsys):
    _, project, argv = trained
    conn = project.connect()
    split = Registry(project.models_dir).split()
    held = [g for g in ranker_groups(conn, split)[0] if g.held_out][:25]
    conn.close()
    agree = 0
    for group in held:
        code, doc = _cli([*argv, "predict", NAME, *map(str, group.paths)], capsys)
        assert code == 0
        assert doc["models"] == {"ranker": "v1", "crop": "v1"}
        agree += doc["selected_index"] == group.user_index
        assert abs(sum(doc["scores"]) - 1.0) < 1e-6
    assert agree >= 0.8 * len(held)


def test_models_lists_versions_and_rolls_back(trained, train_all, capsys):
    _, project, argv = trained
    code, doc = _cli([*argv, "models", NAME], capsys)
    assert code == 0
    assert doc["models"]["ranker"]["champion"] == "v1"
    assert doc["models"]["ranker"]["readiness"]["ready"] is True
    code, doc = _cli([*argv, "models", NAME, "rollback", "crop"], capsys)
    assert code == 0 and doc["champion"] is None
    code, doc = _cli([*argv, "predict", NAME, str(next(project.source.glob("*.png")))], capsys)
    assert doc["models"]["crop"] != "v1"
    code, doc = _cli([*argv, "models", NAME, "promote", "crop", "v1"], capsys)
    assert code == 0 and doc["champion"] == "v1"
    code, doc = _cli([*argv, "models", NAME, "promote", "crop", "v9"], capsys)
    assert code == 1 and "v9" in doc["error"]["message"]


def _config(project, kind: str, **kw) -> JobConfig:
    return JobConfig(kind=kind, project=project.name, projects_dir=str(project.root.parent),
                     models_dir=str(project.models_root), **kw)  # fmt: skip


def _snapshot(project) -> tuple:
    registry = Registry(project.models_dir)
    kinds = ("ranker", "crop")
    return tuple(
        (registry.champion(k), tuple(v.version for v in registry.versions(k))) for k in kinds
    )


def test_cancel_mid_training_keeps_nothing(trained, train_all):
    _, project, _ = trained
    before = _snapshot(project)
    seen: list[Progress] = []

    def stop() -> bool:
        return sum(p.stage == "training" for p in seen) >= 3

    for kind in ("ranker", "crop"):
        seen.clear()
        result = run_job(_config(project, kind, epochs=2000), seen.append, stop)
        assert result.status == "cancelled", result
        assert any(p.stage == "training" for p in seen)
    assert _snapshot(project) == before
    leftovers = [p for p in project.models_dir.rglob(f"{STAGING_PREFIX}*")]
    assert leftovers == []


def test_killed_training_leaves_no_partial_version(trained, train_all):
    _, project, _ = trained
    before = _snapshot(project)
    config = _config(project, "ranker", epochs=10_000).to_dict()
    child = subprocess.Popen(
        [sys.executable, "-m", "workbench.ml.jobrunner", json.dumps(config)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 120
        for line in child.stdout:
            item = json.loads(line)
            if item.get("type") == "progress" and item["stage"] == "training":
                break
            assert time.monotonic() < deadline
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert _snapshot(project) == before
    registry = Registry(project.models_dir)
    registry.clean_staging("ranker")  # the next training's start removes the dead run's folder
    assert [
        p for p in (project.models_dir / "ranker").iterdir() if p.name.startswith(".staging")
    ] == []
    # And the next run works.
    result = run_job(_config(project, "ranker", epochs=30, promote=False))
    assert result.status == "kept" and result.version == "v2"
    assert Registry(project.models_dir).champion("ranker") == "v1"
