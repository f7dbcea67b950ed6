"""OpenCV, imported so that it cannot redirect the GUI's Qt plugins."""

from __future__ import annotations

import os
import threading
from types import ModuleType

from workbench.core.errors import WorkbenchError

_QT_VARS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")
_lock = threading.Lock()


def cv2() -> ModuleType:
    """The cv2 module; a clear WorkbenchError when OpenCV is not installed.

    The opencv-python wheel points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt plugins on
    import; a Qt application started afterwards (or a child process) would then load
    plugins built for another Qt. The variables are put back as they were.
    """
    with _lock:
        saved = {name: os.environ.get(name) for name in _QT_VARS}
        try:
            import cv2 as module
        except ImportError as exc:
            raise WorkbenchError(
                "OpenCV is missing (package opencv-python); reinstall Workbench to compute "
                "image features.",
                code="missing_dependency",
            ) from exc
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return module
