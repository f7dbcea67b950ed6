"""Shared test set-up: offscreen Qt (set before any Qt import), temporary project stores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def store(tmp_path: Path):
    """A ProjectStore in a temporary folder, with its own models folder."""
    from workbench.core.project import ProjectStore

    return ProjectStore(tmp_path / "projects", tmp_path / "models")


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    src.mkdir()
    return src


@pytest.fixture
def project(store, source_dir: Path):
    """A project 'p' over an empty source folder (files override it where they need more)."""
    return store.create("p", source_dir)


@pytest.fixture
def conn(project):
    """A connection to `project`'s database, closed after the test."""
    c = project.connect()
    yield c
    c.close()
