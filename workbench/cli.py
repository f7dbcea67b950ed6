"""Headless command line: the same operations as the GUI, one JSON document with --json.

Exit codes: 0 success, 1 bad input or failed operation, 2 usage error. Under --json,
stdout holds exactly one JSON document; logs and progress go to stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from workbench import __version__
from workbench.core.errors import WorkbenchError
from workbench.core.project import GROUP_BY, Project, ProjectStore

# (JSON document, human text) or, to fail with the document printed, (doc, text, exit code)
Result = tuple[dict[str, Any], str] | tuple[dict[str, Any], str, int]
MAX_COUNT = 1_000_000


def _count(text: str) -> int:
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the command; SUPPRESS keeps a sub-command from
    # resetting a value given before it.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--projects-dir", type=Path, default=default,
                        help="projects folder (default ./projects or $WORKBENCH_PROJECTS)")  # fmt: skip
    parser.add_argument("--models-dir", type=Path, default=default,
                        help="trained models folder (default models/ beside the projects folder)")  # fmt: skip
    parser.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="print exactly one JSON document on stdout")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Workbench headless command line.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_common(p, top=False)
        return p

    p = command("init", "create a project over a source folder and group its images")
    p.add_argument("name")
    p.add_argument("--source", type=Path, required=True, help="folder of images to review")
    p.add_argument("--group-by", choices=GROUP_BY, default="sequence")
    p.add_argument("--batch-size", type=_count, default=100, help="groups per batch (default 100)")

    p = command("scan", "add new images from the project's source folder as groups")
    p.add_argument("name")

    p = command("status", "groups, decisions, pending crops, labels and models of a project")
    p.add_argument("name")

    p = command("groups", "list a project's groups with their image paths")
    p.add_argument("name")
    p.add_argument("--batch", type=_count, default=None)
    p.add_argument("--limit", type=_count, default=None)

    p = command("decisions", "import or export the seed's legacy decisions CSV")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    for action, help_ in (("import", "import decisions from a CSV (all or nothing)"),
                          ("export", "export decisions to a CSV")):  # fmt: skip
        q = dsub.add_parser(action, help=help_, description=help_)
        _add_common(q, top=False)
        q.add_argument("name")
        q.add_argument("file", type=Path)
        if action == "export":
            q.add_argument("--overwrite", action="store_true", help="replace an existing file")

    p = command(
        "doctor", "check database, files and sidecars agree; --repair fixes what it safely can"
    )
    p.add_argument("name")
    p.add_argument("--repair", action="store_true")

    p = command("report", "selection and crop accuracy, counts by action and batch")
    p.add_argument("name")

    p = command("undo", "undo the last finalize or move operation(s) of a project")
    p.add_argument("name")
    p.add_argument("--count", type=_count, default=1)

    p = command("predict", "the AI's pick and crop for a group of 1-4 images (no model needed)")
    p.add_argument("name")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG", help="the group, in order")

    p = command("demo", "generate a demo project with images, crops and plates")
    p.add_argument("--name", default="demo")
    p.add_argument("--groups", type=_count, default=24)
    p.add_argument("--plates", type=_count, default=30)
    return parser


# -- helpers ------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> ProjectStore:
    return ProjectStore(args.projects_dir, args.models_dir)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _writing(args: argparse.Namespace, purpose: str) -> Iterator[tuple[Project, Any]]:
    """Open a project for writing: lock, connect, finish any interrupted moves."""
    from workbench.core.finalize import journal_for

    project = _store(args).open(args.name)
    with project.lock(purpose):
        conn = project.connect()
        try:
            report = journal_for(project, conn).recover()
            if report.rolled_forward:
                _log(f"Finished {report.rolled_forward} file move(s) interrupted earlier.")
            for problem in report.problems:
                _log(f"warning: {problem}")
            yield project, conn
        finally:
            conn.close()


@contextmanager
def _reading(args: argparse.Namespace) -> Iterator[tuple[Project, Any]]:
    project = _store(args).open(args.name)
    conn = project.connect()
    try:
        yield project, conn
    finally:
        conn.close()


def _scan(project: Project, conn: Any, *, quiet: bool) -> dict[str, Any]:
    from workbench.core.scan_store import scan_project

    def on_group(group_pk: int, group: Any) -> None:
        if not quiet and group_pk % 1000 == 0:
            _log(f"  {group_pk} groups...")

    return scan_project(project, conn, on_group=on_group).to_dict()


# -- commands -----------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> Result:
    store = _store(args)
    project = store.create(
        args.name, args.source, group_by=args.group_by, batch_size=args.batch_size
    )
    _log(f"Created project '{project.name}' in {project.root}; scanning {project.source} ...")
    with project.lock("workbench init"):
        conn = project.connect()
        try:
            scan = _scan(project, conn, quiet=args.json)
        finally:
            conn.close()
    data = {"project": project.name, "path": str(project.root), "source": str(project.source),
            "database": str(project.db_path), "scan": scan}  # fmt: skip
    text = (
        f"Project '{project.name}' created at {project.root}\n"
        f"{scan.get('groups', 0)} groups of {scan.get('images', 0)} images in "
        f"{len(scan.get('batches', []))} batch(es); {len(scan.get('skipped', []))} file(s) skipped.\n"
        f"Next: workbench-gui {project.name}"
    )
    return data, text + _skipped_text(scan)


def _skipped_text(scan: dict[str, Any]) -> str:
    skipped = scan.get("skipped") or []
    lines = [f"\n  skipped {s['path']}: {s['reason']}" for s in skipped[:20]]
    if len(skipped) > 20:
        lines.append(f"\n  ... and {len(skipped) - 20} more")
    return "".join(lines)


def cmd_scan(args: argparse.Namespace) -> Result:
    with _writing(args, "workbench scan") as (project, conn):
        scan = _scan(project, conn, quiet=args.json)
    text = f"Added {scan.get('groups', 0)} group(s) of {scan.get('images', 0)} new image(s)."
    return {"project": project.name, "scan": scan}, text + _skipped_text(scan)


def cmd_status(args: argparse.Namespace) -> Result:
    from workbench.core.reports import project_status

    with _reading(args) as (project, conn):
        status = project_status(project, conn)
    folders = ", ".join(f"{k} {v}" for k, v in status["folders"].items())
    models = ", ".join(f"{k} {v['champion'] or '-'}" for k, v in status["models"].items()) or "none"
    text = (
        f"Project {status['project']} ({status['path']})\n"
        f"  source      {status['source']}\n"
        f"  groups      {status['groups']} ({status['images']} images, {status['batches']} batches)\n"
        f"  decided     {status['decided']}, staged {status['staged']}, undecided {status['undecided']}\n"
        f"  crops       {status['pending_crops']} waiting\n"
        f"  folders     {folders}\n"
        f"  labels      {status['labels']['labeled']} labeled, {status['labels']['skipped']} skipped\n"
        f"  models      {models}\n"
        f"  skipped     {status['skipped_files']} file(s) could not be used"
    )
    return status, text


def cmd_groups(args: argparse.Namespace) -> Result:
    from workbench.core.scan_store import load_groups

    with _reading(args) as (project, conn):
        groups = load_groups(conn, args.batch)
    if args.limit is not None:
        groups = groups[: args.limit]
    items = [asdict(g) for g in groups]
    lines = []
    for g in items:
        state = g.get("group_id") or "open"
        lines.append(f"batch {g['batch_number']} #{g['position']} [{state}] {g['reason']}")
        lines.extend(f"    {img['path']}" for img in g["images"])
    return {"project": project.name, "groups": items}, "\n".join(lines) or "No groups."


def cmd_decisions(args: argparse.Namespace) -> Result:
    from workbench.core.legacy_csv import import_decisions
    from workbench.core.legacy_csv_export import export_decisions

    if args.action == "import":
        with _writing(args, "workbench decisions import") as (project, conn):
            report = import_decisions(project, conn, args.file)
        data = {"project": project.name, "imported": report.imported, "warnings": report.warnings}
        text = f"Imported {report.imported} decision(s) from {args.file}."
        text += "".join(
            f"\n  warning line {w.get('line')}: {w.get('reason')}" for w in report.warnings
        )
        return data, text
    with _reading(args) as (project, conn):
        _check_export_target(project, args.file, overwrite=args.overwrite)
        count = export_decisions(conn, args.file)
    return {"project": project.name, "exported": count, "file": str(args.file)}, (
        f"Exported {count} decision(s) to {args.file}."
    )


def _check_export_target(project: Project, target: Path, *, overwrite: bool) -> None:
    """Refuse targets that would replace a project's own files or a source image."""
    resolved = target.resolve()
    inside_project = resolved.is_relative_to(project.root)
    if (inside_project and not resolved.is_relative_to(project.folder("exports"))) or (
        resolved.is_relative_to(project.source.resolve())
    ):
        raise WorkbenchError(
            f"{target} lies inside project '{project.name}' or its source folder; export to "
            f"{project.folder('exports')} or a folder outside the project.",
            code="unsafe_path",
        )
    if resolved.is_dir():
        raise WorkbenchError(f"{target} is a folder; give a file name.", code="invalid_input")
    if resolved.exists() and not overwrite:
        raise WorkbenchError(
            f"{target} already exists; choose another name or pass --overwrite.",
            code="invalid_input",
        )


