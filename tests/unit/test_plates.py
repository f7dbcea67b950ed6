"""Plate labels: text rules, contamination, the store, crop folders, import/export, the CLI."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pytest
from PIL import Image

from workbench.core.errors import InvalidInput, UnsafePath
from workbench.core.plates import (
    SKIP,
    LabelStore,
    Prelabel,
    check_text,
    clean_text,
    contamination,
    crop_folders,
    list_crops,
    plate_settings,
    register_crop_folder,
    suspicious_labels,
)
from workbench.core.plates_io import (
    export_fast_plate_ocr,
    export_labels_txt,
    export_paddleocr,
    import_labels,
)


def crop(path: Path, colour=(230, 230, 230)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 20), colour).save(path)
    return path


@pytest.fixture
def project(store, source_dir):
    return store.create("plates", source_dir)


@pytest.fixture
def crops_dir(tmp_path: Path) -> Path:
    """A camera's crop tree beside the project: output/crops/<day>/CAM1_trackN.jpg."""
    root = tmp_path / "output" / "crops"
    for day, tracks in (("2025-07-05", (1, 2, 10)), ("2025-07-06", (9, 3))):
        for n in tracks:
            crop(root / day / f"CAM1_track{n}.jpg")
    return root


def test_clean_text_keeps_only_upper_case_letters_and_digits() -> None:
    assert clean_text("ab-12 c") == "AB12C"
    assert clean_text("qs 9!") == "QS9"
    assert clean_text("Ärger-ß") == "RGER"
    assert check_text("QS123") == "QS123"
    assert check_text(SKIP) == SKIP
    for bad in ("", "ab1", "A-1", "X" * 33):
        with pytest.raises(InvalidInput):
            check_text(bad)


def test_contamination_flags_signs_not_plates() -> None:
    assert contamination("ABC123") == []
    assert contamination(SKIP) == []
    assert contamination("PARKING") == ["no digit", "sign word PARKING"]
    assert contamination("RESERVED1") == ["longer than 8 characters", "sign word RESERVED"]
    assert contamination("EXIT2") == ["sign word EXIT"]
    assert contamination("SUITE") == ["no digit", "sign word SUITE"]
    assert contamination("ABCD12345") == ["longer than 8 characters"]
    assert contamination("LOBBY", ["LOBBY"]) == ["no digit", "sign word LOBBY"]


def test_sign_words_come_from_project_toml(project) -> None:
    assert plate_settings(project).sign_words == ("RESERVED", "SUITE", "EXIT", "PARKING")
    toml = project.root / "project.toml"
    toml.write_text(toml.read_text() + '\n[plates]\nsign_words = ["lobby", "Exit"]\n')
    assert plate_settings(project).sign_words == ("LOBBY", "EXIT")
    toml.write_text(toml.read_text() + 'paddleocr_dir = "paddle"\n')
    assert plate_settings(project).paddleocr_dir == project.root / "paddle"


def test_store_commits_each_label_and_keeps_the_prelabel(project, conn, tmp_path) -> None:
    store = LabelStore(conn)
    path = crop(project.root / "plates" / "a.jpg")
    store.save(path, "ABC123", "prelabel", Prelabel("ABC123", 0.9, "rapidocr"))
    other = project.connect()  # another connection sees it at once: committed
    try:
        row = other.execute("SELECT * FROM plate_labels").fetchone()
    finally:
        other.close()
    assert (row["text"], row["source"], row["prelabel_engine"]) == (
        "ABC123",
        "prelabel",
        "rapidocr",
    )
    again = store.save(path, "ABC124", "corrected")
    assert again.prelabel_text == "ABC123" and again.prelabel_confidence == 0.9
    with pytest.raises(InvalidInput):
        store.save(path, "abc", "typed")
    with pytest.raises(InvalidInput):
        store.save(Path("relative.jpg"), "ABC", "typed")


def test_crops_are_listed_in_natural_order(project, conn, crops_dir) -> None:
    folder = register_crop_folder(project, conn, crops_dir)
    assert register_crop_folder(project, conn, crops_dir) == folder  # idempotent
    (crops_dir / "2025-07-05" / ".hidden.jpg").write_bytes(b"x")
    (crops_dir / "notes.txt").write_text("not a crop")
    names = [p.relative_to(folder).as_posix() for p in list_crops(crop_folders(project, conn))]
    assert names == ["2025-07-05/CAM1_track1.jpg", "2025-07-05/CAM1_track2.jpg",
                     "2025-07-05/CAM1_track10.jpg", "2025-07-06/CAM1_track3.jpg",
                     "2025-07-06/CAM1_track9.jpg"]  # fmt: skip


