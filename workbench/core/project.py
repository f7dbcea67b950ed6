"""Project folders on disk: layout, settings file, path rules."""

from __future__ import annotations

import os
import sqlite3
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from workbench.core import db
from workbench.core.decisions import PROJECT_NAME_RE
from workbench.core.errors import InvalidInput, ProjectExists, ProjectNotFound, UnsafePath
from workbench.core.lock import ProjectLock
from workbench.core.safe_io import fsync_dir
from workbench.core.timeutil import iso_utc

ROUTING_FOLDERS = ("selected", "crop", "crop_auto", "crop_cropped", "delete_staging")
PROJECT_FOLDERS = (*ROUTING_FOLDERS, "exports")
GROUP_BY = ("sequence", "similarity")
SETTINGS_FILE = "project.toml"
PROJECTS_ENV = "WORKBENCH_PROJECTS"
MAX_BATCH_SIZE = 10_000
MODELS_ENV = "WORKBENCH_MODELS"


def default_projects_dir() -> Path:
    return Path(os.environ.get(PROJECTS_ENV) or "projects")


def default_models_dir(projects_dir: Path) -> Path:
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else projects_dir.resolve().parent / "models"


def validate_name(name: str) -> str:
    if not PROJECT_NAME_RE.match(name or ""):
        raise InvalidInput(
            f"Project name {name!r} is not allowed: use lowercase letters, digits, '_' and '-', "
            "starting with a letter or digit."
        )
    return name


@dataclass
class ProjectSettings:
    """What project.toml holds."""

    name: str
    source: Path
    group_by: str = "sequence"
    batch_size: int = 100
    max_group_size: int = 4
    sequence_gap_seconds: float = 10.0
    similarity_threshold: int = 10
    created: str = field(default_factory=iso_utc)
    schema_version: int = db.SCHEMA_VERSION

    def to_toml(self) -> dict[str, Any]:
        return {
            "project": {
                "name": self.name,
                "source": str(self.source),
                "created": self.created,
                "schema_version": self.schema_version,
            },
            "grouping": {
                "group_by": self.group_by,
                "max_group_size": self.max_group_size,
                "sequence_gap_seconds": self.sequence_gap_seconds,
                "similarity_threshold": self.similarity_threshold,
            },
            "review": {"batch_size": self.batch_size},
        }

    @classmethod
    def from_toml(cls, data: dict[str, Any], where: Path) -> ProjectSettings:
        try:
            proj, grouping, review = (
                data["project"],
                data.get("grouping", {}),
                data.get("review", {}),
            )
            settings = cls(
                name=validate_name(str(proj["name"])),
                source=Path(str(proj["source"])),
                created=str(proj.get("created", "")),
                schema_version=int(proj.get("schema_version", db.SCHEMA_VERSION)),
                group_by=str(grouping.get("group_by", "sequence")),
                max_group_size=int(grouping.get("max_group_size", 4)),
                sequence_gap_seconds=float(grouping.get("sequence_gap_seconds", 10.0)),
                similarity_threshold=int(grouping.get("similarity_threshold", 10)),
                batch_size=int(review.get("batch_size", 100)),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"{where} is malformed ({exc}); fix or restore it.") from exc
        if not settings.source.is_absolute():
            # A hand-edited relative source means "relative to the project folder", never
            # to wherever the command happens to run.
            settings.source = (where.parent / settings.source).resolve()
        if settings.group_by not in GROUP_BY:
            raise InvalidInput(f"{where}: group_by must be one of {', '.join(GROUP_BY)}")
        if not 2 <= settings.max_group_size <= 4:
            raise InvalidInput(f"{where}: max_group_size must be 2 to 4")
        if not 1 <= settings.batch_size <= MAX_BATCH_SIZE:
            raise InvalidInput(f"{where}: batch_size must be 1 to {MAX_BATCH_SIZE}")
        return settings


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class Project:
    """An open project folder: settings, database, routing folders and path rules."""

    def __init__(self, root: Path, settings: ProjectSettings, models_dir: Path) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.models_root = models_dir.resolve()

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def source(self) -> Path:
        return self.settings.source

    @property
    def db_path(self) -> Path:
        return self.root / f"{self.name}.db"

    @property
    def models_dir(self) -> Path:
        return self.models_root / self.name

    def folder(self, kind: str) -> Path:
        if kind not in PROJECT_FOLDERS:
            raise ValueError(f"unknown project folder {kind!r}")
        return self.root / kind

    def connect(self, *, create: bool = False) -> sqlite3.Connection:
        """A new connection for the calling thread (the database must exist unless `create`)."""
        return db.connect(self.db_path, create=create)

    def lock(self, purpose: str) -> ProjectLock:
        return ProjectLock(self.root, self.name, purpose)

    def is_allowed(self, path: Path | str) -> bool:
        """True when `path` (links resolved) lies inside the project or its source folder."""
        resolved = Path(path).resolve()
        return any(resolved.is_relative_to(root) for root in (self.root, self.source.resolve()))

    def check_path(self, path: Path | str) -> Path:
        """The resolved path, or UnsafePath when it escapes the project and its source."""
        if not self.is_allowed(path):
            raise UnsafePath(
                f"{path} is outside project '{self.name}' and its source folder {self.source}; "
                "Workbench only touches files there."
            )
        return Path(path).resolve()

    def save_settings(self) -> None:
        """Write project.toml; sections and keys this version does not know are kept."""
        path = self.root / SETTINGS_FILE
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                data = {}
        for section, values in self.settings.to_toml().items():
            data.setdefault(section, {}).update(values)
        write_atomic(path, tomli_w.dumps(data).encode())


