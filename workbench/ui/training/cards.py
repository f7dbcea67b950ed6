"""The training view's cards: a status card per model kind and a result card per run.

A status card (seed 000's "Smart Crop Model Status") says which version serves, when it
was trained and on how much, what it measured on held-out data, what it learned (smart
crop) and whether the kind can be retrained now. A result card puts a run's new version
beside the old champion on the same held-out split, says whether it was promoted, and
offers Promote / Roll back by hand. Cards hold no state but what they show; their
buttons emit the kind (and version) for the view to act on.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from workbench.ml.jobs import JobResult
from workbench.ui.training.status import (
    BASELINE_NAMES,
    PURPOSES,
    TITLES,
    ModelStatus,
    format_metric,
    headline,
    learned_text,
    local_time,
    metric_name,
    metrics_text,
    readiness_text,
    samples_text,
)

STATUS_WORDS = {
    "promoted": "promoted: the new champion",
    "kept": "kept: the champion stays",
    "not_ready": "not trained: not enough data",
    "cancelled": "cancelled",
    "failed": "failed",
}


def _label(parent: QWidget, name: str, text: str = "", *, wrap: bool = True) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _set_state(widget: QWidget, state: str) -> None:
    """Re-style a widget after its `state` property changed (the style sheet keys on it)."""
    widget.setProperty("state", state)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class StatusCard(QFrame):
    """One model kind: champion, trained when and on what, held-out metrics, readiness."""

    retrainClicked = Signal(str)  # kind
    rollbackClicked = Signal(str)  # kind

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.status: ModelStatus | None = None
        self.setObjectName(f"modelCard_{kind}")
        self.setProperty("card", True)
        self.title = _label(self, "cardTitle", TITLES.get(kind, kind), wrap=False)
        self.badge = _label(self, "cardBadge", "…", wrap=False)
        self.purpose = _label(self, "cardPurpose", PURPOSES.get(kind, ""))
        self.trained = _label(self, "cardLine")
        self.metrics = _label(self, "cardLine")
        self.learned = _label(self, "cardLearned")
        self.readiness = _label(self, "cardReadiness", "Reading the project…")
        self.retrain = QPushButton("Retrain", self)
        self.retrain.setObjectName(f"retrain_{kind}")
        self.retrain.setEnabled(False)
        self.retrain.clicked.connect(lambda: self.retrainClicked.emit(self.kind))
        self.rollback = QPushButton("Roll back", self)
        self.rollback.setObjectName(f"rollback_{kind}")
        self.rollback.setToolTip("Serve the version that was champion before this one")
        self.rollback.clicked.connect(lambda: self.rollbackClicked.emit(self.kind))
        self.rollback.hide()
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.badge)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retrain)
        buttons.addWidget(self.rollback)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(4)
        layout.addLayout(head)
        layout.addWidget(self.purpose)
        layout.addSpacing(2)
        for label in (self.trained, self.metrics, self.learned, self.readiness):
            layout.addWidget(label)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_status(self, status: ModelStatus, *, running: bool) -> None:
        """Show a freshly read status; `running`: a training is under way (no new one now)."""
        self.status = status
        if status.problem is not None:
            self.badge.setText("not available")
            _set_state(self.badge, "problem")
            self.trained.setText("")
            self.metrics.setText("")
            self.learned.setText("")
            self.readiness.setText(f"Not available: {status.problem}")
            _set_state(self.readiness, "problem")
        else:
            if status.version:
                self.badge.setText(f"champion {status.version}")
                _set_state(self.badge, "champion")
                self.trained.setText(f"Trained {local_time(status.trained_at)} on "
                                     f"{samples_text(status.samples)}")  # fmt: skip
                self.metrics.setText(self._metrics_line(status))
            else:
                self.badge.setText("no model yet")
                _set_state(self.badge, "none")
                kept = ""
                if status.versions:
                    kept = f"; {', '.join(status.versions[-3:])} kept, not promoted"
                fallback = ("rapidocr (no trained model) reads plates" if self.kind == "ocr"
                            else "The built-in heuristic serves")  # fmt: skip
                self.trained.setText(f"{fallback}{kept}.")
                self.metrics.setText("")
            self.learned.setText(learned_text(status.learned, status.learned_from,
                                              serving=bool(status.version)) if status.learned else "")  # fmt: skip
            r = status.readiness
            self.readiness.setText(readiness_text(r) if r else "")
            _set_state(self.readiness, "ready" if status.ready else "waiting")
        for label in (self.trained, self.metrics, self.learned):
            label.setVisible(bool(label.text()))
        self.rollback.setVisible(bool(status.version))
        self.set_running(running)

    def set_running(self, running: bool) -> None:
        """Buttons are off while a training runs or a model change is being written."""
        ready = self.status is not None and self.status.ready
        self.retrain.setEnabled(ready and not running)
        self.retrain.setToolTip(
            "A training is running" if running else
            f"Train a new {TITLES.get(self.kind, self.kind).lower()} version now" if ready else
            "Not enough data yet (see above)"
        )  # fmt: skip
        self.rollback.setEnabled(not running)

    @staticmethod
    def _metrics_line(status: ModelStatus) -> str:
        text = metrics_text(status.metrics, status.key)
        base = status.baselines.get("heuristic")
        if isinstance(base, dict) and status.key in base:
            text += f" (heuristic {format_metric(status.key or '', base[status.key])})"
        return f"Held-out: {text}" if text else "No held-out metrics recorded."


class ResultCard(QFrame):
    """What one run did: the new version against the old champion, Promote / Roll back."""

    promoteClicked = Signal(str, str)  # kind, version
    rollbackClicked = Signal(str)  # kind
    showLogClicked = Signal()

    def __init__(self, result: JobResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = result
        self.champion = result.champion
        self.setObjectName(f"resultCard_{result.kind}")
        self.setProperty("card", True)
        title = TITLES.get(result.kind, result.kind)
        version = f" {result.version}" if result.version else ""
        self.header = _label(self, "resultHeader",
                             f"{title}{version}: {STATUS_WORDS.get(result.status, result.status)}")  # fmt: skip
        _set_state(self.header, result.status)
        self.message = _label(self, "resultMessage", result.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(5)
        layout.addWidget(self.header)
        layout.addWidget(self.message)
        if result.metrics:
            layout.addLayout(self._comparison(result))
        if result.samples:
            seconds = f" in {result.seconds:.1f} s" if result.seconds else ""
            layout.addWidget(_label(self, "resultSamples",
                                    f"Trained on {samples_text(result.samples)}{seconds}."))  # fmt: skip
        buttons = QHBoxLayout()
        self.promote = QPushButton(f"Make {result.version} the champion", self)
        self.promote.setObjectName(f"promote_{result.kind}")
        self.promote.clicked.connect(lambda: self.promoteClicked.emit(result.kind, result.version or ""))
        self.rollback = QPushButton("Roll back", self)
        self.rollback.setObjectName(f"resultRollback_{result.kind}")
        self.rollback.clicked.connect(lambda: self.rollbackClicked.emit(result.kind))
        self.show_log = QPushButton("Show the log", self)
        self.show_log.setObjectName("showLog")
        self.show_log.clicked.connect(self.showLogClicked.emit)
        for button in (self.promote, self.rollback, self.show_log):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.show_log.setVisible(result.status == "failed")
        self.set_champion(result.champion)

    def set_champion(self, champion: str | None, *, busy: bool = False) -> None:
        """Show the buttons that fit who is champion now (after a promote or a roll back)."""
        self.champion = champion
        version = self.result.version
        self.promote.setVisible(bool(version) and champion != version)
        self.rollback.setVisible(bool(version) and champion == version)
        self.rollback.setText("Roll back" + (f" to {self.result.previous_champion}"
                                             if self.result.previous_champion else " to the heuristic"))  # fmt: skip
        self.promote.setEnabled(not busy)
        self.rollback.setEnabled(not busy)

    def _comparison(self, result: JobResult) -> QGridLayout:
        """Rows of metrics; columns: the new version, the old champion, the baselines."""
        columns: list[tuple[str, dict[str, Any]]] = [(f"new {result.version or ''}".strip(), result.metrics)]
        if result.champion_metrics:
            columns.append((f"champion {result.previous_champion or ''}".strip(), result.champion_metrics))
        heuristic = result.baselines.get("heuristic")
        if isinstance(heuristic, dict):
            columns.append(("heuristic", heuristic))
        others = [f"{BASELINE_NAMES.get(n, n)}: {metrics_text(v, _key_of(result))}"
                  for n, v in result.baselines.items() if isinstance(v, dict)]  # fmt: skip
        if others:
            self.setToolTip("On the same held-out data:\n" + "\n".join(others))
        rows = headline(result.metrics, _key_of(result))
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(2)
        for c, (name, _) in enumerate(columns, start=1):
            grid.addWidget(_label(self, "gridHead", name, wrap=False), 0, c)
        for r, (metric, _) in enumerate(rows, start=1):
            grid.addWidget(_label(self, "gridMetric", metric_name(metric), wrap=False), r, 0)
            for c, (_, values) in enumerate(columns, start=1):
                cell = _label(self, "gridNew" if c == 1 else "gridCell",
                              format_metric(metric, values.get(metric)), wrap=False)  # fmt: skip
                grid.addWidget(cell, r, c)
        grid.setColumnStretch(len(columns) + 1, 1)
        return grid


def _key_of(result: JobResult) -> str | None:
    """The deciding metric of a result's kind (what training compares champions on)."""
    return {"ranker": "top1", "crop": "mean_iou", "smartcrop": "mean_iou"}.get(result.kind)
