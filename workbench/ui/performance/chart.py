"""The accuracy chart: the AI's pick and crop accuracy per batch, and where models changed.

One pyqtgraph plot: x is the batch number, y the share of the AI's picks (and crops) the
user agreed with, in percent; a dashed vertical line marks the first batch a new ranker
or crop model served, labelled with the new versions. pyqtgraph is imported when the chart is first built.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.ui.performance.data import BatchPoint, version_changes

BACKGROUND = "#1d2026"
SELECTION_COLOUR = "#8fb8ff"
CROP_COLOUR = "#6cc38a"
CHANGE_COLOUR = "#e8b36a"


class AccuracyChart(QWidget):
    """The per-batch accuracy plot; `show_batches` redraws it, `image` renders it."""

    def __init__(self, title: str = "AI agreement per batch", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("accuracyChart")
        self.title = title
        self.plot: Any = None
        self.caption = QLabel("", self)
        self.caption.setObjectName("curvesCaption")
        self.caption.setWordWrap(True)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._layout.addWidget(self.caption)
        self.lines: dict[str, Any] = {}
        self.markers: list[Any] = []

    def build(self) -> None:
        """Create the plot (imports pyqtgraph); idempotent."""
        if self.plot is not None:
            return
        import pyqtgraph as pg

        # Global options, shared with the training curves: no antialiasing by default (cheap
        # live redraws); this chart, drawn once per read, asks for it per line.
        pg.setConfigOptions(antialias=False, background=BACKGROUND, foreground="#b9c0cc")
        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("accuracyPlot")
        self.plot.setTitle(self.title, color="#d9dde4", size="11pt")
        self.plot.setLabel("left", "agreed with you", units="%")
        self.plot.setLabel("bottom", "batch")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setYRange(0, 100, padding=0.04)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.addLegend(offset=(10, 10), labelTextColor="#d9dde4")
        for key, name, colour in (("selection", "picks", SELECTION_COLOUR),
                                  ("crop", "crops", CROP_COLOUR)):  # fmt: skip
            self.lines[key] = self.plot.plot([], [], name=name, pen={"color": colour, "width": 2},
                                             symbol="o", symbolSize=7, symbolBrush=colour,
                                             symbolPen=colour, antialias=True)  # fmt: skip
        self._layout.addWidget(self.plot, 1)

    def show_batches(self, batches: list[BatchPoint]) -> None:
        """Redraw for these batches (oldest first)."""
        self.build()
        import pyqtgraph as pg

        for key, attr in (("selection", "selection_accuracy"), ("crop", "crop_accuracy")):
            points = [(b.batch, getattr(b, attr)) for b in batches if getattr(b, attr) is not None]
            self.lines[key].setData([float(x) for x, _ in points], [y * 100 for _, y in points])
        for marker in self.markers:
            self.plot.removeItem(marker)
        self.markers.clear()
        changes: dict[int, list[str]] = {}
        for attr, model in (("ranker_versions", "ranker"), ("crop_versions", "crop")):
            for batch, versions in version_changes(batches, attr):
                changes.setdefault(batch, []).append(f"{model} {versions}")
        for batch, words in sorted(changes.items()):
            line = pg.InfiniteLine(pos=batch - 0.5, angle=90, label=" · ".join(words),
                                   pen=pg.mkPen(CHANGE_COLOUR, width=1, style=Qt.PenStyle.DashLine),
                                   labelOpts={"position": 0.04, "color": CHANGE_COLOUR,
                                              "anchors": [(0, 1), (0, 1)]})  # fmt: skip
            self.plot.addItem(line)
            self.markers.append(line)
        numbers = [b.batch for b in batches]
        if numbers:
            self.plot.setXRange(min(numbers) - 0.6, max(numbers) + 0.6, padding=0)
            axis = self.plot.getAxis("bottom")
            step = max(1, len(numbers) // 12)
            axis.setTicks([[(n, str(n) if n else "–") for n in numbers[::step]]])
        self.caption.setText("" if batches else "No finalized batches yet.")
        self.caption.setVisible(not batches)

    def points(self, key: str) -> int:
        """How many batches the `selection` or `crop` line shows."""
        if key not in self.lines:
            return 0
        xs = self.lines[key].xData
        return 0 if xs is None else len(xs)

    def image(self) -> QImage:
        """The plot as it is on screen (builds it first if needed)."""
        self.build()
        return self.plot.grab().toImage()
