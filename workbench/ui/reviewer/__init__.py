"""The AI reviewer view: groups of 2-4 images, the AI's pick and crop, keys 1-4 / Q-R / X / T."""

from workbench.ui.reviewer.view import ReviewerView

__all__ = ["ReviewerView"]
