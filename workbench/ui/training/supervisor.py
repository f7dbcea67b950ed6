"""One training job in a child process, supervised from a QThread: the GUI side of jobrunner.

The GUI never imports torch: `TrainingRun` starts `python -m workbench.ml.jobrunner
CONFIG_JSON` in a session (process group) of its own, at a lower CPU priority, and reads
its JSON lines on the run's thread; progress and log lines reach the GUI as queued
signals, and `completed` always fires exactly once with a RunOutcome, whatever happened
(a result, a crash, a kill, a failure to start). `cancel()` sends SIGTERM to the group,
which the job honours at its next check; a group still alive `kill_after_s` later is
killed outright, as are stragglers left behind when the job itself has ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import QObject, QThread, Signal

import workbench
from workbench.ml.jobs import JobConfig, JobResult

log = logging.getLogger(__name__)

JOBRUNNER = "workbench.ml.jobrunner"
KILL_AFTER_S = 3.0  # how long a cancelled job may take to stop before its group is killed
STRAGGLER_GRACE_S = 1.0  # how long the job's pipe may stay open after the job has ended
CHILD_NICENESS = 10  # the job yields the CPU to the GUI
_STDERR_TAIL = 4000
_POLL_S = 0.2

_live: set[TrainingRun] = set()  # runs whose thread has not ended (guarded by the GIL)


def job_command(config: JobConfig, kinds: Sequence[str] = (),
                prefix: Sequence[str] | None = None) -> list[str]:  # fmt: skip
    """The child's argv: `prefix` (default: this Python running the job runner) + config + kinds."""
    head = list(prefix) if prefix else [sys.executable, "-m", JOBRUNNER]
    return [*head, json.dumps(config.to_dict()), *kinds]


def child_environment() -> dict[str, str]:
    """This process's environment, with the workbench package importable in the child."""
    env = dict(os.environ)
    root = str(Path(workbench.__file__).resolve().parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in paths if p != root]])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def active_runs() -> list[TrainingRun]:
    """Runs whose thread (and so whose child process) has not ended (for shutdown and tests)."""
    out = []
    for run in list(_live):
        try:
            running = run.isRunning()
        except RuntimeError:  # its Qt object is gone, so is its thread
            running = False
        if running:
            out.append(run)
        else:
            _live.discard(run)
    return out


@dataclass
class RunOutcome:
    """How one run ended. `results` is never empty: a crash becomes a "failed" result."""

    kind: str
    results: list[JobResult]
    returncode: int | None = None
    cancelled: bool = False  # a cancel was asked for
    killed: bool = False  # the group had to be killed
    stderr_tail: str = ""
    seconds: float = 0.0
    synthetic: bool = False  # the child reported no result: `results` says what went wrong


def outcome_for(kind: str, title: str, results: list[JobResult] | None, returncode: int | None,
                cancelled: bool, killed: bool, start_error: str | None = None,
                kill_after_s: float = KILL_AFTER_S) -> RunOutcome:  # fmt: skip
    """The outcome of a finished child: its own results, or a result that says what went wrong
    (`title` names the model inside a sentence, e.g. "ranker")."""
    if results:
        for r in results:
            if r.kind == "?":  # the runner refused the request before knowing the kind
                r.kind = kind
        return RunOutcome(kind, results, returncode, cancelled, killed)
    if start_error is not None:
        message = f"The {title} training could not start: {start_error}."
        status = "failed"
    elif cancelled:
        status = "cancelled"
        message = (f"The {title} training did not stop within {kill_after_s:g} s and was ended; "
                   "no new version was kept." if killed
                   else f"The {title} training was cancelled; no new version was kept.")  # fmt: skip
    elif returncode is not None and returncode < 0:
        status = "failed"
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        memory = " (the system may have run out of memory)" if name == "SIGKILL" else ""
        message = (f"The {title} training process was ended by {name}{memory} before it reported "
                   "a result. The log has the details.")  # fmt: skip
    else:
        status = "failed"
        message = (f"The {title} training process stopped unexpectedly (exit status {returncode}) "
                   "before it reported a result. The log has the details.")  # fmt: skip
    outcome = RunOutcome(kind, [JobResult(kind, status, message)], returncode, cancelled, killed)
    outcome.synthetic = True
    return outcome


