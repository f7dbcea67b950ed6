"""A new project shows its first batch at once; the window groups the rest in the background."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

from workbench.core.project import ProjectStore
from workbench.core.scan_store import scan_incomplete
from workbench.ui.session import create_and_scan, open_session


def _folder(path: Path, groups: int) -> Path:
    path.mkdir()
    start = datetime(2025, 1, 1)
    tiny = Image.new("RGB", (8, 6), (90, 60, 30))
    for g in range(groups):
        for i in range(2):
            stamp = (start + timedelta(minutes=g, seconds=i)).strftime("%Y%m%d_%H%M%S")
            tiny.save(path / f"{stamp}.png")
    return path


def _count(store: ProjectStore, name: str) -> tuple[int, bool]:
    conn = store.open(name).connect()
    try:
        return conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0], scan_incomplete(conn)
    finally:
        conn.close()


def test_first_batch_then_the_rest_in_the_background(qtbot, tmp_path: Path) -> None:
    from workbench.ui.main_window import MainWindow

    store = ProjectStore(tmp_path / "projects", tmp_path / "models")
    create_and_scan(store, "big", _folder(tmp_path / "photos", 130), "sequence")
    assert _count(store, "big") == (100, True)  # one full batch, the rest still to group
    window = MainWindow(open_session(store, "big"))
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: not window.scan.busy(), timeout=20_000)
    assert _count(store, "big") == (130, False)
    window.close()
    assert not window.session.lock.held
