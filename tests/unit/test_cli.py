"""The headless CLI: one JSON document under --json, exit codes 0/1/2, every command."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from workbench import cli
from workbench.core.crops import CropBox
from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice
from workbench.core.project import ProjectStore


def make_source(folder: Path, groups: int = 3, per_group: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 7, 5, 22, 0, 0)
    for g in range(groups):
        for i in range(per_group):
            stamp = (start + timedelta(minutes=5 * g, seconds=2 * i)).strftime("%Y%m%d_%H%M%S")
            Image.new("RGB", (80 + i, 60), (40 * g, 90, 20 * i)).save(folder / f"{stamp}_shot.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[list[str], Path]:
    source = make_source(tmp_path / "photos")
    common = [
        "--projects-dir",
        str(tmp_path / "projects"),
        "--models-dir",
        str(tmp_path / "models"),
    ]
    return common, source


def test_init_status_groups(capsys, dirs) -> None:
    common, source = dirs
    code, data = run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    assert code == 0
    assert data["scan"]["groups"] == 3 and data["scan"]["images"] == 9
    reasons = {s["reason"].split(":")[0] for s in data["scan"]["skipped"]}
    assert len(data["scan"]["skipped"]) == 2 and reasons
    assert (Path(data["path"]) / "crop_auto").is_dir()

    # --json also works after the command, and global options before it
    code, status = run(capsys, *common, "status", "trip", "--json")
    assert code == 0
    assert status["groups"] == 3 and status["undecided"] == 3 and status["skipped_files"] == 2

    code, groups = run(capsys, "status", "trip", *common, "--json")
    assert code == 0 and groups["groups"] == 3

    code, listing = run(capsys, *common, "groups", "trip", "--json")
    assert code == 0
    assert [len(g["images"]) for g in listing["groups"]] == [3, 3, 3]
    assert all(Path(i["path"]).is_file() for g in listing["groups"] for i in g["images"])


def test_human_output_is_not_json(capsys, dirs) -> None:
    common, source = dirs
    assert cli.main([*common, "init", "trip", "--source", str(source)]) == 0
    out = capsys.readouterr().out
    assert "Project 'trip' created" in out and "skipped" in out


def test_errors_are_one_json_document_with_exit_1(capsys, dirs) -> None:
    common, source = dirs
    code, data = run(capsys, *common, "status", "nope", "--json")
    assert code == 1 and data["error"]["code"] == "project_not_found"
    assert "workbench init nope" in data["error"]["message"]

    code, data = run(capsys, *common, "init", "Bad Name", "--source", str(source), "--json")
    assert code == 1 and data["error"]["code"] == "invalid_input"

    code, data = run(capsys, *common, "init", "trip", "--source", str(source / "missing"), "--json")
    assert code == 1 and "does not exist" in data["error"]["message"]


def test_usage_errors_exit_2(capsys, dirs) -> None:
    common, _ = dirs
    code, data = run(capsys, *common, "frobnicate", "--json")
    assert code == 2 and data["error"]["code"] == "usage"
    assert cli.main([*common, "init", "x"]) == 2  # --source missing
    assert "usage" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_locked_project_refuses_writes_but_allows_reads(capsys, dirs) -> None:
    common, source = dirs
    run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    store = ProjectStore(Path(common[1]), Path(common[3]))
    with store.open("trip").lock("gui"):
        code, data = run(capsys, *common, "scan", "trip", "--json")
        assert code == 1 and data["error"]["code"] == "project_locked"
        assert "'gui'" in data["error"]["message"]
        code, _ = run(capsys, *common, "status", "trip", "--json")
        assert code == 0


def _finalize_all(store: ProjectStore) -> None:
    project = store.open("trip")
    conn = project.connect()
    pks = [r[0] for r in conn.execute("SELECT id FROM groups ORDER BY id")]
    crop = CropBox(0.1, 0.1, 0.9, 0.9)
    stage_choice(conn, pks[0], StagedChoice("approve", 0, ai_selected_index=0, ai_crop=crop))
    stage_choice(conn, pks[1], StagedChoice("crop", 1, ai_selected_index=0, ai_crop=crop))
    stage_choice(conn, pks[2], StagedChoice("reject", 0, ai_selected_index=2))
    finalize_groups(project, conn, pks)
    conn.close()


def test_report_export_import_undo(capsys, dirs, tmp_path) -> None:
    common, source = dirs
    run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    store = ProjectStore(Path(common[1]), Path(common[3]))
    _finalize_all(store)

    code, rep = run(capsys, *common, "report", "trip", "--json")
    assert code == 0
    assert rep["decisions"] == 3
    assert rep["by_action"] == {"approve": 1, "crop": 1, "reject": 1}
    assert rep["selection_accuracy"] == pytest.approx(0.5)  # approve right, crop wrong, reject n/a
    assert rep["incomplete_crops"] == 1

    out = tmp_path / "decisions.csv"
    code, data = run(capsys, *common, "decisions", "export", "trip", str(out), "--json")
    assert code == 0 and data["exported"] == 3
    code, data = run(capsys, *common, "decisions", "export", "trip", str(out), "--json")
    assert code == 1 and "--overwrite" in data["error"]["message"]
    code, data = run(
        capsys, *common, "decisions", "export", "trip", str(out), "--overwrite", "--json"
    )
    assert code == 0
    rows = list(csv.reader(out.open()))
    assert len(rows) == 4 and rows[0][0] == "group_id" and rows[0][-1] == "ai_crop_accepted"

    # importing the same rows again is refused whole: duplicate group ids, by line
    code, data = run(capsys, *common, "decisions", "import", "trip", str(out), "--json")
    assert code == 1
    assert {e["line"] for e in data["error"]["errors"]} == {2, 3, 4}

    code, data = run(capsys, *common, "undo", "trip", "--json")
    assert code == 0 and len(data["undone"]) == 1
    code, status = run(capsys, *common, "status", "trip", "--json")
    assert status["decisions"] == 0 and status["staged"] == 3
    assert all(v == 0 for v in status["folders"].values())

    # into a fresh project the export imports cleanly
    run(capsys, *common, "init", "trip2", "--source", str(source), "--json")
    text = out.read_text().replace("trip_group_", "trip2_group_").replace(",trip,", ",trip2,")
    (tmp_path / "t2.csv").write_text(text)
    code, data = run(
        capsys, *common, "decisions", "import", "trip2", str(tmp_path / "t2.csv"), "--json"
    )
    assert code == 0 and data["imported"] == 3


def test_models_dir_defaults_beside_projects(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_MODELS", raising=False)
    store = ProjectStore(tmp_path / "p")
    assert store.models_dir == (tmp_path / "models").resolve()
    monkeypatch.setenv("WORKBENCH_PROJECTS", str(tmp_path / "env-projects"))
    assert ProjectStore().projects_dir == (tmp_path / "env-projects").resolve()


def test_export_never_targets_project_or_source_files(capsys, dirs) -> None:
    common, source = dirs
    _, init = run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    root = Path(init["path"])
    for target in (root / "trip.db", root / "project.toml", source / "x.csv"):
        before = target.read_bytes() if target.exists() else None
        code, data = run(
            capsys, *common, "decisions", "export", "trip", str(target), "--overwrite", "--json"
        )
        assert code == 1 and data["error"]["code"] == "unsafe_path"
        assert (target.read_bytes() if target.exists() else None) == before
    code, data = run(
        capsys, *common, "decisions", "export", "trip", str(root / "exports" / "d.csv"), "--json"
    )
    assert code == 0


def test_bad_numbers_are_usage_errors_and_create_nothing(capsys, dirs, tmp_path) -> None:
    common, source = dirs
    code, data = run(
        capsys, *common, "init", "b", "--source", str(source), "--batch-size", "0", "--json"
    )
    assert code == 2 and data["error"]["code"] == "usage"
    assert not (tmp_path / "projects" / "b").exists()
    code, data = run(capsys, *common, "undo", "b", "--count", "99999999999999999999", "--json")
    assert code == 2


def test_missing_database_is_reported_not_recreated(capsys, dirs) -> None:
    common, source = dirs
    _, init = run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    db_file = Path(init["database"])
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    code, data = run(capsys, *common, "status", "trip", "--json")
    assert code == 1 and data["error"]["code"] == "database_missing"
    assert not db_file.exists()


def test_damaged_database_is_a_sentence(capsys, dirs) -> None:
    common, source = dirs
    _, init = run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    db_file = Path(init["database"])
    db_file.write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    code, data = run(capsys, *common, "status", "trip", "--json")
    assert code == 1 and data["error"]["code"] == "database_damaged"
    assert "backup" in data["error"]["message"]


def test_source_inside_another_project_is_refused(capsys, dirs) -> None:
    common, source = dirs
    _, init = run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    code, data = run(
        capsys, *common, "init", "thief", "--source", str(Path(init["path"]) / "selected"), "--json"
    )
    assert code == 1 and "projects folder" in data["error"]["message"]


def test_doctor_exit_code_follows_its_findings(capsys, dirs) -> None:
    common, source = dirs
    run(capsys, *common, "init", "trip", "--source", str(source), "--json")
    code, data = run(capsys, *common, "doctor", "trip", "--json")
    assert code == 0 and data["clean"] is True
    store = ProjectStore(Path(common[1]), Path(common[3]))
    _finalize_all(store)
    moved = next((Path(common[1]) / "trip" / "delete_staging").iterdir())
    moved.rename(moved.with_name("elsewhere.bin"))
    code, data = run(capsys, *common, "doctor", "trip", "--json")
    assert code == 1 and data["clean"] is False
    assert "missing_file" in {f["kind"] for f in data["findings"]}


def test_help_and_version_under_json(capsys) -> None:
    code, data = run(capsys, "--version", "--json")
    assert code == 0 and data["version"]
    code, data = run(capsys, "status", "-h", "--json")
    assert code == 0 and "usage" in data["help"]


def test_saving_settings_keeps_sections_it_does_not_know(tmp_path: Path) -> None:
    store = ProjectStore(tmp_path / "p", tmp_path / "m")
    (tmp_path / "src").mkdir()
    project = store.create("keep", tmp_path / "src")
    toml = project.root / "project.toml"
    toml.write_text(toml.read_text() + '\n[plates]\nsign_words = ["EXIT", "VALET"]\n')
    project = store.open("keep")
    project.settings.batch_size = 7
    project.save_settings()
    text = toml.read_text()
    assert "VALET" in text and "batch_size = 7" in text