def cmd_doctor(args: argparse.Namespace) -> Result:
    from workbench.core import doctor

    if args.repair:
        with _writing(args, "workbench doctor --repair") as (project, conn):
            report = doctor.repair(project, conn)
    else:
        with _reading(args) as (project, conn):
            report = doctor.check(project, conn)
    data = report.to_dict()
    findings = data.get("findings", [])
    lines = [f"repaired: {line}" for line in data.get("repaired", [])]
    lines.append(
        f"{'clean' if data.get('clean') else 'problems found'}: {len(findings)} finding(s)"
    )
    lines += [f"  [{f['kind']}] {f['message']}" for f in findings]
    # Problems left over make the command fail, so scripts can act on it.
    return data, "\n".join(lines), 0 if data.get("clean") else 1


def cmd_report(args: argparse.Namespace) -> Result:
    from workbench.core.reports import performance_report

    with _reading(args) as (project, conn):
        rep = performance_report(conn, project.name)

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 100:.1f}%"

    text = (
        f"AI performance for {project.name}: {rep['decisions']} decision(s)\n"
        f"  selection accuracy {pct(rep['selection_accuracy'])} ({rep['selection_correct']} correct)\n"
        f"  crop accuracy      {pct(rep['crop_accuracy'])} ({rep['crop_correct']} of "
        f"{rep['decisions_with_both_crops']} with both crops)\n"
        f"  actions            " + ", ".join(f"{k} {v}" for k, v in rep["by_action"].items())
    )
    return rep, text


