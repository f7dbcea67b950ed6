"""Live training curves: the loss on one plot, held-out (and train) metrics on the other.

Points arrive with every progress line that carries metrics ({"epoch": .., "loss": ..,
"held_out_top1": ..}); they are stored at once and drawn by `flush()`, at most every
DRAW_INTERVAL_S, so a job reporting hundreds of points a second costs a few redraws.
The axes keep fixed ranges (x: the run's epochs, y: 0-1 for the metrics, the largest
loss so far), so a redraw repaints the curves and replays the axes' cached pictures
instead of laying out new ticks: the GUI stays within its 50 ms budget while a model
trains (benchmarks/bench_training_gui.py). pyqtgraph is imported when the plots are
first built (when the view is first shown), not when the window starts.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.ui.training.status import metric_name

X_KEYS = ("epoch", "step")
LEFT_OUT = {"samples", "n"}
COLOURS = ("#8fb8ff", "#6cc38a", "#e8b36a", "#d98cd9", "#7fd6d6", "#e07a7a")
BACKGROUND = "#1d2026"
DRAW_INTERVAL_S = 0.25


class CurvesPanel(QWidget):
    """Two plots sharing the x axis (epochs); `add(metrics)`, then `flush()` to draw."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("curvesPanel")
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.caption = QLabel("Curves appear here while a model trains.", self)
        self.caption.setObjectName("curvesCaption")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.setSpacing(2)
        self._layout.addWidget(self.caption)
        self.loss_plot: Any = None
        self.metric_plot: Any = None
        self._items: dict[str, Any] = {}
        self._dirty = False
        self._next_x = 0
        self._span = 1.0  # the x range: the run's epochs
        self._loss_top = 0.0  # the loss axis' top: the largest loss so far
        self._drawn_at = 0.0
        self._ranges: tuple[tuple[float, float], float] | None = None  # what the axes show

    def build(self) -> None:
        """Create the plots (imports pyqtgraph); idempotent."""
        if self.loss_plot is not None:
            return
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=False, background=BACKGROUND, foreground="#b9c0cc")
        self.loss_plot = pg.PlotWidget(self)
        self.metric_plot = pg.PlotWidget(self)
        for plot, title, left in ((self.loss_plot, "Loss", "loss"),
                                  (self.metric_plot, "Held-out metrics", "score")):  # fmt: skip
            plot.setObjectName(f"plot_{left}")
            plot.setTitle(title, color="#d9dde4", size="10pt")
            plot.setLabel("bottom", "epoch")
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.addLegend(offset=(-10, 10), labelTextColor="#d9dde4")
            plot.disableAutoRange()
            self._layout.addWidget(plot, 1)
        self.metric_plot.setXLink(self.loss_plot)
        self.metric_plot.setYRange(0.0, 1.0, padding=0.02)
        self._set_ranges()

    def reset(self, caption: str, epochs: int | None = None) -> None:
        """Forget the points of the last run; `caption` names the model now training and
        `epochs`, when known, sets the x axis now rather than at the first point."""
        self.series.clear()
        self._next_x = 0
        self._span, self._loss_top, self._drawn_at, self._ranges = float(epochs or 1), 0.0, 0.0, None
        for plot in (self.loss_plot, self.metric_plot):
            if plot is not None:
                plot.clear()
                legend = plot.plotItem.legend
                if legend is not None:
                    legend.clear()
        self._items.clear()
        self.caption.setText(caption)
        self._dirty = False
        self._set_ranges()

    def add(self, metrics: dict[str, Any], total: int = 0) -> None:
        """Store one point of every metric in a progress line (the x is its epoch or step);
        `total` is the number of epochs of the run (the x axis' extent)."""
        numbers = {k: float(v) for k, v in metrics.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}  # fmt: skip
        x = next((numbers.pop(k) for k in X_KEYS if k in numbers), None)
        if x is None:
            self._next_x += 1
            x = float(self._next_x)
        self._span = max(self._span, float(total or 0), x)
        for key, value in numbers.items():
            if key in LEFT_OUT:
                continue
            if "loss" in key:
                self._loss_top = max(self._loss_top, value)
            xs, ys = self.series.setdefault(key, ([], []))
            xs.append(x)
            ys.append(value)
            self._dirty = True

    def points(self, key: str) -> int:
        """How many points a metric's curve has (drawn or not)."""
        return len(self.series.get(key, ((), ()))[0])

    def flush(self, *, force: bool = False) -> None:
        """Draw the points stored since the last draw (nothing when none are new, or when
        the last draw was less than DRAW_INTERVAL_S ago, unless `force`)."""
        now = time.monotonic()
        if not self._dirty or self.loss_plot is None:
            return
        if not force and now - self._drawn_at < DRAW_INTERVAL_S:
            return
        self._dirty, self._drawn_at = False, now
        self._set_ranges()
        for n, (key, (xs, ys)) in enumerate(self.series.items()):
            item = self._items.get(key)
            if item is None:
                plot = self.loss_plot if "loss" in key else self.metric_plot
                item = plot.plot([], [], name=metric_name(key),
                                 pen={"color": COLOURS[n % len(COLOURS)], "width": 1.5})  # fmt: skip
                self._items[key] = item
            item.setData(xs, ys)

    def _set_ranges(self) -> None:
        """Fixed ranges: only a longer run or a larger loss moves an axis (and its ticks)."""
        if self.loss_plot is None:
            return
        x_range = (0.0, self._span)
        y_top = self._loss_top * 1.1 if self._loss_top > 0 else 1.0
        if self._ranges != (x_range, y_top):
            self._ranges = (x_range, y_top)
            self.loss_plot.setXRange(*x_range, padding=0.02)
            self.loss_plot.setYRange(0.0, y_top, padding=0.02)