def test_a_crop_folder_may_not_hold_the_project(project, conn, tmp_path) -> None:
    with pytest.raises(UnsafePath):
        register_crop_folder(project, conn, project.root / "selected")
    with pytest.raises(UnsafePath):
        register_crop_folder(project, conn, tmp_path)  # holds the projects folder
    with pytest.raises(InvalidInput):
        register_crop_folder(project, conn, tmp_path / "nowhere")


def test_import_reports_bad_lines_by_number_and_imports_the_rest(project, conn, crops_dir) -> None:
    register_crop_folder(project, conn, crops_dir)
    broken = crops_dir / "2025-07-06" / "CAM1_track3.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    labels = crops_dir.parent / "labels.txt"
    labels.write_bytes(
        b"crops/2025-07-05/CAM1_track1.jpg\tABC123\n"  # 1 relative to the file's folder
        + f"{crops_dir}/2025-07-05/CAM1_track2.jpg\t__SKIP__\n".encode()  # 2 absolute
        + b"crops/2025-07-05/CAM1_track10.jpg\tQ\xe9S1\n"  # 3 not UTF-8
        + b"crops/missing.jpg\tXYZ9\n"  # 4 missing file
        + b"just one field\n"  # 5 malformed
        + b"\n"  # 6 blank: ignored
        + b"crops/2025-07-06/CAM1_track3.jpg\tDEF456\n"  # 7 unreadable crop
        + b"crops/2025-07-06/CAM1_track9.jpg\tqs-12\n"  # 8 normalized, warned
        + b"crops/2025-07-05/CAM1_track1.jpg\tABC124\r\n"  # 9 relabels line 1
    )
    report = import_labels(project, conn, labels)
    assert [e["line"] for e in report.errors] == [3, 4, 5, 7]
    assert "UTF-8" in report.errors[0]["reason"] and "not found" in report.errors[1]["reason"]
    assert {w["line"] for w in report.warnings} == {1, 8}
    stored = {p.rsplit("/", 1)[-1]: lab.text for p, lab in LabelStore(conn).all().items()}
    assert stored == {"CAM1_track1.jpg": "ABC124", "CAM1_track2.jpg": SKIP,
                      "CAM1_track9.jpg": "QS12"}  # fmt: skip
    assert {lab.source for lab in LabelStore(conn).all().values()} == {"imported"}
    assert report.imported == 3

    LabelStore(conn).save(crops_dir / "2025-07-05" / "CAM1_track2.jpg", "TYPED1", "typed")
    again = import_labels(project, conn, labels)
    assert (again.imported, again.unchanged, again.kept) == (0, 2, 1)
    assert LabelStore(conn).get(crops_dir / "2025-07-05" / "CAM1_track2.jpg").text == "TYPED1"
    assert import_labels(project, conn, labels, replace=True).imported == 1


def test_import_refuses_crops_outside_the_projects_folders(project, conn, tmp_path) -> None:
    outside = crop(tmp_path / "elsewhere" / "x.jpg")
    labels = tmp_path / "labels.txt"
    labels.write_text(f"{outside}\tABC1\n")
    report = import_labels(project, conn, labels)
    assert report.imported == 0 and "register its folder" in report.errors[0]["reason"]
    folder = import_labels(project, conn, outside.parent)  # registering the folder
    assert folder.crops_found == 1
    assert import_labels(project, conn, labels).imported == 1


def test_a_folder_import_registers_it_and_reads_its_labels_txt(project, conn, crops_dir) -> None:
    (crops_dir / "labels.txt").write_text("path\ttext\n2025-07-05/CAM1_track1.jpg\tAB12\n")
    report = import_labels(project, conn, crops_dir)
    assert report.crops_found == 5 and report.imported == 1 and not report.errors


def test_labels_txt_export_appends_and_never_duplicates(project, conn, crops_dir, tmp_path) -> None:
    register_crop_folder(project, conn, crops_dir)
    store = LabelStore(conn)
    a, b, c = (crops_dir / "2025-07-05" / f"CAM1_track{n}.jpg" for n in (1, 2, 10))
    store.save(a.resolve(), "AAA111", "typed")
    store.save(b.resolve(), SKIP, "typed")
    out = tmp_path / "labels.txt"
    out.write_text(f"/old/crop.jpg\tOLD1\n{a.resolve()}\tDIFFERENT")  # no final newline
    report = export_labels_txt(conn, out)
    assert (report.written, report.already_there, report.differing) == (1, 1, [str(a.resolve())])
    store.save(c.resolve(), "CCC333", "typed")
    assert export_labels_txt(conn, out).written == 1
    assert export_labels_txt(conn, out).written == 0
    assert out.read_text().splitlines() == [
        "/old/crop.jpg\tOLD1", f"{a.resolve()}\tDIFFERENT", f"{b.resolve()}\t{SKIP}",
        f"{c.resolve()}\tCCC333"]  # fmt: skip


