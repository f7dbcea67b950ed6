"""The training view: a status card per model kind, one-click retrain, live progress and curves.

Each model kind trains in a child process (`python -m workbench.ml.jobrunner`, see
supervisor.py), one kind after another for "Retrain all that is ready"; the GUI never
imports torch and never waits on a job. Progress and log lines are stored as they come
and drawn on a 100 ms timer. When a run ends its result card appears (new version
against the old champion on the same held-out split, promoted or not, Promote / Roll
back by hand); a new champion is announced with `championChanged` and the predictors
the window registered are reloaded at once, so the next pick serves it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.project import Project
from workbench.ml.jobs import JOBS, MODEL_KINDS, JobConfig, JobResult
from workbench.ml.training.data import DEFAULT_EPOCHS
from workbench.ui.keys import KeyBinding, menu_actions
from workbench.ui.training.cards import ResultCard, StatusCard
from workbench.ui.training.curves import CurvesPanel
from workbench.ui.training.progress import RunProgress, clock
from workbench.ui.training.reload import warm_up
from workbench.ui.training.run_panel import LogPane, ResultsPanel, RunPanel
from workbench.ui.training.status import (
    TITLES,
    ModelStatus,
    noun,
    read_status,
    registry_for,
    results_sentence,
)
from workbench.ui.training.supervisor import KILL_AFTER_S, RunOutcome, TrainingRun, job_command
from workbench.ui.training.theme import STYLE
from workbench.ui.workers import Runner

log = logging.getLogger(__name__)

TICK_MS = 100  # how often progress, curves and the log are redrawn while a job runs
TRAIN_ORDER = tuple(JOBS)  # cheap kinds first, as the job runner orders them
IDLE_NOTE = (
    "Ctrl+Enter retrains every model with enough data, cheapest first, each in a process "
    "of its own: the window stays usable and Esc cancels without keeping anything. A new "
    "version becomes the champion only when it beats the current one on the same held-out "
    "data; you can promote or roll back by hand."
)


class TrainingView(QWidget):
    """The training panel. `command` replaces the job runner's argv prefix (tests);
    `job_settings` gives JobConfig fields per kind (e.g. {"ranker": {"epochs": 50}});
    `reloaders` are called with the kind, off the GUI thread, after a champion moved."""

    title = "Training"
    menu_title = "&Training"
    statusShown = Signal()  # the cards show a freshly read status
    runFinished = Signal(object)  # RunOutcome of one kind, after its result card is shown
    allFinished = Signal(list)  # every RunOutcome of the last start(), nothing is running
    championChanged = Signal(str)  # kind: the champion pointer was moved
    messageShown = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None, *,
                 command: Sequence[str] | None = None,
                 job_settings: dict[str, dict[str, Any]] | None = None,
                 kill_after_s: float = KILL_AFTER_S,
                 reloaders: Sequence[Callable[[str], object]] = ()) -> None:  # fmt: skip
        super().__init__(parent)
        self.setObjectName("trainingView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet(STYLE)
        self.project = project
        self.command = list(command) if command else None
        self.job_settings = dict(job_settings or {})
        self.kill_after_s = kill_after_s
        self.reloaders = list(reloaders)
        self.statuses: dict[str, ModelStatus] = {}
        self.run: TrainingRun | None = None
        self.queue: list[str] = []
        self.not_started: list[str] = []  # kinds a cancel dropped from the queue
        self.outcomes: list[RunOutcome] = []
        self._count = 0
        self.progress: RunProgress | None = None
        self._runner = Runner(self, threads=1)
        self._changing = False  # a promote or roll back is being written
        self._shown = False
        self._closed = False
        self._build()
        self.panel.say(IDLE_NOTE)
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._redraw)

    def _build(self) -> None:
        title = QLabel("Training", self)
        title.setObjectName("viewTitle")
        self.summary = QLabel("", self)
        self.summary.setObjectName("viewSummary")
        self.retrain_all = QPushButton("Retrain all that is ready   Ctrl+Enter", self)
        self.retrain_all.setObjectName("retrainAll")
        self.retrain_all.setEnabled(False)
        self.retrain_all.clicked.connect(self.retrain_ready)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addSpacing(12)
        head.addWidget(self.summary, 1)
        head.addWidget(self.retrain_all)
        self.cards = {kind: StatusCard(kind, self) for kind in MODEL_KINDS}
        row = QHBoxLayout()
        row.setSpacing(10)
        for card in self.cards.values():
            card.retrainClicked.connect(lambda kind: self.start([kind]))
            card.rollbackClicked.connect(self.rollback)
            row.addWidget(card, 1)
        self.panel = RunPanel(self)
        self.panel.setMinimumWidth(300)
        self.panel.cancelClicked.connect(self.cancel)
        self.results = ResultsPanel(self)
        self.curves = CurvesPanel(self)
        self.log_pane = LogPane(self)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("trainingTabs")
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.log_pane, "Log")
        self._before_log: QWidget = self.results
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self.panel)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.setSpacing(10)
        layout.addLayout(head)
        layout.addLayout(row)
        layout.addWidget(split, 1)

    # -- the View protocol ---------------------------------------------------------------

    def bindings(self) -> list[KeyBinding]:
        return [
            KeyBinding(("Ctrl+Return", "Ctrl+Enter"), "retrain every model that is ready",
                       self.retrain_ready),  # fmt: skip
            KeyBinding(("Escape",), "cancel the training (nothing is kept)", self.cancel),
            KeyBinding(("L",), "show the log (again: back)", self.toggle_log),
        ]

    def hint_text(self) -> str:
        return ("Ctrl+Enter  retrain all that is ready     Esc  cancel the training     "
                "L  log")  # fmt: skip

    def menu_actions(self) -> list[QAction]:
        """The Training menu (keys shown, not bound: they act only inside this view)."""
        items = [("Retrain all that is ready\tCtrl+Enter", self.retrain_ready),
                 ("Cancel the training\tEsc", self.cancel),
                 ("Show the log\tL", self.toggle_log),
                 ("Read the model status again", self.refresh)]  # fmt: skip
        return menu_actions(self, items)

    def running(self) -> bool:
        """True while a job runs (or more are queued behind it)."""
        return self.run is not None

    def busy(self) -> bool:
        """True while a job runs or a status read, promote or roll back is under way."""
        return self.running() or bool(self._runner.pending())

    def shutdown(self) -> None:
        """Cancel the job (its group is killed if it does not stop) and stop every worker."""
        if self._closed:
            return
        self._closed = True
        self.queue.clear()
        self._tick.stop()
        if self.run is not None:
            run, self.run = self.run, None
            run.completed.disconnect()
            run.stop()
            run.deleteLater()
        self._runner.shutdown()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self.curves.build()  # pyqtgraph loads when the view is first shown, not at start
            if self.reloaders:
                self._runner.submit(warm_up, on_failed=lambda exc: log.warning(
                    "the ONNX runtime did not load: %s", exc))  # fmt: skip
            self.refresh()

    # -- status --------------------------------------------------------------------------

    def refresh(self, then: Callable[[], object] | None = None) -> None:
        """Read every kind's status on a worker; the cards update when it answers."""
        if self._closed:
            return

        def apply(statuses: list[ModelStatus]) -> None:
            self._show_status(statuses)
            if then is not None:
                then()

        self._runner.submit(read_status, self.project, on_done=apply, on_failed=self._status_failed)

    def _show_status(self, statuses: list[ModelStatus]) -> None:
        self.statuses = {s.kind: s for s in statuses}
        for s in statuses:
            self.cards[s.kind].set_status(s, running=self._locked())
        ready = [s for s in statuses if s.ready]
        served = [f"{s.kind} {s.version}" for s in statuses if s.version]
        self.summary.setText(
            f"{len(ready)} of {len(statuses)} models can be retrained now   ·   champions: "
            + (", ".join(served) if served else "none yet, the heuristics serve")
        )
        self.retrain_all.setEnabled(bool(ready) and not self._locked())
        self.statusShown.emit()

    def _status_failed(self, exc: BaseException) -> None:
        text = exc.message if isinstance(exc, WorkbenchError) else str(exc)
        self._say(f"The model status could not be read: {text}", "problem")

    # -- training ------------------------------------------------------------------------

    def retrain_ready(self) -> None:
        """Start every kind that has enough data, cheapest first (Ctrl+Enter)."""
        if self.running():
            self._say("A training is already running; wait for it or cancel it (Esc).")
            return
        if not self.statuses:
            self.refresh(then=self.retrain_ready)
            return
        kinds = [k for k in TRAIN_ORDER if k in self.statuses and self.statuses[k].ready]
        if not kinds:
            self._say("No model has enough new data to train yet; each card says what is missing.")
            return
        self.start(kinds)

    def start(self, kinds: Sequence[str]) -> bool:
        """Train `kinds` one after another, each in its own child process; False if busy."""
        if self._closed or self.running() or not kinds:
            if self.running():
                self._say("A training is already running; wait for it or cancel it (Esc).")
            return False
        self.queue = list(kinds)
        self.not_started = []
        self.outcomes = []
        self._count = len(self.queue)
        self.results.clear()
        self._say("")
        self.tabs.setCurrentWidget(self.curves)
        self._next()
        return True

    def config_for(self, kind: str) -> JobConfig:
        """The job's config: this project, its models folder, the view's settings for `kind`."""
        return JobConfig(kind=kind, project=self.project.name,
                         projects_dir=str(self.project.root.parent),
                         models_dir=str(self.project.models_root),
                         **self.job_settings.get(kind, {}))  # fmt: skip

    def _next(self) -> None:
        kind = self.queue.pop(0)
        title = TITLES.get(kind, kind)
        index = self._count - len(self.queue)
        now = time.monotonic()
        self.progress = RunProgress(kind, title, index, self._count, began=now, stage_began=now)
        try:
            command = job_command(self.config_for(kind), prefix=self.command)
        except (TypeError, WorkbenchError) as exc:  # bad job settings: a sentence, not a crash
            self._finish(RunOutcome(kind, [JobResult(kind, "failed", f"The {noun(kind)} training "
                                                     f"could not be set up: {exc}.")], synthetic=True))  # fmt: skip
            return
        self.curves.reset(f"{title}: loss and held-out metrics per epoch", self._epochs(kind))
        self.log_pane.add("", f"Training the {noun(kind)} ({kind}) of project {self.project.name}")
        run = TrainingRun(kind, noun(kind), command, kill_after_s=self.kill_after_s, parent=self)
        run.progressed.connect(self._on_progress)
        run.logged.connect(self.log_pane.add)
        run.completed.connect(self._finish)
        self.run = run
        self._set_locked()
        self.panel.set_running(True)
        self.panel.show_progress(self.progress, now)
        self._tick.start()
        run.start()

    def _epochs(self, kind: str) -> int | None:
        """How many epochs a kind will train, when the view knows (for the curves' x axis)."""
        epochs = self.job_settings.get(kind, {}).get("epochs")
        return int(epochs) if isinstance(epochs, int) else DEFAULT_EPOCHS.get(kind)

    def cancel(self) -> None:
        """Stop the running job (Esc); kinds queued behind it are not started."""
        if self.run is None:
            self._say("No training is running.")
            return
        self.not_started, self.queue = self.queue, []
        self.run.cancel()
        self.panel.cancel.setEnabled(False)
        self._say("Cancelling: the job stops at its next step and keeps nothing…")

    def toggle_log(self) -> None:
        """Show the log, or back to what was shown before it (L)."""
        if self.tabs.currentWidget() is self.log_pane:
            self.tabs.setCurrentWidget(self._before_log)
        else:
            self.show_log()

    def show_log(self) -> None:
        if self.tabs.currentWidget() is not self.log_pane:
            self._before_log = self.tabs.currentWidget()
        self.tabs.setCurrentWidget(self.log_pane)

    def _on_progress(self, item: dict[str, Any]) -> None:
        if self.progress is None:
            return
        self.progress.update(item, time.monotonic())
        metrics = item.get("metrics")
        if isinstance(metrics, dict) and metrics and item.get("stage") == "training":
            self.curves.add(metrics, total=self.progress.total)

    def _redraw(self) -> None:
        if self.progress is not None and self.run is not None:
            self.panel.show_progress(self.progress, time.monotonic())
        self.curves.flush()
        self.log_pane.flush()

    def _finish(self, outcome: RunOutcome) -> None:
        """One kind ended: its result card, the log, the next kind or the end of the click."""
        run, self.run = self.run, None
        if run is not None:
            run.wait()  # it has emitted its last signal; the thread ends right after
            run.deleteLater()
        self.curves.flush(force=True)
        self._redraw()
        self.outcomes.append(outcome)
        if outcome.synthetic and outcome.stderr_tail:
            self.log_pane.add_block(f"what the {outcome.kind} job wrote last (stderr)",
                                    outcome.stderr_tail.splitlines()[-60:])  # fmt: skip
        for result in outcome.results:
            self.log_pane.add("", f"{result.kind}: {result.status}. {result.message}")
            self._add_result(result)
        promoted = [r.kind for r in outcome.results if r.status == "promoted"]
        for kind in promoted:
            self._champion_moved(kind)
        self.runFinished.emit(outcome)
        if outcome.cancelled:
            self.queue.clear()
        if self.queue and not self._closed:
            self._next()
            return
        self._tick.stop()
        self._redraw()
        self._set_locked()
        self._end_message()
        if self.tabs.currentWidget() is not self.log_pane:
            self.tabs.setCurrentWidget(self.results)
        self.refresh()
        self.allFinished.emit(list(self.outcomes))

    def _end_message(self) -> None:
        results = [r for o in self.outcomes for r in o.results]
        took = f"Took {clock(sum(o.seconds for o in self.outcomes))}"
        if any(r.status == "failed" for r in results):
            self.panel.set_idle("Training finished with errors.", took)
            self._say(results_sentence(results) + " The log has the details (L).", "problem")
        elif any(r.status == "cancelled" for r in results):
            self.panel.set_idle("Training cancelled.", took, done=False)
            skipped = ", ".join(noun(k) for k in self.not_started)
            unchanged = ("the champions are unchanged" if not any(r.status == "promoted" for r in results)
                         else "nothing else changed")  # fmt: skip
            self._say(results_sentence(results) + (f" Not started: {skipped}." if skipped else "")
                      + f" The cancelled training kept no new version; {unchanged}.")  # fmt: skip
        else:
            self.panel.set_idle("Training finished.", took)
            self._say(results_sentence(results))

    def _add_result(self, result: JobResult) -> None:
        card = ResultCard(result, self.results.inner)
        card.promoteClicked.connect(self.promote)
        card.rollbackClicked.connect(self.rollback)
        card.showLogClicked.connect(self.show_log)
        self.results.add(card)

    # -- champions -----------------------------------------------------------------------

    def promote(self, kind: str, version: str) -> None:
        """Make `version` the champion of `kind` by hand."""
        self._change(kind, lambda: registry_for(self.project).promote(kind, version, reason="manual").version,
                     lambda champion: f"{TITLES[kind]} {champion} is now the champion.")  # fmt: skip

    def rollback(self, kind: str) -> None:
        """Serve the champion before the current one (or the heuristic when there was none)."""
        self._change(kind, lambda: registry_for(self.project).rollback(kind),
                     lambda champion: f"Rolled the {noun(kind)} back: "
                     + (f"{champion} is the champion again." if champion
                        else "the heuristic serves again."))  # fmt: skip

    def _change(self, kind: str, write: Callable[[], str | None],
                words: Callable[[str | None], str]) -> None:  # fmt: skip
        if self._changing or self._closed:
            return
        self._changing = True
        self._set_locked()

        def done(champion: str | None) -> None:
            self._changing = False
            self._say(words(champion))
            for card in self.results.cards():
                if card.result.kind == kind:
                    card.set_champion(champion)
            self._champion_moved(kind)
            self._set_locked()
            self.refresh()

        def failed(exc: BaseException) -> None:
            self._changing = False
            self._set_locked()
            text = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            self._say(f"The {noun(kind)} champion was not changed: {text}", "problem")

        self._runner.submit(write, on_done=done, on_failed=failed)

    def _champion_moved(self, kind: str) -> None:
        """Reload the window's predictors now (off the GUI thread) and tell the window."""
        if self.reloaders and not self._closed:
            # Announced once the models are reloaded, so what listeners ask next is served
            # by the new champion.
            self._runner.submit(
                self._reload_all, kind,
                on_done=lambda _result: self.championChanged.emit(kind),
                on_failed=lambda exc: self._reload_failed(kind, exc),
            )  # fmt: skip
        else:
            self.championChanged.emit(kind)

    def _reload_failed(self, kind: str, exc: BaseException) -> None:
        log.warning("could not reload the models: %s", exc)
        self.championChanged.emit(kind)

    def _reload_all(self, kind: str) -> None:
        for reload in self.reloaders:
            reload(kind)

    # -- small things --------------------------------------------------------------------

    def _locked(self) -> bool:
        return self.running() or self._changing

    def _set_locked(self) -> None:
        locked = self._locked()
        for card in self.cards.values():
            card.set_running(locked)
        for result in self.results.cards():
            result.set_champion(result.champion, busy=locked)
        ready = any(s.ready for s in self.statuses.values())
        self.retrain_all.setEnabled(ready and not locked)

    def _say(self, text: str, state: str = "info") -> None:
        self.panel.say(text, state)
        if text:
            self.messageShown.emit(text)
