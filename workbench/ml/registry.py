"""Model versions of one project on disk: `models/<project>/<kind>/v<N>/`, and the champion.

Layout (the predictor and the OCR engines read the champion pointer, predict.py):

    <models_dir>/split.json                 the frozen held-out split: salt and fraction
    <models_dir>/<kind>/champion.json       {"version": "v3", ...serving fields, "promoted_at"}
    <models_dir>/<kind>/history.jsonl       one line per champion change (promote, rollback)
    <models_dir>/<kind>/last_version        the highest N ever given (numbers are never reused)
    <models_dir>/<kind>/v3/
        model.onnx | model.json             what the predictor serves
        weights.pt                          torch state dict (trained kinds), for fine-tuning
        metrics.json                        held-out metrics, baselines, sample counts
        config.json                         the training config
        data.json                           hash of the exact training data, counts, split
        serving.json                        the fields the champion pointer carries

Writes are atomic: a version is assembled in `<kind>/.staging-<random>/` and renamed to
the next free `v<N>` only when complete; the champion pointer is replaced by rename. A
crash or a cancel mid-training leaves at most a staging folder, which is removed the
next time the registry is opened, and never touches the champion. Version numbers
are allocated under an advisory lock, so two trainings never write the same v<N>.

The held-out split is by key (a decision's group_id, a plate crop's path): a key is
held out when a salted hash of it falls below the fraction. The salt is drawn once per
project and kept in split.json, so a key never changes sides and every version of a
kind is compared on the same groups (seed 003's frozen splits).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.timeutil import iso_utc

log = logging.getLogger(__name__)

CHAMPION_FILE = "champion.json"
HISTORY_FILE = "history.jsonl"
COUNTER_FILE = "last_version"
SPLIT_FILE = "split.json"
STAGING_PREFIX = ".staging-"
STAGING_LOCK = ".writing"
LOCK_FILE = ".registry.lock"
HELD_OUT_FRACTION = 0.2
_VERSION_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MANIFEST_FILES = ("metrics.json", "config.json", "data.json", "serving.json")


@dataclass(frozen=True)
class VersionInfo:
    """One registered version: where it is and what it measured."""

    kind: str
    version: str
    path: Path
    created_at: str
    metrics: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    serving: dict[str, Any]

    @property
    def number(self) -> int:
        return version_number(self.version)

    @property
    def samples(self) -> dict[str, int]:
        return dict(self.data.get("samples", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "path": str(self.path),
            "created_at": self.created_at,
            "metrics": self.metrics,
            "samples": self.samples,
            "data_hash": self.data.get("data_hash"),
        }


@dataclass(frozen=True)
class HeldOutSplit:
    """The project's frozen split: `held_out(key)` is stable for the project's life."""

    salt: str
    fraction: float

    def held_out(self, key: str) -> bool:
        digest = hashlib.sha256(f"{self.salt}\x00{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < self.fraction


def version_number(version: str) -> int:
    m = _VERSION_RE.match(version)
    if not m:
        raise WorkbenchError(f"{version!r} is not a version; versions are written v1, v2, ...",
                             code="invalid_input")  # fmt: skip
    return int(m.group(1))


def data_hash(records: Iterable[Any]) -> str:
    """sha256 of the training records as canonical JSON lines, order-independent."""
    lines = sorted(json.dumps(r, sort_keys=True, separators=(",", ":"), default=str)
                   for r in records)  # fmt: skip
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, fsync, rename into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            json.dump(data, fp, indent=2, sort_keys=True, default=str)
            fp.write("\n")
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class StagedVersion:
    """A version being written: put files in `path`, then Registry.commit()."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path


