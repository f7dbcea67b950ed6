"""The AI performance view: agreement per batch over time, model versions, recent mistakes."""

from workbench.ui.performance.view import PerformanceView

__all__ = ["PerformanceView"]
