"""Writes docs/screenshots/crop-1920x1080.png: the crop view with three images and their boxes.

    .venv/bin/python docs/screenshots/take_crop.py [WORKDIR]

Offscreen (no display needed). The demo project is generated under WORKDIR/projects
(default: a temporary folder); one more demo group is sent to cropping so crop/ holds
three images. The first and third boxes are the AI's proposals, the second is redrawn
(the AI's box then shows dashed); the third image has the focus (handles shown).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workbench.app import application  # noqa: E402
from workbench.core.crops import CropBox  # noqa: E402
from workbench.core.demo import generate_demo  # noqa: E402
from workbench.core.finalize import StagedChoice, finalize_groups, stage_choice  # noqa: E402
from workbench.core.project import ProjectStore  # noqa: E402

SIZE = (1920, 1080)
OUT = ROOT / "docs" / "screenshots" / "crop-1920x1080.png"


def third_crop(store: ProjectStore) -> None:
    """Send the first undecided demo group to cropping (its best image, the AI's crop)."""
    project = store.open("demo")
    conn = project.connect()
    try:
        if len(list(project.folder("crop").glob("*.decision"))) >= 3:
            return
        pk = conn.execute(
            "SELECT id FROM groups WHERE group_id IS NULL ORDER BY id LIMIT 1"
        ).fetchone()[0]
        stage_choice(
            conn, pk, StagedChoice("crop", 0, True, 0, CropBox(0.22, 0.12, 0.78, 0.92), 0.8)
        )
        finalize_groups(project, conn, [pk])
    finally:
        conn.close()


def wait(app, until, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def main() -> None:
    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="wb-shot-"))
    store = ProjectStore(workdir / "projects", workdir / "models")
    app = application()
    generate_demo(store, "demo", groups=12, plates=4)
    third_crop(store)
    from workbench.ui.crop import CropView
    from workbench.ui.main_window import MainWindow
    from workbench.ui.session import open_session

    window = MainWindow(open_session(store, "demo"))
    views = [window.views.widget(i) for i in range(window.views.count())]
    crop = next((w for w in views if isinstance(w, CropView)), None)
    if crop is None:
        crop = CropView(window.project, window, use_model=False)
        window.add_view(crop, "Ctrl+9")
    window.resize(*SIZE)
    window.show()
    window.show_view(crop)
    wait(
        app, lambda: crop.session is not None and not crop.busy() and len(crop.session.images) == 3
    )
    s = crop.session
    s.press(1, 0.12, 0.08)  # redraw the second box, as a drag would
    s.move(0.5, 0.5)
    s.release(0.82, 0.86)
    s.set_focus(2)
    crop.canvas.update()
    window.statusBar().showMessage("demo: 3 image(s) waiting in crop/")
    wait(app, lambda: False, 0.3)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT))
    print(f"wrote {OUT}")
    window.close()


if __name__ == "__main__":
    main()
