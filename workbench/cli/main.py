"""Headless command line: the same operations as the GUI, one JSON document with --json.

Exit codes: 0 success, 1 bad input or failed operation, 2 usage error. Under --json,
stdout holds exactly one JSON document; logs and progress go to stderr. Each command
module (`*_cmds.py`) declares its sub-commands through `register(command)`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import traceback
from contextlib import redirect_stdout
from typing import Any

from workbench import __version__
from workbench.cli import crop_cmds, plates_cmds, predict_cmds, project_cmds, train_cmds
from workbench.cli.common import Handler, Parser, UsageError, add_common
from workbench.core.errors import WorkbenchError

COMMAND_MODULES = (project_cmds, predict_cmds, crop_cmds, plates_cmds, train_cmds)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and the handler of every command."""
    parser = Parser(prog="workbench", description="Workbench headless command line.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        add_common(p, top=False)
        return p

    handlers: dict[str, Handler] = {}
    for module in COMMAND_MODULES:
        handlers.update(module.register(command))
    return parser, handlers


def _emit_error(
    as_json: bool, code: str, message: str, extra: dict[str, Any] | None = None
) -> None:
    if as_json:
        err: dict[str, Any] = {"code": code, "message": message}
        if extra:
            err.update(extra)
        print(json.dumps({"error": err}, default=str))
    else:
        print(f"error: {message}", file=sys.stderr)
        for item in (extra or {}).get("errors", [])[:50]:
            where = f"line {item.get('line')}" + (
                f", {item['column']}" if item.get("column") else ""
            )
            print(f"  {where}: {item.get('reason')}", file=sys.stderr)


def _parse(parser: argparse.ArgumentParser, argv: list[str], as_json: bool) -> argparse.Namespace:
    """Parsed arguments; under --json, -h and --version answer with one JSON document too."""
    if not as_json:
        return parser.parse_args(argv)
    buffer = io.StringIO()
    try:
        with redirect_stdout(buffer):
            return parser.parse_args(argv)
    except SystemExit as exc:
        text = buffer.getvalue().strip()
        key = "version" if "--version" in argv else "help"
        value = text.removeprefix("workbench ") if key == "version" else text
        print(json.dumps({key: value}))
        raise SystemExit(exc.code) from None


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    import sqlite3

    from workbench.core.db import database_error

    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    parser, handlers = build_parser()
    try:
        args = _parse(parser, argv, as_json)
    except UsageError as exc:
        _emit_error(as_json, "usage", str(exc))
        if not as_json:
            parser.print_usage(sys.stderr)
        return 2
    except SystemExit as exc:  # -h / --version
        return int(exc.code or 0)
    if args.command is None:
        if as_json:
            _emit_error(True, "usage", "workbench: a COMMAND is required")
        else:
            parser.print_help(sys.stderr)
        return 2
    try:
        result = handlers[args.command](args)
    except WorkbenchError as exc:
        extra = {"errors": exc.errors} if hasattr(exc, "errors") else None
        _emit_error(as_json, exc.code, exc.message, extra)
        return 1
    except sqlite3.Error as exc:
        err = database_error(exc)
        _emit_error(as_json, err.code, err.message)
        return 1
    except KeyboardInterrupt:
        _emit_error(as_json, "interrupted", "Interrupted; everything committed so far is kept.")
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        _emit_error(as_json, "os_error", f"{exc.strerror or exc}{where}.")
        return 1
    except Exception as exc:  # a bug: still a sentence, the traceback only on request
        if os.environ.get("WORKBENCH_DEBUG"):
            traceback.print_exc()
        _emit_error(
            as_json,
            "internal",
            f"Workbench failed unexpectedly ({type(exc).__name__}: {exc}). Nothing committed "
            "before this was lost; rerun with WORKBENCH_DEBUG=1 to see the details and report it.",
        )
        return 1
    data, text = result[0], result[1]
    _print(json.dumps(data, default=str) if as_json else text)
    return result[2] if len(result) == 3 else 0
