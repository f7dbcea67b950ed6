"""The plates view: keyboard labeling of plate crops with OCR pre-labels (seed 004)."""

from workbench.ui.plates.view import PlatesView

__all__ = ["PlatesView"]
