"""What every command module shares: argument types, the parser class, project opening."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from workbench.core.project import Project, ProjectStore

# (JSON document, human text) or, to fail with the document printed, (doc, text, exit code)
Result = tuple[dict[str, Any], str] | tuple[dict[str, Any], str, int]
MAX_COUNT = 1_000_000


def count(text: str) -> int:
    """argparse type: a whole number from 1 to MAX_COUNT."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {MAX_COUNT:,}")
    return value


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the command; SUPPRESS keeps a sub-command from
    # resetting a value given before it.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--projects-dir", type=Path, default=default,
                        help="projects folder (default ./projects or $WORKBENCH_PROJECTS)")  # fmt: skip
    parser.add_argument("--models-dir", type=Path, default=default,
                        help="trained models folder (default models/ beside the projects folder)")  # fmt: skip
    parser.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="print exactly one JSON document on stdout")  # fmt: skip


# A command module's `register(command)` declares its sub-commands with `command(name,
# help)` (which returns the sub-parser) and returns {name: handler}.
CommandAdder = Callable[[str, str], argparse.ArgumentParser]
Handler = Callable[[argparse.Namespace], Result]


def store(args: argparse.Namespace) -> ProjectStore:
    return ProjectStore(args.projects_dir, args.models_dir)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def writing(args: argparse.Namespace, purpose: str) -> Iterator[tuple[Project, Any]]:
    """Open a project for writing: lock, connect, finish any interrupted moves."""
    from workbench.core.finalize import journal_for

    project = store(args).open(args.name)
    with project.lock(purpose):
        conn = project.connect()
        try:
            report = journal_for(project, conn).recover()
            if report.rolled_forward:
                log(f"Finished {report.rolled_forward} file move(s) interrupted earlier.")
            for problem in report.problems:
                log(f"warning: {problem}")
            yield project, conn
        finally:
            conn.close()


@contextmanager
def reading(args: argparse.Namespace) -> Iterator[tuple[Project, Any]]:
    project = store(args).open(args.name)
    conn = project.connect()
    try:
        yield project, conn
    finally:
        conn.close()
