"""Kill-test helper: the real GUI (offscreen) on a project, driven by real key events.

    python tests/e2e/reviewer_driver.py PROJECTS_DIR NAME [KEY,KEY,...] [--no-wait]

opens the project in the Workbench window (the reviewer is the view it opens on), prints
one JSON line with what the reviewer shows, then presses each key on the reviewer view
with QTest (once the group before it is painted, unless --no-wait), printing the state
after each, then prints {"event": "idle"} and keeps running until it is killed (or 60 s).
A state line: {"event", "key", "current": group pk, "index", "batch",
"staged": {pk: [action, image index, overlay on]}}. `prepare` builds the shared project.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

NAME = "killed"
SIZES = [2, 3, 4, 3, 2, 4, 3, 2, 3, 4, 2, 3]  # one batch of 12 groups
KEYS = {
    **{k: (f"Key_{k}", "NoModifier") for k in "1234QWERXT"},
    "Left": ("Key_Left", "NoModifier"),
    "Right": ("Key_Right", "NoModifier"),
    "Ctrl+Z": ("Key_Z", "ControlModifier"),
}
GIVE_UP_MS = 60_000


def prepare(root: Path) -> Path:
    """A project of SIZES groups of small PNGs under root/projects; returns the projects dir."""
    from PIL import Image, ImageDraw

    from workbench.core.project import ProjectStore
    from workbench.core.scan_store import scan_project

    source = root / "photos"
    source.mkdir(parents=True)
    start = datetime(2025, 7, 5, 9, 0, 0)
    for g, n in enumerate(SIZES):
        for i in range(n):
            img = Image.new("RGB", (160, 120), (40 + 10 * g, 90, 150 - 10 * i))
            ImageDraw.Draw(img).ellipse((30 + 5 * g, 20, 90 + 5 * g, 90), fill=(220, 80, 60))
            stamp = start + timedelta(minutes=5 * g, seconds=2 * i)
            img.save(source / f"{stamp:%Y%m%d_%H%M%S}.png")
    store = ProjectStore(root / "projects", root / "models")
    project = store.create(NAME, source, batch_size=len(SIZES))
    conn = project.connect()
    try:
        scan_project(project, conn)
    finally:
        conn.close()
    return store.projects_dir


def state(view, event: str, key: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    group = view.current_group()
    return {
        "event": event,
        "key": key,
        "current": group.pk if group else None,
        "index": group.index if group else None,
        "batch": group.batch_number if group else None,
        "staged": {
            str(g.pk): [
                g.staged.user_action,
                g.staged.user_selected_index,
                g.staged.crop_overlay_on,
            ]
            for g in view.session.groups()
            if g.staged is not None
        },
    }


def main(argv: list[str]) -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from workbench.app import build_window

    wait = "--no-wait" not in argv
    args = [a for a in argv if a != "--no-wait"]
    projects, name = args[0], args[1]
    keys = [k for k in (args[2] if len(args) > 2 else "").split(",") if k]

    class FailingDialogs:
        def error(self, text: str) -> None:
            print(json.dumps({"event": "error", "message": text}), flush=True)
            raise SystemExit(3)

        def choose_project(self, store: object) -> None:
            raise SystemExit(3)

    window = build_window([name, "--projects-dir", projects], dialogs=FailingDialogs())
    assert window is not None
    view = window.reviewer
    app = QApplication.instance()
    assert app is not None

    def painted() -> bool:
        group = view.current_group()
        tiles = view.row.visible_tiles()
        return group is None or (
            group.proposal is not None and all(t.state != "loading" for t in tiles)
        )

    pending = list(keys)
    print(json.dumps(state(view, "opened")), flush=True)

    def step() -> None:
        if wait and not painted():
            return
        if not pending:
            timer.stop()
            print(json.dumps({"event": "idle"}), flush=True)
            return
        key = pending.pop(0)
        qt_key, modifier = KEYS[key]
        QTest.keyClick(view, getattr(Qt.Key, qt_key), getattr(Qt.KeyboardModifier, modifier))
        print(json.dumps(state(view, "step", key)), flush=True)

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(10)
    QTimer.singleShot(GIVE_UP_MS, app.quit)
    app.exec()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
