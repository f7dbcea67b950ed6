"""`workbench train` and `workbench models`: retrain from the decisions, list and pick versions."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from types import FrameType
from typing import Any

from workbench.cli.common import (
    CommandAdder,
    Handler,
    Parser,
    Result,
    add_common,
    count,
    log,
    store,
)
from workbench.core.errors import WorkbenchError

TRAIN_KINDS = ("ranker", "crop", "smartcrop", "ocr", "all")


def register(command: CommandAdder) -> dict[str, Handler]:
    """Declare `train` and `models`; returns their handlers."""
    p = command("train", "train a model kind from the project's decisions (all: every ready one)")
    p.add_argument("kind", choices=TRAIN_KINDS)
    p.add_argument("name")
    p.add_argument("--epochs", type=count, help="training epochs (default: the kind's own)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--synthetic", type=count, help="ocr: synthetic plates for pretraining")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-promote", action="store_true",
                   help="register the new version but never make it champion")  # fmt: skip

    p = command("models", "list model versions and readiness; promote or roll back a champion")
    p.add_argument("name")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    q = sub.add_parser("promote", help="make a version the champion")
    add_common(q, top=False)
    q.add_argument("kind", choices=("ranker", "crop", "smartcrop", "ocr"))
    q.add_argument("version", metavar="VERSION", help="v1, v2, ...")
    q = sub.add_parser("rollback", help="go back to the previous champion")
    add_common(q, top=False)
    q.add_argument("kind", choices=("ranker", "crop", "smartcrop", "ocr"))
    return {"train": cmd_train, "models": cmd_models}


class _StopOnSignal:
    """Ctrl+C (or SIGTERM) asks the job to stop at its next check; a second one aborts."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        log("Stopping after the current step (press Ctrl+C again to abort)...")


def _progress_printer() -> Any:
    from workbench.ml.jobs import Progress

    last = {"at": 0.0}
    stage = {"name": ""}

    def show(p: Progress) -> None:
        now = time.monotonic()
        if p.stage == stage["name"] and now - last["at"] < 1.0 and p.step != p.total:
            return
        last["at"], stage["name"] = now, p.stage
        where = f" {p.step}/{p.total}" if p.total else ""
        numbers = ", ".join(f"{k} {v:g}" for k, v in p.metrics.items() if k != "epoch")
        log(f"  {p.stage}{where}" + (f": {numbers}" if numbers else "") +
            (f" ({p.message})" if p.message and not numbers else ""))  # fmt: skip

    return show


def _describe(r: Any) -> str:
    lines = [f"{r.kind}: {r.status}" + (f" {r.version}" if r.version else "") + f" - {r.message}"]
    if r.metrics:
        lines.append("  held-out: " + _numbers(r.metrics))
    if r.champion_metrics:
        lines.append(f"  champion {r.previous_champion}: " + _numbers(r.champion_metrics))
    for name, m in (r.baselines or {}).items():
        lines.append(f"  {name}: " + _numbers(m))
    if r.samples:
        lines.append(f"  samples: {r.samples.get('train', 0)} train, "
                     f"{r.samples.get('held_out', 0)} held out; {r.seconds:.1f} s")  # fmt: skip
    return "\n".join(lines)


def _numbers(m: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}"
                     for k, v in m.items())  # fmt: skip


def cmd_train(args: argparse.Namespace) -> Result:
    from workbench.ml.jobs import JOBS, JobConfig, run_all

    project = store(args).open(args.name)  # a clear error for a missing project, first
    extra = {"synthetic": args.synthetic} if args.synthetic else {}
    base = JobConfig(
        kind="ranker" if args.kind == "all" else args.kind, project=project.name,
        projects_dir=str(project.root.parent), models_dir=str(project.models_root),
        epochs=args.epochs, device=args.device, seed=args.seed, promote=not args.no_promote,
        extra=extra,
    )  # fmt: skip
    base.validate()
    kinds = list(JOBS) if args.kind == "all" else [args.kind]
    began = time.monotonic()
    with _StopOnSignal() as stop:
        printer = _progress_printer()

        def progress(p: Any) -> None:
            printer(p)

        results = []
        for kind in kinds:
            log(f"Training {kind}...")
            results.extend(run_all(base, [kind], progress, stop.event.is_set))
    seconds = round(time.monotonic() - began, 3)
    doc = {"results": [r.to_dict() for r in results], "seconds": seconds}
    text = "\n".join(_describe(r) for r in results) + f"\n{seconds:.1f} s in all"
    failed = [r for r in results if r.status in ("failed", "cancelled")]
    if args.kind != "all" and results[0].status == "not_ready":
        failed = results
    return (doc, text, 1) if failed else (doc, text)


def cmd_models(args: argparse.Namespace) -> Result:
    from workbench.ml.jobs import MODEL_KINDS
    from workbench.ml.registry import Registry

    project = store(args).open(args.name)
    registry = Registry(project.models_dir, db_path=project.db_path)
    action = getattr(args, "action", None)
    if action == "promote":
        info = registry.promote(args.kind, args.version, reason="manual")
        doc = {"kind": args.kind, "champion": info.version}
        return doc, f"{args.kind}: {info.version} is now the champion."
    if action == "rollback":
        before = registry.champion(args.kind)
        now = registry.rollback(args.kind)
        doc = {"kind": args.kind, "champion": now, "previous": before}
        what = now or "no trained model (the heuristic)"
        return doc, f"{args.kind}: rolled back from {before} to {what}."
    kinds: dict[str, Any] = {}
    lines = []
    conn = project.connect()
    try:
        for kind in MODEL_KINDS:
            champion = registry.champion(kind)
            versions = [v.to_dict() for v in registry.versions(kind)]
            try:
                from workbench.ml.training.data import readiness

                ready = readiness(project, conn, kind, registry).to_dict()
            except (WorkbenchError, ImportError) as exc:
                ready = {"kind": kind, "ready": False, "reason": getattr(exc, "message", str(exc))}
            kinds[kind] = {"champion": champion, "versions": versions, "readiness": ready}
            lines.append(f"{kind}: champion {champion or 'none'}; {ready['reason']}")
            for v in versions:
                mark = "*" if v["version"] == champion else " "
                held = v["metrics"].get("held_out", {})
                lines.append(f"  {mark} {v['version']}  {v['created_at']}  " + _numbers(held))
    finally:
        conn.close()
    return {"models": kinds}, "\n".join(lines)
