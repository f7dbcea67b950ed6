"""Writes the training and AI performance screenshots into docs/screenshots/ (1280x720).

    .venv/bin/python docs/screenshots/take_training.py [--work DIR]

Builds a project whose decisions follow a rule a ranker can learn (ml.training.synthetic),
trains a first crop model and smart-crop statistics in a child process (the job runner,
as the GUI does; the ranker is left to the screenshots' retrain), adds 40 newer decisions, spreads the decisions over batches in which the AI gets better, then
opens the real window and drives it: the training view idle, during a retrain (live
curves), after it (result cards), and the AI performance view. Runs in whatever Qt
platform is set: a real X server (`xvfb-run` or /work/shared/tools/xshot) or offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
SIZE = (1280, 720)
NAME = "trip"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build_project(work: Path):  # type: ignore[no-untyped-def]
    """The project: 120 decided groups, first crop models trained, 40 newer groups, a history."""
    from tests.ui.conftest import give_history
    from workbench.core.decisions import decision_from_row, insert_decision, make_group_id
    from workbench.core.project import ProjectStore
    from workbench.ml.training.synthetic import make_rule_project

    store = ProjectStore(work / "projects", work / "models")
    project = make_rule_project(store, NAME, 120, size=(256, 192))
    config = {"kind": "smartcrop", "project": NAME, "projects_dir": str(store.projects_dir),
              "models_dir": str(store.models_dir), "epochs": 4}  # fmt: skip
    subprocess.run([sys.executable, "-m", "workbench.ml.jobrunner", json.dumps(config),
                    "smartcrop", "crop"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    # 40 newer decisions (made in a scratch project, moved in with their images).
    scratch = ProjectStore(work / "scratch", work / "scratch-models")
    extra = make_rule_project(scratch, NAME, 40, seed=5, size=(256, 192))
    conn, other = project.connect(), extra.connect()
    try:
        import sqlite3

        other.row_factory = sqlite3.Row
        rows = other.execute("SELECT * FROM ai_decisions ORDER BY timestamp").fetchall()
        last = conn.execute("SELECT MAX(timestamp) FROM ai_decisions").fetchone()[0]
        from datetime import datetime

        start = datetime.fromisoformat(last) + timedelta(hours=1)
        with conn:
            for i, row in enumerate(rows):
                d = decision_from_row(row)
                moved = []
                for name in d.images:
                    target = project.source / f"n{Path(name).name}"
                    shutil.copy2(name, target)
                    moved.append(str(target))
                when = start + timedelta(minutes=i)
                d.images, d.timestamp = moved, when.isoformat()
                d.group_id = make_group_id(NAME, when, 2, i)
                insert_decision(conn, d)
    finally:
        conn.close()
        other.close()
    give_history(project, batches=8, versions=("heuristic", "v1", "v1"))
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="where the project is made")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="shots_training_"))
    if (work / "projects").exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    store = build_project(work)

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from workbench.app import application
    from workbench.ui.main_window import MainWindow
    from workbench.ui.session import open_session

    app = application()

    def wait(until, seconds: float = 120.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while not until() and time.monotonic() < deadline:
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()

    def settle(seconds: float = 0.6) -> None:
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end, seconds + 1)

    def shot(name: str) -> None:
        settle()
        path = OUT / f"{name}-{SIZE[0]}x{SIZE[1]}.png"
        window.grab().save(str(path), "PNG")
        print(f"wrote {path.relative_to(ROOT)}")

    window = MainWindow(open_session(store, NAME))
    window.resize(*SIZE)
    window.show()
    window.activateWindow()
    view = window.training
    QTest.keyClick(window, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
    wait(lambda: len(view.statuses) == 4)
    shot("training-idle")

    view.job_settings["ranker"] = {"epochs": 6000}
    QTest.mouseClick(view.retrain_all, Qt.MouseButton.LeftButton)
    wait(lambda: view.progress is not None and view.progress.kind == "ranker"
         and view.curves.points("loss") >= 24)  # fmt: skip
    shot("training-running")
    finished: list[object] = []
    view.allFinished.connect(finished.append)
    wait(lambda: bool(finished), 600)
    wait(lambda: not view.busy(), 30)
    shot("training-done")

    QTest.keyClick(window, Qt.Key.Key_6, Qt.KeyboardModifier.ControlModifier)
    perf = window.performance
    wait(lambda: perf.data is not None and perf.pictures_ready())
    shot("performance")
    window.close()
    app.processEvents()
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