def test_fast_plate_ocr_csv_and_paddleocr_folder(project, conn, crops_dir, tmp_path) -> None:
    register_crop_folder(project, conn, crops_dir)
    store = LabelStore(conn)
    crops = list_crops([crops_dir.resolve()])
    for i, path in enumerate(crops):
        store.save(path, SKIP if i == 0 else f"AB{i}C", "typed")
    out = tmp_path / "ds" / "train.csv"
    out.parent.mkdir()
    export_fast_plate_ocr(conn, out)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["image_path", "plate_text"] and len(rows) == len(crops)
    assert all((out.parent / r[0]).resolve().is_file() for r in rows[1:])
    with pytest.raises(InvalidInput):
        export_fast_plate_ocr(conn, out)
    # the CSV imports back (relative to its folder) without a change
    assert import_labels(project, conn, out).unchanged == len(crops) - 1

    paddle = tmp_path / "paddle"
    report = export_paddleocr(conn, paddle)
    assert report.written == len(crops) - 1
    gt = [line.split("\t") for split in ("train", "test")
          for line in (paddle / f"rec_gt_{split}.txt").read_text().splitlines()]  # fmt: skip
    assert len(gt) == len(crops) - 1
    assert all((paddle / rel).is_file() and text.startswith("AB") for rel, text in gt)
    assert (paddle / "plate_dict.txt").read_text().split() == list(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    )
    with pytest.raises(InvalidInput):
        export_paddleocr(conn, paddle)


def test_suspicious_labels(conn, project) -> None:
    store = LabelStore(conn)
    for name, text in (("a", "ABC123"), ("b", "PARKING"), ("c", SKIP), ("d", "EXIT12")):
        store.save(crop(project.root / "plates" / f"{name}.jpg"), text, "typed")
    found = suspicious_labels(store.all().values())
    assert [(s.image_path.name, s.text) for s in found] == [
        ("b.jpg", "PARKING"),
        ("d.jpg", "EXIT12"),
    ]


# -- the command line --------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    """`workbench ...` with the plates commands registered; returns (exit code, stdout)."""
    main_module = importlib.import_module("workbench.cli.main")  # the module, not main()
    from workbench.cli import plates_cmds

    if plates_cmds not in main_module.COMMAND_MODULES:
        monkeypatch.setattr(main_module, "COMMAND_MODULES",
                            (*main_module.COMMAND_MODULES, plates_cmds))  # fmt: skip

    def run(*argv: str) -> tuple[int, str]:
        code = main_module.main(["--projects-dir", str(tmp_path / "projects"), *argv])
        return code, capsys.readouterr().out

    return run


def test_cli_import_check_export(cli, project, crops_dir, tmp_path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text(f"{crops_dir}/2025-07-05/CAM1_track1.jpg\tPARKING\n"
                      f"{crops_dir}/2025-07-05/CAM1_track2.jpg\tAB123\nbad line\n")  # fmt: skip
    code, out = cli("plates", "import", "plates", str(crops_dir), "--json")
    assert code == 0 and json.loads(out)["crops_found"] == 5
    code, out = cli("plates", "import", "plates", str(labels), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["imported"] == 2 and doc["errors"] == [
        {"line": 3, "reason": "expected PATH<TAB>TEXT"}]  # fmt: skip
    code, out = cli("plates", "check", "plates", "--json")
    doc = json.loads(out)
    assert code == 1 and [s["text"] for s in doc["suspicious"]] == ["PARKING"]
    assert doc["suspicious"][0]["reasons"] == ["no digit", "sign word PARKING"]
    target = tmp_path / "out" / "labels.txt"
    target.parent.mkdir()
    code, out = cli("plates", "export", "plates", "--format", "labels-txt", str(target), "--json")
    assert code == 0 and json.loads(out)["written"] == 2
    code, out = cli("plates", "export", "plates", "--format", "labels-txt",
                    str(project.root / "plates.db"), "--json")  # fmt: skip
    assert code == 1 and json.loads(out)["error"]["code"] == "unsafe_path"
    code, out = cli("plates", "export", "plates", "--format", "fast-plate-ocr",
                    str(tmp_path / "out" / "x.csv"), "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["written"] == 2
