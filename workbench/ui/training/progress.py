"""Where a training run is, in words and seconds (no Qt): stage, step, elapsed, time left.

The job reports (stage, step, total) lines; the time left is estimated from the current
stage's own pace (steps per second since the stage began), which is what the user can
check against the progress bar. Before the second report of a stage there is no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGE_WORDS = {
    "data": "reading the decisions",
    "features": "reading image features",
    "training": "training",
    "evaluating": "measuring on held-out data",
    "export": "saving the model",
}


def clock(seconds: float) -> str:
    """0:07, 2:05, 1:02:05."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class RunProgress:
    """The state of the current run: which kind (n of m), its stage and step, its clocks."""

    kind: str
    title: str
    index: int = 1
    count: int = 1
    began: float = 0.0
    stage: str = "starting"
    step: int = 0
    total: int = 0
    message: str = ""
    stage_began: float = 0.0
    stage_first_step: tuple[float, int] | None = None  # (time, step) of the stage's first report
    metrics: dict[str, float] = field(default_factory=dict)

    def update(self, item: dict[str, Any], now: float) -> None:
        """Apply one progress line of the job runner."""
        stage = str(item.get("stage") or self.stage)
        step, total = _int(item.get("step")), _int(item.get("total"))
        if stage != self.stage:
            self.stage, self.stage_began, self.stage_first_step = stage, now, None
        if self.stage_first_step is None and total > 0:
            self.stage_first_step = (now, step)
        self.step, self.total = step, total
        self.message = str(item.get("message") or "")
        metrics = item.get("metrics")
        if isinstance(metrics, dict) and metrics:
            self.metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float)}

    def fraction(self) -> float | None:
        """The stage's fraction done, None when the stage has no known length."""
        if self.total <= 0:
            return None
        return min(1.0, max(0.0, self.step / self.total))

    def seconds_left(self, now: float) -> float | None:
        """The stage's remaining time at its pace so far, or None before there is a pace."""
        if self.stage_first_step is None or self.total <= 0:
            return None
        t0, s0 = self.stage_first_step
        done, spent = self.step - s0, now - t0
        if done <= 0 or spent <= 0.2:
            return None
        return (self.total - self.step) * spent / done

    def headline(self) -> str:
        """E.g. "Training the ranker (1 of 3): training, epoch 40 of 300"."""
        which = f" ({self.index} of {self.count})" if self.count > 1 else ""
        what = STAGE_WORDS.get(self.stage, self.stage)
        if self.stage == "training" and self.total > 1:
            what = f"training, epoch {self.step} of {self.total}"
        elif self.total > 0:
            what = f"{what}, {self.step} of {self.total}"
        return f"Training the {self.title[:1].lower() + self.title[1:]}{which}: {what}"

    def times(self, now: float) -> str:
        """E.g. "Elapsed 0:12 · about 0:30 left in this stage"."""
        text = f"Elapsed {clock(now - self.began)}"
        left = self.seconds_left(now)
        if left is not None:
            text += f"   ·   about {clock(left)} left in this stage"
        return text


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
