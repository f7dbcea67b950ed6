"""UI test set-up: every test must leave no QThread, thread pool job or child process running."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QThread, QThreadPool
from PySide6.QtWidgets import QApplication

LEFTOVER_GRACE_S = 2.0  # a child reaped or a thread ending right now is not a leak


def child_processes() -> list[tuple[int, str, str]]:
    """(pid, state, command) of this process's children, from /proc (empty elsewhere)."""
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) != me:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        out.append((int(entry.name), state, cmd.strip()[:160]))
    return out


def running_threads() -> list[str]:
    """QThreads (but the GUI thread) still running, and thread pools with active jobs."""
    main = QThread.currentThread()
    out = []
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance: that reads __class__, which some modules warn on
        try:
            if issubclass(kind, QThread) and obj is not main and obj.isRunning():
                out.append(f"{kind.__name__} (a QThread)")
            elif issubclass(kind, QThreadPool) and obj.activeThreadCount() > 0:
                out.append(f"a QThreadPool with {obj.activeThreadCount()} active job(s)")
        except RuntimeError:  # its Qt object is already deleted
            continue
    return out


@pytest.fixture(autouse=True)
def no_leftover_workers(request):
    """Fails the test if it leaves a QThread, a pool job or a child process running.

    Checked after the test's own fixtures have closed its windows (this one is set up
    first, so it is torn down last); a short grace lets a thread or child that is ending
    right now finish.
    """
    before = {pid for pid, _, _ in child_processes()}
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while True:
        app = QApplication.instance()
        if app is not None:
            app.processEvents()
        threads = running_threads()
        children = [c for c in child_processes() if c[0] not in before]
        if (not threads and not children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = threads + [f"child process {pid} ({state}): {cmd}" for pid, state, cmd in children]
    for pid, _, _ in children:  # do not let one leak fail every test after it
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    assert not problems, f"{request.node.name} left workers running: " + "; ".join(problems)


def give_history(project, batches: int = 6, seed: int = 1,
                 versions: tuple[str, str, str] = ("heuristic", "v1", "v2")) -> None:  # fmt: skip
    """Spread a project's decisions over `batches` batches in which the AI gets better.

    Each batch's AI agrees with the user's pick (and crop) more often than the last; the
    models behind the picks are `versions` in the first, second and last third of the
    batches (recorded in decision_extras, for ranker and crop alike), and
    every decision with a final crop gets an AI crop near it or well off it. For the AI
    performance view's tests and screenshots.
    """
    import json
    import random

    from workbench.core.crops import CropBox
    from workbench.core.decisions import crop_match, selection_match

    rng = random.Random(seed)
    conn = project.connect()
    try:
        rows = conn.execute(
            "SELECT group_id, images, user_selected_index, user_action, final_crop_coords "
            "FROM ai_decisions ORDER BY timestamp, group_id"
        ).fetchall()
        per_batch = max(1, -(-len(rows) // batches))
        with conn:
            for i, (gid, images, user, action, final) in enumerate(rows):
                batch = i // per_batch + 1
                good = 0.35 + 0.6 * (batch - 1) / max(1, batches - 1)
                n = len(json.loads(images))
                ai = user if rng.random() < good or n == 1 else (user + 1) % n
                final_box = CropBox.from_json(final) if final else None
                ai_box = None
                if final_box is not None:
                    off = 0.01 if rng.random() < good else 0.12
                    x1, y1, x2, y2 = final_box.to_list()
                    ai_box = CropBox(max(0.0, x1 - off), max(0.0, y1 - off),
                                     min(1.0, x2 + off), min(1.0, y2 + off))
                third = max(1, batches // 3)
                version = versions[0] if batch <= third else versions[1] if batch <= 2 * third else versions[2]
                conn.execute(
                    "UPDATE ai_decisions SET batch_number = ?, ai_selected_index = ?, "
                    "ai_crop_coords = ?, ai_confidence = ?, selection_match = ?, crop_match = ? "
                    "WHERE group_id = ?",
                    (batch, ai, ai_box.to_json() if ai_box else None, round(rng.uniform(0.4, 0.95), 3),
                     selection_match(action, ai, user), crop_match(ai_box, final_box), gid),
                )
                conn.execute(
                    "UPDATE decision_extras SET ranker_version = ?, crop_version = ? WHERE group_id = ?",
                    (version, version, gid),
                )
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def user_settings(tmp_path: Path):
    """Recent projects go to a temporary INI file, never to the user's settings."""
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
