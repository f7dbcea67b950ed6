"""The GUI's composition root: arguments, the Qt application, the first project window.

`main(argv)` runs the program; `build_window(argv)` does everything up to the event loop
and returns the shown window (or None when the user chose no project), for tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from workbench import __version__
from workbench.core.errors import WorkbenchError
from workbench.core.project import PROJECTS_ENV, ProjectStore, default_projects_dir

if TYPE_CHECKING:
    from workbench.ui.launcher import Dialogs
    from workbench.ui.main_window import MainWindow

DEMO_HISTORY_BATCHES = 3  # earlier batches in the demo: something to train on at once
STYLE_SHEET = Path(__file__).resolve().parents[1] / "resources" / "style.qss"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="workbench-gui", description="Keyboard-first image curation and training."
    )
    parser.add_argument("project", nargs="?", metavar="PROJECT", help="project to open")
    parser.add_argument("--projects-dir", type=Path, default=None,
                        help=f"folder of projects (default: ${PROJECTS_ENV} or ./projects)")  # fmt: skip
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="folder of trained models (default: models/ beside the projects folder)")  # fmt: skip
    parser.add_argument("--demo", action="store_true",
                        help="generate (or reuse) the demo project and open it; PROJECT names it")  # fmt: skip
    parser.add_argument("--review", action="store_true",
                        help="open the plates view in review mode: walk labeled crops to correct them")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"Workbench {__version__}")
    return parser.parse_args(list(argv) if argv is not None else None)


def binding_problem() -> str | None:
    """A sentence when the installed Qt binding is known to crash this program, else None."""
    import PySide6

    if sys.version_info < (3, 12) and PySide6.__version__ == "6.12.0":
        # Every Signal.emit() there drops a reference to True, which Python 3.11 frees
        # after a few hundred emits ("bool_dealloc" abort); 3.12+ has immortal True.
        return (
            "PySide6 6.12.0 crashes under Python 3.11 after a few hundred signals. "
            "Install another version: pip install 'PySide6-Essentials>=6.6,<6.12'."
        )
    return None


# How long a thread may hold Python's GIL while another waits for it (default 5 ms). The
# reviewer's prefetch threads run Python between their decodes; each time the GUI thread
# gives the GIL up around a Qt call it may wait this long to get it back, several times
# per paint, so the default alone costs a key press up to tens of milliseconds.
GIL_SWITCH_INTERVAL_S = 0.0005


# glibc's malloc (Linux): image buffers of 1 MB or more are mapped and unmapped one by one,
# and threads share two heaps. Left alone, each prefetch thread grows a heap of its own
# around the decoded 3072 px images and keeps the freed pages, about 150 MB more at peak
# in benchmarks/bench_reviewer.py (the budget is 600 MB).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MMAP_THRESHOLD_BYTES = 1024 * 1024
MALLOC_ARENAS = 2


def tune_memory() -> None:
    """Apply the malloc settings above where the C library is glibc; elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass  # musl or another C library: its own defaults


def application() -> QApplication:
    """The QApplication, created once with Workbench's names and style sheet."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    tune_memory()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setOrganizationName("Workbench")
    app.setApplicationName("Workbench")
    app.setApplicationVersion(__version__)
    if STYLE_SHEET.is_file() and not app.styleSheet():
        app.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8"))
    return app


def _store_and_project(args: argparse.Namespace) -> tuple[ProjectStore, str | None]:
    """The projects folder to use and the project to open first (None: ask the user)."""
    from workbench.ui.settings import recent_projects

    explicit = args.projects_dir is not None or bool(os.environ.get(PROJECTS_ENV))
    store = ProjectStore(args.projects_dir or default_projects_dir(), args.models_dir)
    if args.project or args.demo:
        return store, args.project
    for root in recent_projects():
        if not explicit:
            return ProjectStore(root.parent, args.models_dir), root.name
        if root.parent == store.projects_dir:
            return store, root.name
    return store, None


def build_window(
    argv: Sequence[str] | None = None, *, dialogs: Dialogs | None = None
) -> MainWindow | None:
    """Parse `argv`, open the project it asks for (or ask) and return the shown MainWindow.

    Returns None when the user opens no project. Does not enter the event loop.
    """
    from workbench.ui.launcher import Dialogs, Launcher
    from workbench.ui.workers import run_with_progress

    args = parse_args(argv)
    application()
    store, name = _store_and_project(args)
    asker = dialogs or Dialogs()
    if args.demo:
        from workbench.core.demo import generate_demo

        try:
            summary = run_with_progress(None, "Preparing the demo project…", generate_demo,
                                        store, args.project or "demo",
                                        history_batches=DEMO_HISTORY_BATCHES)  # fmt: skip
            name = summary.name
        except WorkbenchError as exc:
            asker.error(exc.message)
            name = None
    window = Launcher(store, asker).open(name)
    if window is not None and args.review:
        window.plates.set_review(True)
        window.show_view(window.plates)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Run the GUI; returns the process exit status."""
    from workbench.ui.crash import install_excepthook, setup_logging

    args_for_window = list(argv) if argv is not None else sys.argv[1:]
    parse_args(args_for_window)  # --help and usage errors before any window
    problem = binding_problem()
    if problem:
        print(f"workbench-gui: {problem}", file=sys.stderr)
        return 1
    app = application()
    install_excepthook(setup_logging())
    window = build_window(args_for_window)
    if window is None:
        return 0
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
