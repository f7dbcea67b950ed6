"""The training view: model status cards, one-click retrain in child processes, results."""

from workbench.ui.training.view import TrainingView

__all__ = ["TrainingView"]
