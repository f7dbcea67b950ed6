"""Workbench: keyboard-first image curation and training."""

__version__ = "0.1.0"
