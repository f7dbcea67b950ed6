"""Exports never write over a project's files, a source image, a model or a non-text file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from workbench import cli
from workbench.core.errors import InvalidInput, UnsafePath
from workbench.core.export_target import check_export_target
from workbench.core.project import ProjectStore


@pytest.fixture
def two(tmp_path: Path):
    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    for name in ("a", "b"):
        (tmp_path / f"src-{name}").mkdir()
        store.create(name, tmp_path / f"src-{name}")
    (tmp_path / "models").mkdir()
    return store, store.open("a"), store.open("b"), tmp_path


def test_other_projects_sources_and_models_are_refused(two) -> None:
    store, a, b, tmp = two
    for target in (b.db_path, b.root / "project.toml", tmp / "src-b" / "x.csv",
                   tmp / "models" / "m.csv", a.db_path, tmp / "src-a" / "y.csv"):  # fmt: skip
        with pytest.raises(UnsafePath):
            check_export_target(store, a, target, replace=True)
    assert (
        check_export_target(store, a, a.folder("exports") / "d.csv")
        == (a.folder("exports") / "d.csv").resolve()
    )


def test_images_folders_fifos_and_binary_files_are_refused(two) -> None:
    store, a, _, tmp = two
    out = tmp / "out"
    out.mkdir()
    Image.new("RGB", (4, 4)).save(out / "pic.jpg")
    (out / "blob.csv").write_bytes(b"\x00\x01binary")
    os.mkfifo(out / "pipe")
    with pytest.raises(UnsafePath, match="image"):
        check_export_target(store, a, out / "pic.jpg", replace=True)
    with pytest.raises(UnsafePath, match="not a text file"):
        check_export_target(store, a, out / "blob.csv", replace=True)
    with pytest.raises(InvalidInput, match="not a regular file"):
        check_export_target(store, a, out / "pipe", append=True)
    with pytest.raises(InvalidInput, match="regular file"):
        check_export_target(store, a, out, replace=True)
    (out / "old.csv").write_text("group_id,timestamp\n")
    with pytest.raises(InvalidInput, match="--overwrite"):
        check_export_target(store, a, out / "old.csv")
    assert check_export_target(store, a, out / "old.csv", replace=True)
    extra = tmp / "crops"
    extra.mkdir()
    with pytest.raises(UnsafePath):
        check_export_target(store, a, extra / "labels.txt", append=True, extra_protected=[extra])


def test_plates_export_cannot_replace_another_projects_database(two, capsys) -> None:
    store, _, b, _ = two
    before = b.db_path.read_bytes()
    code = cli.main(["--projects-dir", str(store.projects_dir), "--json", "plates", "export",
                     "a", "--format", "fast-plate-ocr", "--overwrite", str(b.db_path)])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["error"]["code"] == "unsafe_path"
    assert b.db_path.read_bytes() == before