def cmd_undo(args: argparse.Namespace) -> Result:
    from workbench.core.finalize import undo_last

    with _writing(args, "workbench undo") as (project, conn):
        labels = undo_last(project, conn, args.count)
    text = "\n".join(f"Undid: {label}" for label in labels) or "Nothing to undo."
    return {"project": project.name, "undone": labels}, text


def cmd_predict(args: argparse.Namespace) -> Result:
    from workbench.core.thumbs import ThumbnailCache, thumbs_dir
    from workbench.ml.features import FeatureStore
    from workbench.ml.predict import MAX_GROUP, Predictor

    images: list[Path] = args.images
    if len(images) > MAX_GROUP:
        raise WorkbenchError(
            f"A group has 1 to {MAX_GROUP} images; {len(images)} were given.", code="invalid_input"
        )
    for image in images:
        if not image.is_file():
            raise WorkbenchError(
                f"Image {image} does not exist or is not a file.", code="invalid_input"
            )
    with _reading(args) as (project, conn):
        predictor = Predictor(
            project.models_dir,
            thumbs=ThumbnailCache(thumbs_dir(project)),
            feature_store_factory=lambda: FeatureStore(conn),
        )
        pick = predictor.pick(images)
    for index, reason in sorted(pick.unreadable.items()):
        _log(f"warning: image {index + 1}: {reason} It scores 0.")
    lines = []
    for i, (image, score) in enumerate(zip(images, pick.scores, strict=True)):
        mark = ">" if i == pick.selected_index and i not in pick.unreadable else " "
        note = "  (unreadable)" if i in pick.unreadable else ""
        lines.append(f"{mark} {i + 1}  {score:6.3f}  {image}{note}")
    crop = (
        "none"
        if pick.crop is None
        else "[" + ", ".join(f"{v:.3f}" for v in pick.crop.to_list()) + "]"
    )
    if pick.crop is not None and pick.crop_confidence is not None:
        crop += f" (confidence {pick.crop_confidence:.2f})"
    lines.append(f"pick {pick.selected_index + 1}, confidence {pick.confidence:.2f}; crop {crop}")
    lines.append(f"models: ranker {pick.versions['ranker']}, crop {pick.versions['crop']}")
    return pick.to_dict(), "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> Result:
    from workbench.core.demo import generate_demo

    summary = generate_demo(_store(args), args.name, groups=args.groups, plates=args.plates)
    data = summary.to_dict() if hasattr(summary, "to_dict") else dict(vars(summary))
    data = json.loads(json.dumps(data, default=str))
    return data, f"Demo project '{args.name}' ready. Open it with: workbench-gui {args.name}"


COMMANDS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "init": cmd_init,
    "scan": cmd_scan,
    "status": cmd_status,
    "groups": cmd_groups,
    "decisions": cmd_decisions,
    "doctor": cmd_doctor,
    "report": cmd_report,
    "undo": cmd_undo,
    "predict": cmd_predict,
    "demo": cmd_demo,
}


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
    parser = build_parser()
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
        result = COMMANDS[args.command](args)
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


if __name__ == "__main__":
    raise SystemExit(main())
