"""One writer per project: an advisory lock the kernel releases when its holder dies."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from workbench.core.errors import ProjectLocked
from workbench.core.timeutil import iso_utc

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_holder(path: Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock, as written in the lock file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another Workbench process"
    return (
        f"'{holder.get('purpose', 'workbench')}' (process {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, since {holder.get('since', '?')})"
    )


class ProjectLock:
    """Exclusive lock on a project folder; a lock left by a dead process is taken over.

    The lock is an OS advisory lock on `<project>/.workbench.lock`, so it vanishes with
    the process that held it; the file's content names the holder for the message.
    """

    FILENAME = ".workbench.lock"

    def __init__(self, project_dir: Path, project_name: str, purpose: str) -> None:
        self.path = project_dir / self.FILENAME
        self.project_name = project_name
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> ProjectLock:
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise ProjectLocked(
                f"Project '{self.project_name}' is in use by {describe_holder(read_holder(self.path))}. "
                "Close that window or wait for the command to finish, then try again."
            )
        info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                "since": iso_utc()}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
