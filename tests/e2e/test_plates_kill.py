"""SIGKILL the plates view between two labels: every label saved before survives, none half.

The child process runs the real PlatesView (offscreen Qt) and types the labels with real
key events; it is this file run as a script:

    python tests/e2e/test_plates_kill.py PROJECTS_DIR self K   # kill itself after label K,
                                                               # with label K+1 half typed
    python tests/e2e/test_plates_kill.py PROJECTS_DIR run 0    # label everything, printing
                                                               # "saved N" after each Enter
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from workbench.core.plate_labeling import PlateLabeling  # noqa: E402
from workbench.core.plates import LabelStore, crop_folders, list_crops  # noqa: E402
from workbench.core.project import ProjectStore  # noqa: E402

NAME = "kill"
LABELS = ["QS1234", "AB12CD", "SQ9", "ZZ7Q", "K9S4Q", "7SQ77", "X1", "QQSS12"]
ROOT = Path(__file__).resolve().parents[2]


def prepare(root: Path) -> ProjectStore:
    store = ProjectStore(root / "projects", root / "models")
    (root / "source").mkdir(parents=True)
    project = store.create(NAME, root / "source")
    folder = project.root / "plates" / "2025-07-05"
    folder.mkdir(parents=True)
    for n in range(1, len(LABELS) + 1):
        Image.new("RGB", (80, 24), (250, 250, 240 - n)).save(folder / f"CAM1_track{n}.jpg")
    return store


def stored(store: ProjectStore) -> list[tuple[str, str]]:
    conn = store.open(NAME).connect()
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        labels = LabelStore(conn).all()
        return sorted((Path(p).name, lab.text) for p, lab in labels.items())
    finally:
        conn.close()


def expected(count: int) -> list[tuple[str, str]]:
    return sorted((f"CAM1_track{n}.jpg", LABELS[n - 1]) for n in range(1, count + 1))


def worker(projects_dir: Path, mode: str, k: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from workbench.ui.plates import PlatesView

    app = QApplication([])
    project = ProjectStore(projects_dir, projects_dir.parent / "models").open(NAME)
    view = PlatesView(project, reader=lambda paths: [])  # no pre-labels: the text is typed
    view.show()
    app.processEvents()
    for n, text in enumerate(LABELS, 1):
        for ch in text.lower():
            QTest.keyClicks(view, ch)
            app.processEvents()
        QTest.keyClick(view, Qt.Key.Key_Return)
        print(f"saved {n}", flush=True)
        if mode == "self" and n == k:
            QTest.keyClicks(view, LABELS[n][:2].lower())  # the next label, half typed
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "run":
            time.sleep(0.01)
    view.shutdown()


def spawn(root: Path, mode: str, k: int) -> subprocess.Popen[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, __file__, str(root / "projects"), mode, str(k)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip


pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]


@pytest.mark.parametrize("k", [1, 2, 5, len(LABELS) - 1])
def test_a_kill_after_a_label_keeps_it_and_drops_the_half_typed_one(tmp_path, k) -> None:
    store = prepare(tmp_path)
    child = spawn(tmp_path, "self", k)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert out.split() == [w for n in range(1, k + 1) for w in ("saved", str(n))]
    assert stored(store) == expected(k)
    # Reopened, a new pass starts at the first crop without a label.
    project = store.open(NAME)
    conn = project.connect()
    try:
        crops = list_crops(crop_folders(project, conn))
        session = PlateLabeling(LabelStore(conn), crops)
        assert session.current == crops[k] and session.text == ""
        assert session.counts.labeled == k
    finally:
        conn.close()


@pytest.mark.parametrize("seed", range(4))
def test_a_kill_from_outside_at_any_moment_loses_no_saved_label(tmp_path, seed) -> None:
    store = prepare(tmp_path)
    child = spawn(tmp_path, "run", 0)
    assert child.stdout is not None
    reported = 0
    wanted = random.Random(seed).randint(1, len(LABELS) - 2)
    while reported < wanted:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else "the child ended early"
        reported = int(line.split()[1])
    time.sleep(random.Random(seed).uniform(0.0, 0.02))  # somewhere in the next label
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    labels = stored(store)
    # Everything reported saved is there, and whatever else is there is a whole label.
    assert len(labels) >= reported
    assert labels == expected(len(labels))


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
