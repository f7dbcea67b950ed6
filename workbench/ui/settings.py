"""Per-user GUI settings (QSettings "Workbench"/"Workbench", INI format): recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = APPLICATION = "Workbench"
RECENT_KEY = "recent_projects"
MAX_RECENT = 10


def _settings() -> QSettings:
    # INI everywhere, so tests can redirect it with QSettings.setPath.
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def recent_projects() -> list[Path]:
    """Project folders opened before, most recent first (ones that no longer exist dropped)."""
    value = _settings().value(RECENT_KEY, [])
    items: list[object] = [value] if isinstance(value, str) else list(value or [])  # type: ignore[call-overload]
    out: list[Path] = []
    for item in items:
        path = Path(str(item))
        if (path / "project.toml").is_file() and path not in out:
            out.append(path)
    return out


def add_recent_project(root: Path) -> None:
    """Put a project folder first in the recent list."""
    root = Path(root).resolve()
    entries = [root] + [p for p in recent_projects() if p != root]
    _settings().setValue(RECENT_KEY, [str(p) for p in entries[:MAX_RECENT]])
