"""The run side of the training view: progress, clocks, Cancel and notices; results; the log.

`RunPanel` shows where the current run is (RunProgress) and what the last click came to.
`ResultsPanel` holds one result card per finished run of the last click. `LogPane`
collects the jobs' log lines; lines are queued and appended by `flush()` on the view's
timer, so a chatty job never floods the GUI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from workbench.ui.training.cards import ResultCard, _set_state
from workbench.ui.training.progress import RunProgress

LOG_LINES = 5000


class LogPane(QPlainTextEdit):
    """The jobs' log lines, newest last; `add` queues, `flush` appends (read-only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingLog")
        self.setReadOnly(True)
        self.setMaximumBlockCount(LOG_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setPlaceholderText("The training jobs' messages appear here.")
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._pending: list[str] = []

    def add(self, level: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        tag = "" if level in ("INFO", "") else f"{level}: "
        self._pending.append(f"{stamp}  {tag}{message}")

    def add_block(self, title: str, lines: Iterable[str]) -> None:
        """A titled block, e.g. the last lines a crashed job wrote to stderr."""
        self._pending.append(f"---- {title} ----")
        self._pending.extend(lines)
        self._pending.append("----")

    def flush(self) -> None:
        if self._pending:
            self.appendPlainText("\n".join(self._pending))
            self._pending.clear()
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())

    def text(self) -> str:
        """Everything shown and queued (for tests and the clipboard)."""
        self.flush()
        return self.toPlainText()


class RunPanel(QFrame):
    """Progress of the current run and the result cards of the finished ones."""

    cancelClicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runPanel")
        self.headline = QLabel("No training is running.", self)
        self.headline.setObjectName("runHeadline")
        self.headline.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setObjectName("runProgress")
        self.bar.setTextVisible(True)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.hide()  # until the first run
        self.times = QLabel("", self)
        self.times.setObjectName("runTimes")
        self.cancel = QPushButton("Cancel   Esc", self)
        self.cancel.setObjectName("cancelTraining")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancelClicked.emit)
        self.notice = QLabel("", self)
        self.notice.setObjectName("runNotice")
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice.hide()
        self.times.setWordWrap(True)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        layout.addWidget(self.headline)
        layout.addWidget(self.bar)
        layout.addWidget(self.times)
        layout.addLayout(row)
        layout.addWidget(self.notice)
        layout.addStretch(1)

    def show_progress(self, p: RunProgress, now: float) -> None:
        self.headline.setText(p.headline())
        self.bar.show()
        fraction = p.fraction()
        if fraction is None:
            self.bar.setRange(0, 0)  # busy: the stage has no known length
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(fraction * 1000))
        self.times.setText(p.times(now))

    def set_running(self, running: bool) -> None:
        self.cancel.setEnabled(running)

    def set_idle(self, headline: str, times: str = "", *, done: bool = True) -> None:
        self.headline.setText(headline)
        self.times.setText(times)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if done else 0)
        self.set_running(False)

    def say(self, text: str, state: str = "info") -> None:
        """A sentence under the progress bar ('' hides it); state info | problem."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        _set_state(self.notice, state)


class ResultsPanel(QScrollArea):
    """The result cards of the last click, side by side (scrolls when they do not fit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsPanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.inner = QWidget(self)
        self.inner.setObjectName("resultList")
        self._row = QHBoxLayout(self.inner)
        self._row.setContentsMargins(6, 6, 6, 6)
        self._row.setSpacing(8)
        self.empty = QLabel("The results of a training appear here: the new version against "
                            "the champion on the same held-out data.", self.inner)  # fmt: skip
        self.empty.setObjectName("curvesCaption")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._row.addWidget(self.empty, 1)
        self.setWidget(self.inner)

    def clear(self) -> None:
        for card in self.cards():
            self._row.removeWidget(card)
            card.setParent(None)  # out of findChildren at once, gone at the next event loop
            card.deleteLater()
        self.empty.show()

    def add(self, card: ResultCard) -> None:
        self.empty.hide()
        card.setParent(self.inner)
        self._row.addWidget(card, 1, Qt.AlignmentFlag.AlignTop)

    def cards(self) -> list[ResultCard]:
        return self.inner.findChildren(ResultCard)
