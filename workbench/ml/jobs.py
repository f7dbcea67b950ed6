"""The job protocol: every training or batch job is `run(config, progress, should_stop)`.

A job is a plain function. It reads its JobConfig (plain JSON-able data, so the same
config can cross into a child process), reports structured Progress (stage, step,
total, metrics) through `progress`, polls `should_stop` between steps and raises
Cancelled when it returns True, and returns a JobResult. Logs go through `logging`.
It fixes its random seed from the config, so a rerun on the same data gives the
same model.

The CLI and the tests call `run_job` in-process; the GUI runs the same function in a
supervised child process (`python -m workbench.ml.jobrunner`), which turns progress,
logs and the result into JSON lines.

Job kinds are looked up lazily in JOBS ("module:function"), so importing this module
imports no torch; a kind's module is imported only when that kind runs.
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

log = logging.getLogger(__name__)

# Model kinds in the order `train all` runs them (cheap first: a slow one never
# delays the quick wins). Each is trained by the function named here.
JOBS: dict[str, str] = {
    "smartcrop": "workbench.ml.training.smartcrop:run",
    "ranker": "workbench.ml.training.ranker:run",
    "crop": "workbench.ml.training.crop:run",
    "ocr": "workbench.ml.ocr.train:run",
}
MODEL_KINDS: tuple[str, ...] = ("ranker", "crop", "smartcrop", "ocr")
DEVICES = ("cpu", "cuda")


class Cancelled(WorkbenchError):
    """The job was asked to stop; nothing it had started is kept."""

    code = "cancelled"


class NotReady(WorkbenchError):
    """There is not enough data to train this model yet (the message says what is missing)."""

    code = "not_ready"


@dataclass(frozen=True)
class Progress:
    """One progress report: `stage` (e.g. "features", "training", "evaluating", "export"),
    `step` of `total` in that stage (total 0 when unknown), and metrics so far (e.g. the
    epoch's loss and held-out accuracy, for live curves)."""

    stage: str
    step: int = 0
    total: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class JobConfig:
    """What a job needs, as plain data: which project, which model, how to train it.

    `extra` holds kind-specific settings (e.g. {"synthetic": 20000} for ocr); unknown
    keys are ignored by the kinds that do not read them.
    """

    kind: str
    project: str
    projects_dir: str
    models_dir: str
    epochs: int | None = None  # None: the kind's default
    device: str = "cpu"
    seed: int = 0
    promote: bool = True  # False: register the version but never make it champion
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        if not isinstance(data, dict):
            raise WorkbenchError("A job config must be a JSON object.", code="invalid_input")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WorkbenchError(
                f"Unknown job setting(s): {', '.join(unknown)}.", code="invalid_input"
            )
        try:
            config = cls(**data)
        except TypeError as exc:
            raise WorkbenchError(f"Bad job config: {exc}.", code="invalid_input") from None
        config.validate()
        return config

    def validate(self) -> None:
        if self.kind not in JOBS:
            raise WorkbenchError(
                f"Unknown model kind {self.kind!r}; kinds are {', '.join(MODEL_KINDS)}.",
                code="invalid_input",
            )
        if self.device not in DEVICES:
            raise WorkbenchError(
                f"Unknown device {self.device!r}; use cpu or cuda.", code="invalid_input"
            )
        if self.epochs is not None and (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int)
            or not 1 <= self.epochs <= 10_000
        ):
            raise WorkbenchError(
                "Epochs must be a whole number from 1 to 10,000.", code="invalid_input"
            )

    def open_project(self) -> Any:
        """The project this job trains for (core.project.Project)."""
        from workbench.core.project import ProjectStore

        return ProjectStore(Path(self.projects_dir), Path(self.models_dir)).open(self.project)


@dataclass
class JobResult:
    """What a job did. `status` is one of:

    promoted   a new version was trained and is now the champion
    kept       a new version was trained; the champion stayed (it was not beaten)
    not_ready  not enough data; `message` says what is missing
    cancelled  stopped on request; no version was written
    failed     an error; `message` is the sentence, nothing partial was kept
    """

    kind: str
    status: str
    message: str = ""
    version: str | None = None  # the version trained, "v<N>"
    champion: str | None = None  # the champion after the job
    previous_champion: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the new version's, held-out
    champion_metrics: dict[str, Any] = field(default_factory=dict)  # the old champion's, same data
    baselines: dict[str, Any] = field(default_factory=dict)  # heuristic, random, ... same data
    samples: dict[str, int] = field(default_factory=dict)  # train / held-out counts
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def check_stop(should_stop: StopFn) -> None:
    """Raises Cancelled when the job was asked to stop."""
    if should_stop():
        raise Cancelled("Training was cancelled; nothing was changed.")


def seed_everything(seed: int) -> None:
    """Fixes python's, numpy's and (when imported) torch's random state."""
    import sys

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def job_function(kind: str) -> Callable[[JobConfig, ProgressFn, StopFn], JobResult]:
    """The run function of a model kind (imported on first use)."""
    if kind not in JOBS:
        raise WorkbenchError(
            f"Unknown model kind {kind!r}; kinds are {', '.join(MODEL_KINDS)}.",
            code="invalid_input",
        )
    module_name, _, name = JOBS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkbenchError(
            f"Cannot train {kind}: {exc}. Install the training dependencies "
            "(pip install -e .) and try again.",
            code="unavailable",
        ) from None
    fn: Callable[[JobConfig, ProgressFn, StopFn], JobResult] = getattr(module, name)
    return fn


def run_job(
    config: JobConfig,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> JobResult:
    """Runs one job and always returns its JobResult (never raises for a job's failure).

    Cancelled, NotReady and any failure come back as a result with that status and a
    sentence; the registry guarantees nothing partial was kept. Only MemoryError and
    KeyboardInterrupt propagate.
    """
    config.validate()
    progress = progress or (lambda p: None)
    should_stop = should_stop or (lambda: False)
    began = time.monotonic()
    try:
        fn = job_function(config.kind)
        check_stop(should_stop)
        result = fn(config, progress, should_stop)
    except Cancelled as exc:
        result = JobResult(config.kind, "cancelled", exc.message)
    except NotReady as exc:
        result = JobResult(config.kind, "not_ready", exc.message)
    except WorkbenchError as exc:
        result = JobResult(config.kind, "failed", exc.message)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug or a library failure in one model: report, go on
        log.exception("training %s failed", config.kind)
        result = JobResult(config.kind, "failed", f"Training {config.kind} failed: {exc}.")
    result.seconds = round(time.monotonic() - began, 3)
    return result


def run_all(
    base: JobConfig,
    kinds: list[str] | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> list[JobResult]:
    """The one-click retrain: every kind in turn; one kind's failure never blocks the rest.

    A kind that is not ready is reported as such (with why) and skipped. After a
    cancel, the kinds not yet started are reported cancelled too.
    """
    should_stop = should_stop or (lambda: False)
    results = []
    for kind in kinds or list(JOBS):
        if should_stop():
            results.append(JobResult(kind, "cancelled", "Not started: training was cancelled."))
            continue
        config = JobConfig(**{**base.to_dict(), "kind": kind})
        try:
            config.validate()
        except WorkbenchError as exc:  # an unknown kind in the list: report it, go on
            results.append(JobResult(kind, "failed", exc.message))
            continue
        results.append(run_job(config, progress, should_stop))
    return results