class ProjectStore:
    """The projects folder: create, open and list projects."""

    def __init__(self, projects_dir: Path | None = None, models_dir: Path | None = None) -> None:
        self.projects_dir = (projects_dir or default_projects_dir()).resolve()
        self.models_dir = (models_dir or default_models_dir(self.projects_dir)).resolve()

    def path_of(self, name: str) -> Path:
        return self.projects_dir / validate_name(name)

    def names(self) -> list[str]:
        if not self.projects_dir.is_dir():
            return []
        return sorted(p.name for p in self.projects_dir.iterdir() if (p / SETTINGS_FILE).is_file())

    def create(
        self, name: str, source: Path, *, group_by: str = "sequence", batch_size: int = 100
    ) -> Project:
        """A new project folder with settings, database and routing folders."""
        root = self.path_of(name)
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidInput(f"The batch size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}.")
        source = Path(source).expanduser()
        if not source.is_dir():
            raise InvalidInput(f"Source folder {source} does not exist or is not a folder.")
        if group_by not in GROUP_BY:
            raise InvalidInput(f"--group-by must be one of {', '.join(GROUP_BY)}")
        source = source.resolve()
        if (root / SETTINGS_FILE).exists():
            raise ProjectExists(f"Project '{name}' already exists in {self.projects_dir}.")
        if root.resolve().is_relative_to(source):
            raise InvalidInput(
                f"The projects folder {self.projects_dir} lies inside the source {source}; "
                "choose a projects folder outside it so results are not rescanned."
            )
        if source.is_relative_to(self.projects_dir):
            # Only a plain subfolder of the project's own folder may be its source (the demo
            # does this); another project's folders or our routing folders never.
            parts = source.relative_to(self.projects_dir).parts
            if len(parts) < 2 or parts[0] != name or parts[1] in (*PROJECT_FOLDERS, "cache"):
                raise InvalidInput(
                    f"The source {source} lies inside the projects folder {self.projects_dir}; "
                    "a project may not review another project's files or its own results."
                )
        root.mkdir(parents=True, exist_ok=True)
        for sub in PROJECT_FOLDERS:
            (root / sub).mkdir(exist_ok=True)
        settings = ProjectSettings(
            name=name, source=source, group_by=group_by, batch_size=batch_size
        )
        project = Project(root, settings, self.models_dir)
        conn = project.connect(create=True)
        conn.close()
        project.save_settings()  # written last: a project exists once its settings do
        return project

    def open(self, name: str) -> Project:
        root = self.path_of(name)
        settings_path = root / SETTINGS_FILE
        if not settings_path.is_file():
            known = ", ".join(self.names()) or "none"
            raise ProjectNotFound(
                f"No project '{name}' in {self.projects_dir} (projects there: {known}). "
                f"Create it with: workbench init {name} --source DIR"
            )
        try:
            data = tomllib.loads(settings_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"{settings_path} cannot be read ({exc}).") from exc
        settings = ProjectSettings.from_toml(data, settings_path)
        if settings.name != name:
            raise InvalidInput(f"{settings_path} names project '{settings.name}', not '{name}'.")
        for sub in PROJECT_FOLDERS:
            (root / sub).mkdir(exist_ok=True)
        return Project(root, settings, self.models_dir)
