"""SIGKILL the GUI in the middle of a batch: on reopening, every staged choice and the position
are there. The GUI runs in a child process (offscreen), driven by real key events
(tests/e2e/reviewer_driver.py), which prints what the reviewer shows after each key.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e import reviewer_driver as driver
from workbench.core.db import get_meta
from workbench.core.project import ProjectStore
from workbench.core.review import POSITION_KEY

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60


class Child:
    """The GUI process and the JSON lines it printed, read on a thread (never blocking)."""

    def __init__(self, projects: Path, keys: list[str], *flags: str) -> None:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        command = [sys.executable, str(Path(driver.__file__)), str(projects), driver.NAME,
                   ",".join(keys), *flags]  # fmt: skip
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.lines: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self) -> dict:
        try:
            item = self.lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            self.kill()
            raise AssertionError("the GUI printed nothing for a minute") from None
        if item is None:
            raise AssertionError(f"the GUI exited: {self.proc.wait()} {self.proc.stderr.read()}")
        return item

    def until(self, event: str) -> list[dict]:
        seen = [self.next()]
        while seen[-1]["event"] != event:
            seen.append(self.next())
        return seen

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=TIMEOUT_S)

    def rest(self) -> list[dict]:
        """The lines printed before the kill and not read yet."""
        out = []
        while (item := self.lines.get(timeout=TIMEOUT_S)) is not None:
            out.append(item)
        return out


def reopened(projects: Path) -> dict:
    """What the reviewer shows when the project is opened again (in a fresh GUI process)."""
    child = Child(projects, [])
    try:
        return child.next()
    finally:
        child.kill()


def database_state(projects: Path) -> tuple[dict, int | None]:
    project = ProjectStore(projects).open(driver.NAME)
    conn = project.connect()
    try:
        rows = conn.execute(
            "SELECT group_pk, user_action, user_selected_index, crop_overlay_on FROM staged_choices"
        )
        staged = {str(r[0]): [r[1], r[2], bool(r[3])] for r in rows}
        position = json.loads(get_meta(conn, POSITION_KEY) or "{}").get("group_pk")
        return staged, position
    finally:
        conn.close()


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    return driver.prepare(tmp_path)


def test_killed_while_idle_mid_batch_every_choice_and_the_position_survive(projects):
    keys = ["1", "Q", "T", "2", "X", "Right", "3", "W", "Ctrl+Z", "E"]
    child = Child(projects, keys)
    lines = child.until("idle")
    assert child.kill() == -signal.SIGKILL
    last = lines[-2]
    assert [line["key"] for line in lines[1:-1]] == keys
    first = lines[0]["current"]
    expected = {0: ["approve", 0, True], 1: ["crop", 0, True], 2: ["approve", 1, False],
                3: ["reject", None, True], 5: ["approve", 2, True], 6: ["crop", 2, True]}  # fmt: skip
    assert sorted(last["staged"]) == sorted(str(first + k) for k in expected)
    for k, (action, index, overlay) in expected.items():
        got = last["staged"][str(first + k)]
        # a reject records the AI's pick as its image, whichever that was
        assert got[0] == action and got[2] == overlay and index in (None, got[1])
    assert last["index"] == 7
    assert database_state(projects) == (last["staged"], last["current"])
    again = reopened(projects)
    assert (again["staged"], again["current"], again["index"]) == (
        last["staged"], last["current"], last["index"])  # fmt: skip


def test_killed_while_keys_are_coming_no_reported_choice_is_lost(projects):
    keys = ["1", "2", "3", "Q", "W", "E", "X", "1", "3", "R", "2", "1"]
    child = Child(projects, keys, "--no-wait")
    child.next()  # opened
    read = [child.next() for _ in range(4)]
    assert child.kill() == -signal.SIGKILL
    reported = read + [line for line in child.rest() if line["event"] == "step"]
    last = reported[-1]
    again = reopened(projects)
    # Every choice the window showed is there; at most the one key in flight came on top.
    for pk, choice in last["staged"].items():
        assert again["staged"][pk] == choice
    assert again["index"] in (last["index"], last["index"] + 1)
    assert len(again["staged"]) == again["index"]  # one choice per group before the current
    assert database_state(projects) == (again["staged"], again["current"])
