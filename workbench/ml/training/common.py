"""What every training job shares: its context, readiness checks, and registration with
champion gating. Torch-free (torch helpers are in nets.py).

Champion gating: a new version is compared with the current champion on the same
held-out samples (the champion is re-evaluated on today's held-out set, so the two
numbers are comparable). With no champion, it must beat what is served today instead
(the heuristic). It becomes champion only when it is strictly better on the kind's key
metric; otherwise it is kept as a version the user may promote by hand.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.timeutil import iso_utc
from workbench.ml.jobs import JobConfig, JobResult, NotReady, ProgressFn, StopFn
from workbench.ml.registry import HeldOutSplit, Registry, StagedVersion, data_hash
from workbench.ml.training.data import Dataset, attach_features, training_settings

log = logging.getLogger(__name__)


@dataclass
class Context:
    """An open training context: the project, a read connection, its registry and split."""

    project: Any
    conn: sqlite3.Connection
    registry: Registry
    split: HeldOutSplit
    minimums: dict[str, int]
    features: Callable[[Path], np.ndarray]


@contextlib.contextmanager
def open_context(config: JobConfig) -> Iterator[Context]:
    """Opens the project named by the config (no lock: training only reads decisions)."""
    from workbench.ml.training.data import feature_function

    project = config.open_project()
    conn = project.connect()
    try:
        registry = Registry(project.models_dir, db_path=project.db_path)
        registry.clean_staging(config.kind)
        yield Context(
            project=project,
            conn=conn,
            registry=registry,
            split=registry.split(),
            minimums=training_settings(project.root),
            features=feature_function(project, conn),
        )
    finally:
        conn.close()


def require(ctx: Context, kind: str, samples: list[Any], what: str) -> None:
    """Raises NotReady unless there are enough samples, and enough of them held out."""
    key = {"ranker": "ranker_groups"}.get(kind, f"{kind}_samples")
    need = ctx.minimums[f"min_{key}"]
    need_held = ctx.minimums[f"min_{kind}_held_out"]
    held = sum(1 for s in samples if s.held_out)
    if len(samples) < need:
        raise NotReady(
            f"The {kind} model needs at least {need} {what}; the project has {len(samples)}."
        )
    if held < need_held:
        raise NotReady(
            f"The {kind} model needs {need_held} {what} in the held-out split to be measured; "
            f"{held} of the {len(samples)} fall there. Decide more groups and try again."
        )
    if len(samples) - held < 1:
        raise NotReady(f"The {kind} model has no {what} left to train on.")


def load_dataset(
    ctx: Context,
    kind: str,
    loaded: tuple[list[Any], dict[str, int]],
    paths_of: Callable[[Any], list[Path]],
    what: str,
    progress: ProgressFn,
    should_stop: StopFn,
) -> Dataset:
    """The samples with their features, after checking there are enough before and after
    leaving out the unreadable ones (NotReady otherwise)."""
    samples, skipped = loaded
    require(ctx, kind, samples, what)
    ds = attach_features(samples, paths_of, ctx.features, progress, should_stop)
    ds.skipped.update(skipped)
    require(ctx, kind, ds.samples, f"readable {what}")
    return ds


def crop_records(ds: Dataset) -> list[dict[str, Any]]:
    """The exact training data of a crop model, for the data hash."""
    return [{"group_id": s.group_id, "box": s.box.to_list(), "held_out": s.held_out,
             "features": ds.vectors[s.path].round(5).tolist()} for s in ds.samples]  # fmt: skip


def ranker_records(ds: Dataset) -> list[dict[str, Any]]:
    return [{"group_id": s.group_id, "user_index": s.user_index, "weight": s.weight,
             "held_out": s.held_out,
             "features": [ds.vectors[p].round(5).tolist() for p in s.paths]}
            for s in ds.samples]  # fmt: skip


def better(
    new: dict[str, Any], old: dict[str, Any] | None, key: str, tie_break: str | None
) -> bool:
    """Whether `new` beats `old` on `key` (higher is better), `tie_break` deciding a tie."""
    if not old or key not in old:
        return True
    a, b = float(new.get(key, float("-inf"))), float(old[key])
    if abs(a - b) > 1e-9:
        return a > b
    if tie_break and tie_break in new and tie_break in old:
        return float(new[tie_break]) > float(old[tie_break]) + 1e-9
    return False


def register(
    ctx: Context,
    config: JobConfig,
    staged: StagedVersion,
    *,
    metrics: dict[str, Any],
    champion_metrics: dict[str, Any],
    baselines: dict[str, Any],
    dataset: Dataset,
    records: list[dict[str, Any]],
    serving: dict[str, Any],
    key: str,
    to_beat: dict[str, Any] | None,
    tie_break: str | None = None,
    summary: dict[str, Any] | None = None,
    curves: list[dict[str, float]] | None = None,
) -> JobResult:
    """Commits the staged version, promotes it if it wins, and returns the JobResult."""
    kind = config.kind
    previous = ctx.registry.champion(kind)
    samples = dataset.counts()
    info = ctx.registry.commit(
        staged,
        metrics={
            "held_out": metrics,
            "champion_held_out": champion_metrics,
            "baselines": baselines,
            "key": key,
            "summary": summary or {},
            "curves": curves or [],
        },  # fmt: skip
        data={
            "data_hash": data_hash(records),
            "samples": samples,
            "created_at": iso_utc(),
            "split_salt_sha": _short(ctx.split.salt),
            "held_out_fraction": ctx.split.fraction,
        },  # fmt: skip
        config=config.to_dict(),
        serving=serving,
    )
    opponent = champion_metrics if (previous and champion_metrics) else to_beat
    against = f"champion {previous}" if (previous and champion_metrics) else "the heuristic"
    wins = better(metrics, opponent, key, tie_break)
    new_value = metrics.get(key)
    old_value = (opponent or {}).get(key)
    if config.promote and wins:
        ctx.registry.promote(kind, info.version, reason=f"beat {against}")
        status, champion = "promoted", info.version  # type: str, str | None
        message = f"{kind} {info.version} is the new champion: {key} {new_value}" + (
            f" against {old_value} for {against}." if old_value is not None else "."
        )
    else:
        status, champion = "kept", previous
        why = ("promotion was not asked for" if not config.promote else
               f"it did not beat {against} ({key} {new_value} against {old_value})")  # fmt: skip
        message = f"{kind} {info.version} was saved but is not the champion: {why}."
    log.info(message)
    return JobResult(
        kind=kind, status=status, message=message, version=info.version, champion=champion,
        previous_champion=previous, metrics=metrics, champion_metrics=champion_metrics,
        baselines=baselines, samples=samples,
    )  # fmt: skip


def _short(salt: str) -> str:
    import hashlib

    return hashlib.sha256(salt.encode()).hexdigest()[:12]
