"""Plate commands: `plates import|export|check` and `ocr` (read plate crops with an engine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.common import (
    CommandAdder,
    Handler,
    Parser,
    Result,
    add_common,
    log,
    reading,
    store,
    writing,
)
from workbench.core.export_target import check_export_target
from workbench.core.plates import crop_folders

FORMATS = ("labels-txt", "fast-plate-ocr", "paddleocr")
ENGINES = ("auto", "crnn", "rapidocr", "paddleocr")


def register(command: CommandAdder) -> dict[str, Handler]:
    """Declare `plates` and `ocr`; returns their handlers."""
    p = command("plates", "import, export and check plate labels")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser, required=True)
    q = sub.add_parser("import", help="add a crops folder, or import labels.txt / a CSV",
                       description="DIR: register a folder of plate crops (and import its "
                       "labels.txt); FILE: import labels (PATH<TAB>TEXT lines, or an "
                       "image_path,plate_text CSV).")  # fmt: skip
    add_common(q, top=False)
    q.add_argument("name")
    q.add_argument("source", type=Path, metavar="DIR|labels.txt")
    q.add_argument("--replace", action="store_true",
                   help="imported labels replace different ones already in the project")  # fmt: skip
    q = sub.add_parser("export", help="export labels (labels.txt is appended to)",
                       description="labels-txt appends to OUT and never rewrites a line; "
                       "fast-plate-ocr writes a CSV; paddleocr fills a new folder.")  # fmt: skip
    add_common(q, top=False)
    q.add_argument("name")
    q.add_argument("--format", choices=FORMATS, required=True)
    q.add_argument("out", type=Path, metavar="OUT")
    q.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    q = sub.add_parser("check", help="list labels that look like signs, not plates")
    add_common(q, top=False)
    q.add_argument("name")

    p = command("ocr", "read plate crops with an OCR engine (no trained model needed)")
    p.add_argument("name")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG")
    p.add_argument("--engine", choices=ENGINES, default="auto")
    return {"plates": cmd_plates, "ocr": cmd_ocr}


def cmd_plates(args: argparse.Namespace) -> Result:
    if args.action == "import":
        return _import(args)
    if args.action == "export":
        return _export(args)
    return _check(args)


def _lines(items: list[dict], kind: str) -> str:  # type: ignore[type-arg]
    shown = [f"\n  {kind} line {i['line']}: {i['reason']}" for i in items[:50]]
    more = [f"\n  ... and {len(items) - 50} more"] if len(items) > 50 else []
    return "".join(shown + more)


def _import(args: argparse.Namespace) -> Result:
    from workbench.core.plates_io import import_labels

    with writing(args, "workbench plates import") as (project, conn):
        report = import_labels(project, conn, args.source, replace=args.replace)
    data = {"project": project.name, **report.to_dict()}
    parts = []
    if report.folder is not None:
        parts.append(f"Crop folder {report.folder} added ({report.crops_found} crops).")
    parts.append(f"Imported {report.imported} label(s); {report.unchanged} unchanged, "
                 f"{report.kept} kept as they were; {len(report.errors)} line(s) left out.")  # fmt: skip
    text = " ".join(parts) + _lines(report.errors, "error") + _lines(report.warnings, "warning")
    return data, text


def _export(args: argparse.Namespace) -> Result:
    from workbench.core import plates_io

    with reading(args) as (project, conn):
        target = check_export_target(
            store(args),
            project,
            args.out,
            replace=args.overwrite,
            append=args.format == "labels-txt",
            folder=args.format == "paddleocr",
            extra_protected=crop_folders(project, conn),
        )
        if args.format == "labels-txt":
            report = plates_io.export_labels_txt(conn, target)
        elif args.format == "fast-plate-ocr":
            report = plates_io.export_fast_plate_ocr(conn, target, overwrite=args.overwrite)
        else:
            report = plates_io.export_paddleocr(conn, target)
    data = {"project": project.name, "format": args.format, **report.to_dict()}
    text = f"Wrote {report.written} label(s) to {target} ({args.format})."
    if report.already_there:
        text += f" {report.already_there} crop(s) were already in the file"
        text += f", {len(report.differing)} of them with another text (left as they are)." if (
            report.differing) else "."  # fmt: skip
    if report.missing:
        text += f" {len(report.missing)} crop file(s) are missing and were left out."
    if report.unwritable:
        text += f" {len(report.unwritable)} path(s) hold a tab or line break and were left out."
    return data, text


def _check(args: argparse.Namespace) -> Result:
    from workbench.core.plates import LabelStore, plate_settings, suspicious_labels

    with reading(args) as (project, conn):
        settings = plate_settings(project)
        labels = LabelStore(conn).all()
    found = suspicious_labels(labels.values(), settings.sign_words)
    data = {"project": project.name, "labels": len(labels), "sign_words": list(settings.sign_words),
            "suspicious": [s.to_dict() for s in found]}  # fmt: skip
    lines = [f"{s.text:<12} {', '.join(s.reasons):<40} {s.image_path}" for s in found]
    head = f"{len(found)} of {len(labels)} label(s) look like signs, not plates"
    text = head + (":\n" + "\n".join(lines) if lines else ".")
    if found:
        text += f"\nCorrect them in review mode: workbench-gui {project.name} --review"
    # Like doctor: findings make the command fail, so scripts can act on them.
    return data, text, 1 if found else 0


def cmd_ocr(args: argparse.Namespace) -> Result:
    from workbench.core.plates import plate_settings
    from workbench.ml.ocr.engines import shared_engines
    from workbench.ml.predict import Predictor

    project = store(args).open(args.name)
    paddle = plate_settings(project).paddleocr_dir
    shared_engines(project.models_dir, paddle).get(args.engine)  # load first: ms excludes it
    readings = Predictor(project.models_dir).read_plates(
        args.images, args.engine, paddleocr_dir=paddle
    )
    results = [r.to_dict() for r in readings]  # type: ignore[attr-defined]
    for r in results:
        if r["error"]:
            log(f"warning: {r['error']}")
    lines = [
        f"{r['text'] or '-':<10} {r['confidence']:.2f}  {r['ms']:7.1f} ms  {r['image']}"
        + (f"  ({r['error']})" if r["error"] else "")
        for r in results
    ]
    if results:
        lines.append(f"engine {results[0]['engine']} {results[0]['model_version']}")
    failed = all(r["error"] for r in results)
    return {"results": results}, "\n".join(lines), 1 if failed else 0
