"""Project commands: init, scan, status, groups, decisions, doctor, report, undo, demo."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    CommandAdder,
    Handler,
    Parser,
    Result,
    add_common,
    count,
    log,
    reading,
    store,
    writing,
)
from workbench.core.export_target import check_export_target
from workbench.core.project import GROUP_BY, Project


def register(command: CommandAdder) -> dict[str, Handler]:
    """Declare the project commands; returns their handlers by name."""
    p = command("init", "create a project over a source folder and group its images")
    p.add_argument("name")
    p.add_argument("--source", type=Path, required=True, help="folder of images to review")
    p.add_argument("--group-by", choices=GROUP_BY, default="sequence")
    p.add_argument("--batch-size", type=count, default=100, help="groups per batch (default 100)")

    p = command("scan", "add new images from the project's source folder as groups")
    p.add_argument("name")

    p = command("status", "groups, decisions, pending crops, labels and models of a project")
    p.add_argument("name")

    p = command("groups", "list a project's groups with their image paths")
    p.add_argument("name")
    p.add_argument("--batch", type=count, default=None)
    p.add_argument("--limit", type=count, default=None)

    p = command("decisions", "import or export the seed's legacy decisions CSV")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser, required=True)
    for action, help_ in (("import", "import decisions from a CSV (all or nothing)"),
                          ("export", "export decisions to a CSV")):  # fmt: skip
        q = dsub.add_parser(action, help=help_, description=help_)
        add_common(q, top=False)
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
    p.add_argument("--count", type=count, default=1)

    p = command("demo", "generate a demo project with images, crops and plates")
    p.add_argument("--name", default="demo")
    p.add_argument("--groups", type=count, default=24)
    p.add_argument("--plates", type=count, default=30)
    p.add_argument("--earlier-batches", type=int, default=3, choices=range(0, 11), metavar="N",
                   help="batches decided and cropped the week before, to train on (default 3)")  # fmt: skip
    return {
        "init": cmd_init,
        "scan": cmd_scan,
        "status": cmd_status,
        "groups": cmd_groups,
        "decisions": cmd_decisions,
        "doctor": cmd_doctor,
        "report": cmd_report,
        "undo": cmd_undo,
        "demo": cmd_demo,
    }


def _scan(project: Project, conn: Any, *, quiet: bool) -> dict[str, Any]:
    from workbench.core.scan_store import scan_project

    def on_group(group_pk: int, group: Any) -> None:
        if not quiet and group_pk % 1000 == 0:
            log(f"  {group_pk} groups...")

    return scan_project(project, conn, on_group=on_group).to_dict()


def cmd_init(args: argparse.Namespace) -> Result:
    projects = store(args)
    project = projects.create(
        args.name, args.source, group_by=args.group_by, batch_size=args.batch_size
    )
    log(f"Created project '{project.name}' in {project.root}; scanning {project.source} ...")
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
    with writing(args, "workbench scan") as (project, conn):
        scan = _scan(project, conn, quiet=args.json)
    text = f"Added {scan.get('groups', 0)} group(s) of {scan.get('images', 0)} new image(s)."
    return {"project": project.name, "scan": scan}, text + _skipped_text(scan)


def cmd_status(args: argparse.Namespace) -> Result:
    from workbench.core.reports import project_status

    with reading(args) as (project, conn):
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

    with reading(args) as (project, conn):
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
        with writing(args, "workbench decisions import") as (project, conn):
            report = import_decisions(project, conn, args.file)
        data = {"project": project.name, "imported": report.imported, "warnings": report.warnings}
        text = f"Imported {report.imported} decision(s) from {args.file}."
        text += "".join(
            f"\n  warning line {w.get('line')}: {w.get('reason')}" for w in report.warnings
        )
        return data, text
    with reading(args) as (project, conn):
        check_export_target(store(args), project, args.file, replace=args.overwrite)
        count = export_decisions(conn, args.file)
    return {"project": project.name, "exported": count, "file": str(args.file)}, (
        f"Exported {count} decision(s) to {args.file}."
    )


def cmd_doctor(args: argparse.Namespace) -> Result:
    from workbench.core import doctor

    if args.repair:
        with writing(args, "workbench doctor --repair") as (project, conn):
            report = doctor.repair(project, conn)
    else:
        with reading(args) as (project, conn):
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

    with reading(args) as (project, conn):
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

    with writing(args, "workbench undo") as (project, conn):
        labels = undo_last(project, conn, args.count)
    text = "\n".join(f"Undid: {label}" for label in labels) or "Nothing to undo."
    return {"project": project.name, "undone": labels}, text


def cmd_demo(args: argparse.Namespace) -> Result:
    from workbench.core.demo import generate_demo

    summary = generate_demo(store(args), args.name, groups=args.groups, plates=args.plates,
                            history_batches=args.earlier_batches)  # fmt: skip
    data = summary.to_dict() if hasattr(summary, "to_dict") else dict(vars(summary))
    data = json.loads(json.dumps(data, default=str))
    return data, f"Demo project '{args.name}' ready. Open it with: workbench-gui {args.name}"
