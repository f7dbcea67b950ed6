"""Runs one job in a child process and speaks JSON lines: `python -m workbench.ml.jobrunner`.

The GUI never imports torch: it starts this module with the job's config as a JSON
argument and reads one JSON object per line from its stdout:

    {"type": "progress", "stage": ..., "step": ..., "total": ..., "metrics": {...}, "message": ...}
    {"type": "log", "level": "INFO", "message": ...}
    {"type": "result", "results": [JobResult.to_dict(), ...]}      always the last line

Arguments: `CONFIG_JSON [KIND ...]`: the JobConfig (its `kind` is used when no KIND is
given; "all" or several kinds run the one-click retrain). SIGTERM or SIGINT asks the
job to stop at its next check (it then reports "cancelled" and keeps nothing); the
supervisor kills the whole process group if it does not exit within a few seconds.
Exit status: 0 when the result line was written, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any

_write_lock = threading.Lock()
_stop = threading.Event()


def emit(item: dict[str, Any], stream: Any = None) -> None:
    """Writes one JSON line (thread-safe, flushed)."""
    stream = stream or sys.stdout
    line = json.dumps(item, default=str)
    with _write_lock:
        stream.write(line + "\n")
        stream.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Progress and results own stdout; anything a library prints goes to stderr.
    out = sys.stdout
    sys.stdout = sys.stderr

    def send(item: dict[str, Any]) -> None:
        emit(item, out)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _stop.set())
    handler = logging.Handler()
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    handler.emit = lambda record: send(  # type: ignore[method-assign]
        {"type": "log", "level": record.levelname, "message": record.getMessage()}
    )

    from workbench.core.errors import WorkbenchError
    from workbench.ml.jobs import JOBS, JobConfig, JobResult, Progress, run_all, run_job

    def progress(p: Progress) -> None:
        send({"type": "progress", **p.to_dict()})

    try:
        if not argv:
            raise WorkbenchError("usage: python -m workbench.ml.jobrunner CONFIG_JSON [KIND ...]")
        config = JobConfig.from_dict(json.loads(argv[0]))
        kinds = argv[1:]
        if kinds == ["all"]:
            kinds = list(JOBS)
        if kinds:
            results = run_all(config, kinds, progress, _stop.is_set)
        else:
            results = [run_job(config, progress, _stop.is_set)]
    except (ValueError, WorkbenchError) as exc:
        message = getattr(exc, "message", None) or f"Bad job request: {exc}."
        send(
            {"type": "result", "results": [JobResult(_kind_of(argv), "failed", message).to_dict()]}
        )
        return 1
    send({"type": "result", "results": [r.to_dict() for r in results]})
    return 0


def _kind_of(argv: list[str]) -> str:
    """The kind a rejected request was about, as far as it can be read ("?" otherwise)."""
    try:
        kind = json.loads(argv[0]).get("kind") if argv else None
    except (ValueError, AttributeError):
        kind = None
    return kind if isinstance(kind, str) and kind else "?"


if __name__ == "__main__":
    sys.exit(main())