class Registry:
    """The model versions of one project (`models_dir` is Project.models_dir).

    `db_path`, when given, is the project database whose `model_versions` table mirrors
    the registry after every change (best effort: a failure there is logged, the files
    stay the truth).
    """

    def __init__(self, models_dir: Path, *, db_path: Path | None = None) -> None:
        self.root = Path(models_dir)
        self.db_path = db_path

    # -- reading --------------------------------------------------------------------------

    def kind_dir(self, kind: str) -> Path:
        if not _KIND_RE.match(kind):
            raise WorkbenchError(f"{kind!r} is not a model kind.", code="invalid_input")
        return self.root / kind

    def versions(self, kind: str) -> list[VersionInfo]:
        """The complete versions of a kind, oldest first (unreadable ones are skipped)."""
        folder = self.kind_dir(kind)
        out = []
        try:
            entries = list(folder.iterdir())
        except OSError:
            return []
        for entry in entries:
            if not _VERSION_RE.match(entry.name) or not entry.is_dir():
                continue
            info = self._load(kind, entry)
            if info is not None:
                out.append(info)
        return sorted(out, key=lambda v: v.number)

    def version(self, kind: str, version: str) -> VersionInfo:
        version_number(version)
        info = self._load(kind, self.kind_dir(kind) / version)
        if info is None:
            known = ", ".join(v.version for v in self.versions(kind)) or "none"
            raise WorkbenchError(
                f"There is no {kind} model {version} (versions: {known}).", code="not_found"
            )
        return info

    def champion(self, kind: str) -> str | None:
        """The champion's version name, or None (no pointer, or a pointer to nothing)."""
        pointer = self.kind_dir(kind) / CHAMPION_FILE
        try:
            version = str(_read_json(pointer)["version"])
            version_number(version)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, WorkbenchError) as exc:
            log.warning("ignoring unreadable champion pointer %s (%s)", pointer, exc)
            return None
        return version if (self.kind_dir(kind) / version).is_dir() else None

    def champion_info(self, kind: str) -> VersionInfo | None:
        name = self.champion(kind)
        return None if name is None else self._load(kind, self.kind_dir(kind) / name)

    def history(self, kind: str) -> list[dict[str, Any]]:
        """Champion changes, oldest first."""
        out = []
        with contextlib.suppress(OSError):
            for line in (self.kind_dir(kind) / HISTORY_FILE).read_text("utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    item = json.loads(line)
                    if isinstance(item, dict):
                        out.append(item)
        return out

    def split(self, fraction: float = HELD_OUT_FRACTION) -> HeldOutSplit:
        """The project's frozen held-out split, drawn on first use."""
        path = self.root / SPLIT_FILE
        with self._locked():
            try:
                data = _read_json(path)
                return HeldOutSplit(str(data["salt"]), float(data["fraction"]))
            except FileNotFoundError:
                pass
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise WorkbenchError(
                    f"The held-out split {path} is damaged ({exc}). Move it away to draw a "
                    "new one (models trained so far are then compared on different data).",
                    code="damaged",
                ) from None
            split = HeldOutSplit(secrets.token_hex(16), fraction)
            _write_json(path, {"salt": split.salt, "fraction": split.fraction,
                               "created_at": iso_utc()})  # fmt: skip
            return split

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, kind: str) -> Iterator[StagedVersion]:
        """A staging folder for a new version; removed unless commit() took it."""
        folder = self.kind_dir(kind)
        folder.mkdir(parents=True, exist_ok=True)
        with self._locked():  # so no cleaner sees the folder before its lock is held
            self._clean_staging(kind)
            path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
            # Held while the version is being written: clean_staging removes only staging
            # folders whose lock is free, i.e. whose writer died.
            fd = os.open(path / STAGING_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            _flock(fd, blocking=True)
        staged = StagedVersion(kind, path)
        try:
            yield staged
        finally:
            os.close(fd)
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def commit(
        self,
        staged: StagedVersion,
        *,
        metrics: dict[str, Any],
        data: dict[str, Any],
        config: dict[str, Any],
        serving: dict[str, Any] | None = None,
    ) -> VersionInfo:
        """Writes the manifests and renames the staging folder to the next v<N>."""
        for name, value in (("metrics.json", metrics), ("data.json", data),
                            ("config.json", config), ("serving.json", serving or {})):  # fmt: skip
            _write_json(staged.path / name, value)
        with self._locked():
            numbers = [v.number for v in self.versions(staged.kind)]
            # Never reuse a number, even of a version folder removed by hand: the highest
            # number ever given is kept beside the versions.
            counter = self.kind_dir(staged.kind) / COUNTER_FILE
            with contextlib.suppress(OSError, ValueError):
                numbers.append(int(counter.read_text(encoding="utf-8").strip()))
            for item in self.history(staged.kind):
                with contextlib.suppress(WorkbenchError, KeyError, TypeError):
                    numbers.append(version_number(str(item["version"])))
            target = self.kind_dir(staged.kind) / f"v{max(numbers, default=0) + 1}"
            while target.exists():  # a damaged folder of that name: skip past it
                target = target.with_name(f"v{version_number(target.name) + 1}")
            (staged.path / STAGING_LOCK).unlink(missing_ok=True)
            os.rename(staged.path, target)
            _fsync_dir(target.parent)
            _write_json(counter, version_number(target.name))
        info = self._load(staged.kind, target)
        if info is None:  # pragma: no cover - we just wrote it
            raise WorkbenchError(f"Could not read back the new version {target}.")
        self._sync_db()
        return info

    def promote(self, kind: str, version: str, *, reason: str = "manual") -> VersionInfo:
        """Makes `version` the champion (the predictor picks it up within a second)."""
        info = self.version(kind, version)
        with self._locked():
            previous = self.champion(kind)
            pointer = {**info.serving, "version": info.version, "promoted_at": iso_utc(),
                       "reason": reason}  # fmt: skip
            _write_json(self.kind_dir(kind) / CHAMPION_FILE, pointer)
            self._append_history(kind, {"version": info.version, "previous": previous,
                                        "reason": reason, "at": pointer["promoted_at"]})  # fmt: skip
        self._sync_db()
        return info

    def rollback(self, kind: str) -> str | None:
        """Goes back to the champion before the current one; returns it (None: no champion)."""
        current = self.champion(kind)
        if current is None:
            raise WorkbenchError(f"There is no {kind} champion to roll back.", code="not_found")
        existing = {v.version for v in self.versions(kind)}
        stack = self._champion_stack(kind)
        if stack and stack[-1] == current:
            earlier = [v for v in reversed(stack[:-1]) if v in existing and v != current]
        else:  # the pointer was changed outside the registry: trust its own record
            last: dict[str, Any] = next(
                (h for h in reversed(self.history(kind)) if h.get("version") == current), {}
            )
            earlier = [last["previous"]] if last.get("previous") in existing else []
        target = earlier[0] if earlier else None
        if target is None:
            with self._locked():
                pointer = self.kind_dir(kind) / CHAMPION_FILE
                pointer.unlink(missing_ok=True)
                _fsync_dir(pointer.parent)
                self._append_history(kind, {"version": None, "previous": current,
                                            "reason": "rollback", "at": iso_utc()})  # fmt: skip
            self._sync_db()
            return None
        self.promote(kind, target, reason="rollback")
        return target

    def _champion_stack(self, kind: str) -> list[str]:
        """The champions in promotion order, with rolled-back ones taken off the top."""
        stack: list[str] = []
        for item in self.history(kind):
            version = item.get("version")
            if item.get("reason") == "rollback":
                while stack and stack[-1] != version:
                    stack.pop()
            elif isinstance(version, str):
                stack.append(version)
        return stack

    def clean_staging(self, kind: str) -> int:
        """Removes staging folders left by a crash or a kill; returns how many."""
        with self._locked():
            return self._clean_staging(kind)

    def _clean_staging(self, kind: str) -> int:
        removed = 0
        with contextlib.suppress(OSError):
            for entry in self.kind_dir(kind).iterdir():
                if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                    # Another training of the same kind may be staging right now: only
                    # a folder whose lock nobody holds was left behind.
                    if not _in_use(entry):
                        shutil.rmtree(entry, ignore_errors=True)
                        removed += 1
        return removed

    # -- internals ------------------------------------------------------------------------

    def _load(self, kind: str, folder: Path) -> VersionInfo | None:
        try:
            parts = {name: _read_json(folder / name) for name in _MANIFEST_FILES}
            created = iso_utc(datetime.fromtimestamp(folder.stat().st_mtime, UTC))
            bad = [name for name, value in parts.items() if not isinstance(value, dict)]
            if bad:
                raise ValueError(f"{', '.join(bad)} is not a JSON object")
        except (OSError, ValueError) as exc:
            if folder.is_dir():
                log.warning("ignoring damaged model version %s (%s)", folder, exc)
            return None
        return VersionInfo(
            kind=kind,
            version=folder.name,
            path=folder,
            created_at=str(parts["data.json"].get("created_at", created)),
            metrics=parts["metrics.json"],
            data=parts["data.json"],
            config=parts["config.json"],
            serving=parts["serving.json"],
        )

    def _append_history(self, kind: str, item: dict[str, Any]) -> None:
        path = self.kind_dir(kind) / HISTORY_FILE
        with open(path, "a", encoding="utf-8") as fp:
            fp.write(json.dumps(item, sort_keys=True) + "\n")
            fp.flush()
            os.fsync(fp.fileno())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, blocking=True)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _sync_db(self) -> None:
        """Mirror the versions and champions into the project's model_versions table."""
        if self.db_path is None:
            return
        rows = []
        with contextlib.suppress(OSError):
            for folder in sorted(self.root.iterdir()):
                if not folder.is_dir() or not _KIND_RE.match(folder.name):
                    continue
                champion = self.champion(folder.name)
                for v in self.versions(folder.name):
                    rows.append((v.kind, v.number, v.created_at, str(v.path),
                                 v.data.get("data_hash"), json.dumps(v.metrics, default=str),
                                 int(v.version == champion)))  # fmt: skip
        try:
            from workbench.core.db import connect

            conn = connect(self.db_path)
            try:
                with conn:
                    conn.execute("DELETE FROM model_versions")
                    conn.executemany(
                        "INSERT INTO model_versions (kind, version, created_at, path, data_hash,"
                        " metrics, is_champion) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            finally:
                conn.close()
        except (sqlite3.Error, WorkbenchError, OSError) as exc:
            log.warning("could not record model versions in %s (%s)", self.db_path, exc)


def _flock(fd: int, *, blocking: bool) -> bool:
    """An exclusive advisory lock on fd; False when not blocking and someone holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one training at a time
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _in_use(folder: Path) -> bool:
    """Whether a live process holds the staging folder's lock."""
    try:
        fd = os.open(folder / STAGING_LOCK, os.O_RDWR)
    except FileNotFoundError:
        # Between mkdtemp and the lock's creation: only a very fresh folder is that.
        try:
            return time.time() - folder.stat().st_mtime < 60
        except OSError:
            return False
    except OSError:
        return True
    try:
        return not _flock(fd, blocking=False)
    finally:
        os.close(fd)


@dataclass
class Readiness:
    """Whether a model kind can be trained now, and why (not)."""

    kind: str
    ready: bool
    reason: str
    samples: int = 0  # usable samples now
    needed: int = 0  # minimum to train
    held_out: int = 0  # of `samples`, in the held-out split
    needed_held_out: int = 0
    new_since_champion: int | None = None  # samples now minus the champion's
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
