"""One writer per project: a second holder is refused by name; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.errors import ProjectLocked
from workbench.core.lock import ProjectLock, read_holder
from workbench.core.project import Project, ProjectStore

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from pathlib import Path
from workbench.core.lock import ProjectLock
lock = ProjectLock(Path(sys.argv[1]), sys.argv[2], "reviewing in another window").acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def project(store: ProjectStore, source_dir: Path) -> Project:
    return store.create("locked", source_dir)


@pytest.fixture
def holder(project: Project):
    """A child process holding the project's lock (it says so on stdout before we go on)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project.root), project.name],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_a_second_lock_in_the_same_process_is_refused_naming_the_holder(project):
    with project.lock("the reviewer"):
        with pytest.raises(ProjectLocked) as info:
            project.lock("workbench undo").acquire()
    message = info.value.message
    assert "'the reviewer'" in message and f"process {os.getpid()}" in message
    assert "locked" in message and "try again" in message


def test_a_lock_held_by_another_process_blocks_until_it_is_killed(project, holder):
    with pytest.raises(ProjectLocked) as info:
        project.lock("workbench finalize").acquire()
    assert "'reviewing in another window'" in info.value.message
    assert f"process {holder.pid}" in info.value.message
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    # The holder never released: its lock file still names it, but the kernel dropped the lock.
    assert read_holder(project.root / ProjectLock.FILENAME)["pid"] == holder.pid
    with project.lock("after the crash") as lock:
        assert lock.held
        info_now = json.loads((project.root / ProjectLock.FILENAME).read_text())
        assert info_now["pid"] == os.getpid() and info_now["purpose"] == "after the crash"


def test_release_allows_a_new_holder(project):
    first = project.lock("first").acquire()
    assert first.acquire() is first  # re-entrant for the same holder object
    first.release()
    first.release()  # releasing twice is harmless
    assert read_holder(project.root / ProjectLock.FILENAME) is None
    second = project.lock("second").acquire()
    assert second.held
    second.release()
    with project.lock("third"):
        pass
