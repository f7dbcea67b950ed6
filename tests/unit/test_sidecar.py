"""`.decision` sidecars: atomic writes, strict reads that never touch the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from workbench.core import sidecar as sidecar_mod
from workbench.core.crops import CropBox
from workbench.core.errors import InvalidInput
from workbench.core.sidecar import (
    SIDECAR_SUFFIX,
    Sidecar,
    SidecarError,
    find_sidecars,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

GID = "p_group_20251021T234530Z_batch001_img002"


@pytest.fixture
def crop_dir(project) -> Path:
    return project.folder("crop")


def test_sidecar_path():
    assert SIDECAR_SUFFIX == ".decision"
    assert sidecar_path(Path("/x/crop/a.png")) == Path("/x/crop/a.decision")
    assert sidecar_path(Path("b.tar.png")) == Path("b.tar.decision")


@pytest.mark.parametrize(
    "sidecar",
    [
        Sidecar(GID, "p", True),
        Sidecar(GID, "p", True, CropBox(0.1, 0.0, 0.9, 0.8)),
        Sidecar("legacy shape 42", "p", False, None, "a.png"),
    ],
)
def test_round_trip(project, crop_dir, sidecar):
    image = crop_dir / "a.png"
    image.write_bytes(b"png")
    path = write_sidecar(image, sidecar)
    assert path == crop_dir / "a.decision"
    got = read_sidecar(path, project=project)
    assert got.group_id == sidecar.group_id
    assert got.project_id == "p"
    assert got.needs_crop is sidecar.needs_crop
    assert got.ai_crop_coords == sidecar.ai_crop_coords
    assert got.image == "a.png"  # filled in from the image when not given
    assert read_sidecar(path) == got


def test_written_json_is_seed_002_shaped(crop_dir):
    path = write_sidecar(crop_dir / "a.png", Sidecar(GID, "p", True, CropBox(0.1, 0.1, 0.9, 0.9)))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {
        "group_id": GID,
        "project_id": "p",
        "needs_crop": True,
        "ai_crop_coords": [0.1, 0.1, 0.9, 0.9],
        "image": "a.png",
    }


def test_write_is_atomic_and_never_replaces(crop_dir):
    image = crop_dir / "a.png"
    write_sidecar(image, Sidecar(GID, "p", True))
    with pytest.raises(FileExistsError):
        write_sidecar(image, Sidecar("other", "p", False))
    assert sorted(p.name for p in crop_dir.iterdir()) == ["a.decision"]  # no temp files left
    assert read_sidecar(crop_dir / "a.decision").group_id == GID


def test_write_refuses_a_mismatched_image(crop_dir):
    with pytest.raises(InvalidInput, match="b.png"):
        write_sidecar(crop_dir / "a.png", Sidecar(GID, "p", True, image="b.png"))
    assert not (crop_dir / "a.decision").exists()


def test_write_refuses_to_overwrite_the_image_itself(crop_dir):
    image = crop_dir / "odd.decision"
    image.write_bytes(b"image bytes")
    with pytest.raises(InvalidInput):
        write_sidecar(image, Sidecar(GID, "p", True))
    assert image.read_bytes() == b"image bytes"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(group_id="", project_id="p", needs_crop=True),
        dict(group_id="  ", project_id="p", needs_crop=True),
        dict(group_id="a\nb", project_id="p", needs_crop=True),
        dict(group_id=5, project_id="p", needs_crop=True),
        dict(group_id=GID, project_id="Bad Name", needs_crop=True),
        dict(group_id=GID, project_id="p", needs_crop=1),
        dict(group_id=GID, project_id="p", needs_crop=True, ai_crop_coords=[0.1, 0.1, 0.9, 0.9]),
        dict(group_id=GID, project_id="p", needs_crop=True, image="../a.png"),
        dict(group_id=GID, project_id="p", needs_crop=True, image="sub/a.png"),
        dict(group_id=GID, project_id="p", needs_crop=True, image=""),
    ],
)
def test_constructor_rejects_bad_values(kwargs):
    with pytest.raises(InvalidInput):
        Sidecar(**kwargs)


# -- strict reading: every malformed file is rejected and left exactly as it was --------


def _valid() -> dict:
    return {"group_id": GID, "project_id": "p", "needs_crop": True}


MALFORMED: dict[str, bytes] = {
    "not json": b"group_id = x",
    "empty": b"",
    "truncated": b'{"group_id": "x", ',
    "array": json.dumps([_valid()]).encode(),
    "string": b'"hello"',
    "null": b"null",
    "missing group_id": json.dumps({"project_id": "p", "needs_crop": True}).encode(),
    "missing project_id": json.dumps({"group_id": GID, "needs_crop": True}).encode(),
    "missing needs_crop": json.dumps({"group_id": GID, "project_id": "p"}).encode(),
    "extra key": json.dumps({**_valid(), "delete": True}).encode(),
    "duplicate key": b'{"group_id": "a", "group_id": "b", "project_id": "p", "needs_crop": true}',
    "group_id int": json.dumps({**_valid(), "group_id": 7}).encode(),
    "group_id empty": json.dumps({**_valid(), "group_id": ""}).encode(),
    "project_id null": json.dumps({**_valid(), "project_id": None}).encode(),
    "project_id bad": json.dumps({**_valid(), "project_id": "../p"}).encode(),
    "needs_crop string": json.dumps({**_valid(), "needs_crop": "yes"}).encode(),
    "needs_crop int": json.dumps({**_valid(), "needs_crop": 1}).encode(),
    "crop not list": json.dumps({**_valid(), "ai_crop_coords": "0.1,0.1,0.9,0.9"}).encode(),
    "crop three": json.dumps({**_valid(), "ai_crop_coords": [0.1, 0.1, 0.9]}).encode(),
    "crop inverted": json.dumps({**_valid(), "ai_crop_coords": [0.9, 0.1, 0.1, 0.9]}).encode(),
    "crop range": json.dumps({**_valid(), "ai_crop_coords": [0.1, 0.1, 1.9, 0.9]}).encode(),
    "crop strings": json.dumps({**_valid(), "ai_crop_coords": ["0", "0", "1", "1"]}).encode(),
    "crop bools": json.dumps({**_valid(), "ai_crop_coords": [False, False, True, True]}).encode(),
    "crop NaN": b'{"group_id": "g", "project_id": "p", "needs_crop": true, '
    b'"ai_crop_coords": [NaN, 0, 1, 1]}',
    "image traversal": json.dumps({**_valid(), "image": "../../etc/passwd"}).encode(),
    "image dotdot": json.dumps({**_valid(), "image": ".."}).encode(),
    "image folder": json.dumps({**_valid(), "image": "sub/a.png"}).encode(),
    "image backslash": json.dumps({**_valid(), "image": "..\\a.png"}).encode(),
    "image absolute": json.dumps({**_valid(), "image": "/tmp/a.png"}).encode(),
    "image int": json.dumps({**_valid(), "image": 3}).encode(),
    "foreign project": json.dumps({**_valid(), "project_id": "mojo3"}).encode(),
    "oversize": json.dumps({**_valid(), "image": "a" * (70 * 1024)}).encode(),
    "non-utf8": b'{"group_id": "caf\xe9", "project_id": "p", "needs_crop": true}',
    "utf16": json.dumps(_valid()).encode("utf-16"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sidecar_is_rejected_and_left_in_place(project, crop_dir, case):
    path = crop_dir / "a.decision"
    data = MALFORMED[case]
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(SidecarError) as info:
        read_sidecar(path, project=project)
    err = info.value
    assert isinstance(err, InvalidInput)
    assert err.path == path
    assert err.reason and err.reason.endswith(".")
    assert str(path) in err.message
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in crop_dir.iterdir()) == ["a.decision"]


def test_foreign_project_only_matters_when_a_project_is_given(project, crop_dir):
    path = crop_dir / "a.decision"
    path.write_text(json.dumps({**_valid(), "project_id": "mojo3"}))
    assert read_sidecar(path).project_id == "mojo3"
    with pytest.raises(SidecarError, match="foreign"):
        read_sidecar(path, project=project)


def test_sidecar_outside_the_project_folder_is_rejected(project, source_dir):
    # The source folder is allowed for images, but sidecars live only in the project.
    path = source_dir / "a.decision"
    path.write_text(json.dumps(_valid()))
    with pytest.raises(SidecarError, match="outside"):
        read_sidecar(path, project=project)
    traversal = project.root / "crop" / ".." / ".." / ".." / "source" / "a.decision"
    with pytest.raises(SidecarError, match="outside"):
        read_sidecar(traversal, project=project)
    assert path.exists()


def test_symlinked_sidecar_is_rejected(project, crop_dir, tmp_path):
    target = crop_dir / "real.decision"
    target.write_text(json.dumps(_valid()))
    link = crop_dir / "a.decision"
    link.symlink_to(target)
    with pytest.raises(SidecarError, match="link"):
        read_sidecar(link, project=project)
    assert link.is_symlink() and target.exists()


def test_missing_folder_and_wrong_suffix(project, crop_dir):
    with pytest.raises(SidecarError, match="does not exist"):
        read_sidecar(crop_dir / "nope.decision")
    other = crop_dir / "a.json"
    other.write_text(json.dumps(_valid()))
    with pytest.raises(SidecarError):
        read_sidecar(other)
    (crop_dir / "dir.decision").mkdir()
    with pytest.raises(SidecarError, match="regular file"):
        read_sidecar(crop_dir / "dir.decision")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_rejected_without_blocking(crop_dir):
    fifo = crop_dir / "a.decision"
    os.mkfifo(fifo)
    with pytest.raises(SidecarError, match="regular file"):
        read_sidecar(fifo)


def test_size_limit_is_checked(crop_dir, monkeypatch):
    monkeypatch.setattr(sidecar_mod, "MAX_SIDECAR_BYTES", 100)
    path = crop_dir / "a.decision"
    path.write_text(json.dumps({**_valid(), "image": "a" * 200 + ".png"}))
    with pytest.raises(SidecarError, match="bytes"):
        read_sidecar(path)


def test_utf8_bom_and_null_optionals_are_accepted(crop_dir):
    path = crop_dir / "a.decision"
    payload = {**_valid(), "ai_crop_coords": None, "image": None}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(payload).encode())
    got = read_sidecar(path)
    assert got.ai_crop_coords is None and got.image is None


def test_seed_002_sidecar_without_image_reads(project, crop_dir):
    # The seed's own example: three keys only.
    path = crop_dir / "20250705_221332_stage3_enhanced.decision"
    path.write_text(
        '{"group_id": "mojo3_group_20251021_234530", "project_id": "p", "needs_crop": true}'
    )
    got = read_sidecar(path, project=project)
    assert got == Sidecar("mojo3_group_20251021_234530", "p", True)


# -- finding sidecars ---------------------------------------------------------------------


def test_find_sidecars(crop_dir, tmp_path):
    for name in ("b.png", "a.png", "c.png"):
        write_sidecar(crop_dir / name, Sidecar(GID, "p", True))
    (crop_dir / "b.png").write_bytes(b"png")
    (crop_dir / "notes.txt").write_text("x")
    (crop_dir / "sub.decision").mkdir()
    (crop_dir / ".x.decision.tmp-123").write_text("{}")  # a write in progress
    (crop_dir / "link.decision").symlink_to(crop_dir / "a.decision")
    found = list(find_sidecars(crop_dir))
    assert [p.name for p in found] == ["a.decision", "b.decision", "c.decision"]
    assert list(find_sidecars(tmp_path / "missing")) == []
    assert list(find_sidecars(crop_dir / "notes.txt")) == []


def test_reading_never_modifies_files(project, crop_dir):
    path = write_sidecar(crop_dir / "a.png", Sidecar(GID, "p", True))
    before = (path.read_bytes(), path.stat().st_mtime_ns, os.listdir(crop_dir))
    for _ in range(3):
        read_sidecar(path, project=project)
    assert (path.read_bytes(), path.stat().st_mtime_ns, os.listdir(crop_dir)) == before