class TrainingRun(QThread):
    """One child process and the thread that reads it. Call `stop()` before it goes away."""

    progressed = Signal(object)  # the progress line (a dict: stage, step, total, metrics, message)
    logged = Signal(str, str)  # level, message
    completed = Signal(object)  # RunOutcome, exactly once

    def __init__(self, kind: str, title: str, command: list[str], *,
                 kill_after_s: float = KILL_AFTER_S, parent: QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.kind, self.title, self.command = kind, title, command
        self.kill_after_s = kill_after_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._cancel_at: float | None = None  # monotonic time of the first cancel
        self._killed = False
        _live.add(self)

    # -- the GUI side -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def cancel(self) -> None:
        """Ask the job to stop (SIGTERM to its group); it is killed if still there later."""
        with self._lock:
            if self._cancel_at is None:
                self._cancel_at = time.monotonic()
            proc = self._proc
        if proc is not None:
            self._signal(proc, signal.SIGTERM)

    def stop(self) -> None:
        """Cancel and wait until the child and the thread have ended (at most ~kill_after_s)."""
        if self.isRunning():
            self.cancel()
            self.wait()

    # -- the run's thread ---------------------------------------------------------------

    def run(self) -> None:
        began = time.monotonic()
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=stderr,
                                        start_new_session=True, env=child_environment())  # fmt: skip
            except OSError as exc:
                self.completed.emit(outcome_for(self.kind, self.title, None, None, False, False,
                                                start_error=str(exc)))  # fmt: skip
                return
            with self._lock:
                self._proc = proc
                cancelled_early = self._cancel_at is not None
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, CHILD_NICENESS)
            if cancelled_early:
                self._signal(proc, signal.SIGTERM)
            results = self._read(proc)
            returncode = proc.wait()
            self._signal(proc, signal.SIGKILL)  # whatever the job left running in its group
            tail = _tail(stderr)
        with self._lock:
            cancelled, killed = self._cancel_at is not None, self._killed
        outcome = outcome_for(self.kind, self.title, results, returncode, cancelled, killed,
                              kill_after_s=self.kill_after_s)
        outcome.stderr_tail = tail
        outcome.seconds = time.monotonic() - began
        if returncode != 0 and tail:
            log.info("training %s ended with %s; its stderr:\n%s", self.kind, returncode, tail)
        self.completed.emit(outcome)

    def _read(self, proc: subprocess.Popen[bytes]) -> list[JobResult] | None:
        """Reads JSON lines until the pipe closes; enforces the kill deadlines meanwhile."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        results: list[JobResult] | None = None
        buffer = b""
        ended_at: float | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                if sel.select(_POLL_S):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        results = self._handle(line) or results
                now = time.monotonic()
                with self._lock:
                    cancel_at = self._cancel_at
                if cancel_at is not None and now - cancel_at > self.kill_after_s:
                    self._kill(proc)
                if ended_at is None and proc.poll() is not None:
                    ended_at = now
                elif ended_at is not None and now - ended_at > STRAGGLER_GRACE_S:
                    self._kill(proc)  # the job ended but something of its group holds the pipe
        proc.stdout.close()
        if buffer.strip():
            results = self._handle(buffer) or results
        return results

    def _handle(self, line: bytes) -> list[JobResult] | None:
        """Emits one line's progress or log; returns the results when it is the result line."""
        text = line.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            item: Any = json.loads(text)
        except ValueError:
            item = None
        if not isinstance(item, dict) or "type" not in item:
            self.logged.emit("OUTPUT", text[:2000])  # something printed to stdout by a library
            return None
        kind = item.get("type")
        if kind == "progress":
            self.progressed.emit(item)
        elif kind == "log":
            self.logged.emit(str(item.get("level", "INFO")), str(item.get("message", "")))
        elif kind == "result":
            raw = item.get("results")
            if isinstance(raw, list):
                return [JobResult.from_dict(r) for r in raw if isinstance(r, dict)]
        return None

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            first = not self._killed
            self._killed = True
        if first:
            log.warning("training %s did not stop in time; killing its process group", self.kind)
        self._signal(proc, signal.SIGKILL)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        """Signal the job's whole process group (its session is its own)."""
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(proc.pid, sig)


def _tail(stream: IO[bytes]) -> str:
    """The last few thousand characters the child wrote to stderr."""
    try:
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _STDERR_TAIL))
        return stream.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
