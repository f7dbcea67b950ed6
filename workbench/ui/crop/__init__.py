"""The multi-crop canvas view (ARCHITECTURE.md, job 2): `CropView(project, parent)`."""

from workbench.ui.crop.view import CropView

__all__ = ["CropView"]
