"""Kill a finalize (or an undo) at a spread sample of the journal steps (every kind of step, both commit points, first and last); recovery must lose and duplicate nothing.

Each case prepares a project of 6 groups with companions (36 journaled moves and 3
sidecar writes), runs the operation in a child process that sends itself SIGKILL at the
K-th step, then recovers the way start-up does and checks the files, rows and sidecars.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import crash_worker as worker
from workbench.core import doctor
from workbench.core.fileops import FileJournal
from workbench.core.project import ROUTING_FOLDERS
from workbench.core.sidecar import read_sidecar, sidecar_path

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

# Kill points per mode, spread over every step; finalize-xdev moves by verified copies.
SAMPLES = {"finalize": 60, "undo": 60, "finalize-xdev": 30}
ROOT = Path(__file__).resolve().parents[2]


def run_worker(root: Path, mode: str, k: int) -> subprocess.CompletedProcess[str]:
    args = [str(root / "projects"), worker.NAME, mode, str(k)]
    command = [sys.executable, str(Path(worker.__file__)), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def prepared(root: Path, mode: str) -> dict[str, str]:
    made = worker.prepare(root)
    if mode == "undo":
        worker.finalize_all(root / "projects")
    return made


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The step names of an uninterrupted run of each mode."""
    out = {}
    for mode in SAMPLES:
        root = tmp_path_factory.mktemp(f"dry-{mode}")
        prepared(root, mode)
        done = run_worker(root, mode, 0)
        assert done.returncode == 0, done.stderr
        out[mode] = json.loads(done.stdout)["names"]
    return out


def kill_points(names: list[str], samples: int) -> list[int]:
    """Every step 1..N when there are few; else `samples` of them: the commit points, the
    first and last entries in full, and the rest spread evenly."""
    total = len(names)
    if total <= samples:
        return list(range(1, total + 1))
    special = {k for k, name in enumerate(names, 1) if name in ("planned", "committed")}
    fixed = special | set(range(1, 13)) | set(range(total - 5, total + 1))
    rest = [k for k in range(1, total + 1) if k not in fixed]
    need = samples - len(fixed)
    return sorted(fixed | {rest[round(i * (len(rest) - 1) / (need - 1))] for i in range(need)})


def test_the_dry_runs_pass_through_every_kind_of_step(dry_runs):
    finalize, undo = dry_runs["finalize"], dry_runs["undo"]
    steps = {"before_move", "placed", "marked_moved", "unlinked", "marked_done"}
    assert steps | {"planned", "committed"} <= set(finalize)
    assert {"committed", "before_move", "placed", "unlinked", "marked_done"} <= set(undo)
    assert finalize.count("before_move") == 39  # 18 images, 18 companions, 3 sidecars
    assert dry_runs["finalize-xdev"].count("copied") == finalize.count("placed")


@pytest.mark.parametrize(("mode", "sample"), [(m, i) for m, n in SAMPLES.items() for i in range(n)])
def test_a_kill_at_any_step_loses_and_duplicates_nothing(tmp_path, dry_runs, mode, sample):
    points = kill_points(dry_runs[mode], SAMPLES[mode])
    if sample >= len(points):
        pytest.skip(f"{mode} has only {len(points)} steps")
    k = points[sample]
    made = prepared(tmp_path, mode)
    finalized_tree = _files(tmp_path)
    killed = run_worker(tmp_path, mode, k)
    assert killed.returncode == -9, f"step {k} ({dry_runs[mode][k - 1]}): {killed.stderr}"

    project = worker.store_at(tmp_path).open(worker.NAME)
    with project.lock("test after the crash"):  # the dead worker's lock is taken over
        conn = project.connect()
        try:
            report = FileJournal(conn, project.is_allowed).recover()
            assert report.clean, report.problems
            _assert_consistent(tmp_path, project, conn, made, mode, finalized_tree)
            assert doctor.check(project, conn).clean, doctor.check(project, conn).findings
        finally:
            conn.close()


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the source and the project folders, but the database and the lock."""
    folders = [root / "source", *(root / "projects" / worker.NAME / f for f in ROUTING_FOLDERS)]
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


def _assert_consistent(root, project, conn, made, mode, before) -> None:
    files = _files(root)
    assert not list(root.rglob("*.wbpart")), "a partial copy was left behind"
    originals = {p: data for p, data in files.items() if not p.endswith(".decision")}
    counts = Counter(worker.sha(Path(p)) for p in originals)
    assert set(counts) == set(made), "a file was lost, or a stranger appeared"
    assert all(n == 1 for n in counts.values()), "a file exists twice"

    rows = conn.execute("SELECT group_id, user_action FROM ai_decisions").fetchall()
    assert len(rows) in (0, len(worker.SIZES)), "the batch was half written"
    for (path,) in conn.execute("SELECT current_path FROM decision_files"):
        assert Path(path).is_file(), f"{path} is in the database but not on disk"
    if not rows:  # nothing finalized (or all of it undone): everything is back in the source
        assert {p for p in originals} == set(made.values())
    elif mode == "undo":  # the undo had not committed: exactly the finalized state remains
        assert files == before

    expected = {}
    for gid, current in conn.execute(
        "SELECT f.group_id, f.current_path FROM decision_files f JOIN ai_decisions d"
        " ON d.group_id = f.group_id AND f.image_index = d.user_selected_index"
    ):
        if Path(current).parent in (project.folder("crop"), project.folder("crop_auto")):
            expected[str(sidecar_path(Path(current)))] = gid
    sidecars = {p for p in files if p.endswith(".decision")}
    assert sidecars == set(expected), "sidecars must exist exactly for crop/crop_auto rows"
    for path, gid in expected.items():
        assert read_sidecar(Path(path), project=project).group_id == gid
    if rows:
        assert len(expected) == 3
