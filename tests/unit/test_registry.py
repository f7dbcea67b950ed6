"""The model registry: v<N> allocation, manifests, atomic staging, champion pointer and
history, rollback, damaged files, the frozen held-out split, the data hash, leftover
staging folders (dead writer vs live writer, a killed child), and the database mirror."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workbench.core.errors import WorkbenchError
from workbench.ml.registry import (
    CHAMPION_FILE,
    HISTORY_FILE,
    SPLIT_FILE,
    STAGING_LOCK,
    STAGING_PREFIX,
    HeldOutSplit,
    Registry,
    data_hash,
)

ROOT = Path(__file__).resolve().parents[2]
KIND = "ranker"
MANIFESTS = ("metrics.json", "config.json", "data.json", "serving.json")


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not what these tests measure, and fsync makes them I/O-bound."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models" / "p")


def commit(
    registry: Registry,
    kind: str = KIND,
    *,
    metrics: dict | None = None,
    serving: dict | None = None,
    samples: dict | None = None,
) -> str:
    """Stages a version with a model file and commits it; its name."""
    with registry.stage(kind) as staged:
        (staged.path / "model.onnx").write_bytes(b"model bytes")
        info = registry.commit(
            staged,
            metrics=metrics if metrics is not None else {"top1": 0.5},
            data={"data_hash": "h" * 64, "samples": samples or {"train": 8, "held_out": 2}},
            config={"kind": kind, "epochs": 3},
            serving=serving if serving is not None else {"feature_version": "f1"},
        )
    return info.version


def staging_folders(registry: Registry, kind: str = KIND) -> list[Path]:
    folder = registry.kind_dir(kind)
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX)]


def names(registry: Registry, kind: str = KIND) -> list[str]:
    return [v.version for v in registry.versions(kind)]


# -- allocation and manifests ---------------------------------------------------------------


def test_commit_allocates_v1_v2_v3_with_manifests(registry: Registry) -> None:
    assert names(registry) == []
    assert [commit(registry) for _ in range(3)] == ["v1", "v2", "v3"]
    assert names(registry) == ["v1", "v2", "v3"]
    assert staging_folders(registry) == []
    info = registry.version(KIND, "v2")
    assert info.path == registry.kind_dir(KIND) / "v2" and info.number == 2
    for name in MANIFESTS:
        assert (info.path / name).is_file(), name
    assert (info.path / "model.onnx").read_bytes() == b"model bytes"
    assert not (info.path / STAGING_LOCK).exists()  # the lock file does not ship
    assert json.loads((info.path / "metrics.json").read_text()) == {"top1": 0.5}
    assert json.loads((info.path / "config.json").read_text()) == {"kind": KIND, "epochs": 3}
    assert json.loads((info.path / "serving.json").read_text()) == {"feature_version": "f1"}
    assert info.data["data_hash"] == "h" * 64
    assert info.samples == {"train": 8, "held_out": 2}
    assert info.to_dict()["data_hash"] == "h" * 64
    # Kinds are numbered independently.
    assert commit(registry, "crop") == "v1"


def test_commit_and_promote_fsync_what_they_write(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    commit(registry)
    assert len(synced) >= len(MANIFESTS) + 1  # each manifest, and the renamed folder
    synced.clear()
    registry.promote(KIND, "v1")
    assert len(synced) >= 2  # the pointer and the history line


def test_serving_defaults_to_an_empty_manifest(registry: Registry) -> None:
    with registry.stage(KIND) as staged:
        info = registry.commit(staged, metrics={}, data={}, config={})
    assert json.loads((info.path / "serving.json").read_text()) == {}


def test_a_number_is_never_reused_after_a_champion_folder_is_deleted(registry: Registry) -> None:
    commit(registry)
    registry.promote(KIND, commit(registry))  # v2, in the history now
    shutil.rmtree(registry.kind_dir(KIND) / "v2")
    assert names(registry) == ["v1"]
    assert registry.champion(KIND) is None  # a pointer to nothing is no champion
    assert commit(registry) == "v3"


def test_a_number_is_never_reused_after_a_kept_version_is_deleted(registry: Registry) -> None:
    """registry.py says "Never reuse a number, even of a version folder removed by hand";
    a version that was never champion is in no history line, so its number comes back."""
    commit(registry)
    commit(registry)  # v2: kept, never promoted
    shutil.rmtree(registry.kind_dir(KIND) / "v2")
    assert commit(registry) == "v3"


def test_a_number_is_never_reused_after_every_folder_is_deleted(registry: Registry) -> None:
    commit(registry)
    commit(registry)
    for name in ("v1", "v2"):
        shutil.rmtree(registry.kind_dir(KIND) / name)
    assert names(registry) == [] and registry.history(KIND) == []
    assert commit(registry) == "v3"


def test_a_damaged_version_counter_falls_back_to_the_folders(registry: Registry) -> None:
    commit(registry)
    commit(registry)
    counters = [p for p in registry.kind_dir(KIND).iterdir()
                if p.is_file() and not p.name.startswith(".")]  # fmt: skip
    assert len(counters) == 1  # the record of the highest number given
    counters[0].write_text("not a number")
    assert commit(registry) == "v3"


def test_commit_skips_past_a_damaged_folder_of_the_next_number(registry: Registry) -> None:
    commit(registry)
    damaged = registry.kind_dir(KIND) / "v2"
    damaged.mkdir()
    (damaged / "metrics.json").write_text("{not json")
    assert commit(registry) == "v3"
    assert names(registry) == ["v1", "v3"]
    assert (damaged / "metrics.json").read_text() == "{not json"  # left alone


def test_concurrent_commits_get_distinct_numbers(registry: Registry) -> None:
    out: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(staged) -> None:  # noqa: ANN001
        try:
            start.wait(timeout=10)
            out.append(registry.commit(staged, metrics={}, data={}, config={}).version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with contextlib.ExitStack() as stack:
        staged = [stack.enter_context(registry.stage(KIND)) for _ in range(6)]
        threads = [threading.Thread(target=work, args=(s,)) for s in staged]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert sorted(out, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 7)]
    assert names(registry) == sorted(out, key=lambda v: int(v[1:]))
    assert staging_folders(registry) == []


def test_bad_kind_names_are_refused(registry: Registry) -> None:
    for bad in ("../escape", "Ranker", "", "a/b"):
        with pytest.raises(WorkbenchError) as info:
            registry.kind_dir(bad)
        assert "is not a model kind" in info.value.message


# -- staging --------------------------------------------------------------------------------


def test_an_exception_inside_stage_leaves_no_folder_and_no_version(registry: Registry) -> None:
    with pytest.raises(RuntimeError, match="training blew up"):
        with registry.stage(KIND) as staged:
            (staged.path / "model.onnx").write_bytes(b"half")
            assert staged.path.is_dir() and staged.path.name.startswith(STAGING_PREFIX)
            raise RuntimeError("training blew up")
    assert not staged.path.exists()
    assert staging_folders(registry) == []
    assert names(registry) == [] and registry.champion(KIND) is None


def test_a_stage_left_without_commit_keeps_nothing(registry: Registry) -> None:
    with registry.stage(KIND) as staged:
        (staged.path / "model.onnx").write_bytes(b"never committed")
    assert staging_folders(registry) == [] and names(registry) == []


def test_clean_staging_removes_a_dead_writers_folder(registry: Registry) -> None:
    folder = registry.kind_dir(KIND) / f"{STAGING_PREFIX}dead"
    folder.mkdir(parents=True)
    (folder / STAGING_LOCK).touch()  # nobody holds it
    (folder / "model.onnx").write_bytes(b"partial")
    assert registry.clean_staging(KIND) == 1
    assert not folder.exists()
    assert registry.clean_staging(KIND) == 0


def test_the_next_stage_removes_a_dead_writers_folder(registry: Registry) -> None:
    folder = registry.kind_dir(KIND) / f"{STAGING_PREFIX}dead"
    folder.mkdir(parents=True)
    (folder / STAGING_LOCK).touch()
    with registry.stage(KIND) as staged:
        assert not folder.exists()
        assert staging_folders(registry) == [staged.path]


def test_clean_staging_keeps_a_folder_whose_lock_is_held(registry: Registry) -> None:
    import fcntl

    folder = registry.kind_dir(KIND) / f"{STAGING_PREFIX}live"
    folder.mkdir(parents=True)
    fd = os.open(folder / STAGING_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert registry.clean_staging(KIND) == 0
        assert folder.is_dir()
        # Starting another training of the same kind leaves it alone too.
        assert commit(registry) == "v1"
        assert folder.is_dir()
    finally:
        os.close(fd)
    assert registry.clean_staging(KIND) == 1 and not folder.exists()


def test_clean_staging_keeps_the_folder_of_an_open_stage(registry: Registry) -> None:
    with registry.stage(KIND) as first:
        (first.path / "model.onnx").write_bytes(b"first")
        assert Registry(registry.root).clean_staging(KIND) == 0
        with registry.stage(KIND) as second:  # a second training starts meanwhile
            assert first.path.is_dir()
            v_second = registry.commit(second, metrics={}, data={}, config={}).version
        v_first = registry.commit(first, metrics={}, data={}, config={}).version
    assert (v_second, v_first) == ("v1", "v2")
    assert (registry.kind_dir(KIND) / "v2" / "model.onnx").read_bytes() == b"first"


def test_clean_staging_lockless_folders_by_age(registry: Registry) -> None:
    """A folder without its lock file is a writer between mkdtemp and the lock: kept while
    fresh, removed once old."""
    fresh = registry.kind_dir(KIND) / f"{STAGING_PREFIX}fresh"
    old = registry.kind_dir(KIND) / f"{STAGING_PREFIX}old"
    fresh.mkdir(parents=True)
    old.mkdir()
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    assert registry.clean_staging(KIND) == 1
    assert fresh.is_dir() and not old.exists()


CRASHER = """
import os, signal, sys
from pathlib import Path
from workbench.ml.registry import Registry
registry = Registry(Path(sys.argv[1]))
with registry.stage("ranker") as staged:
    (staged.path / "model.onnx").write_bytes(b"half a model")
    (staged.path / "metrics.json").write_text("{}")
    print(staged.path, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_crash_mid_staging_keeps_nothing_and_leaves_the_champion(
    registry: Registry, how: str
) -> None:
    registry.promote(KIND, commit(registry))
    pointer = registry.kind_dir(KIND) / CHAMPION_FILE
    before = pointer.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CRASHER, str(registry.root), how],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert child.returncode == (-signal.SIGKILL if how == "kill" else 3), child.stderr
    leftover = Path(child.stdout.strip())
    assert leftover.is_dir() and leftover.name.startswith(STAGING_PREFIX)  # the crash's trace
    assert names(registry) == ["v1"]
    assert registry.champion(KIND) == "v1" and pointer.read_bytes() == before
    assert registry.clean_staging(KIND) == 1
    assert not leftover.exists() and staging_folders(registry) == []
    assert commit(registry) == "v2"  # the next training goes on as usual


# -- champion, history, rollback --------------------------------------------------------------


def test_promote_writes_the_pointer_and_appends_history(registry: Registry) -> None:
    v1 = commit(registry, serving={"feature_version": "f1", "input": "x"})
    info = registry.promote(KIND, v1, reason="beat the heuristic")
    assert info.version == "v1"
    pointer = json.loads((registry.kind_dir(KIND) / CHAMPION_FILE).read_text())
    assert pointer["version"] == "v1"
    assert pointer["feature_version"] == "f1" and pointer["input"] == "x"
    assert pointer["reason"] == "beat the heuristic" and pointer["promoted_at"]
    assert registry.champion(KIND) == "v1"
    assert registry.champion_info(KIND).version == "v1"  # type: ignore[union-attr]
    v2 = commit(registry)
    registry.promote(KIND, v2)
    history = registry.history(KIND)
    assert [(h["version"], h["previous"]) for h in history] == [("v1", None), ("v2", "v1")]
    assert history[1]["reason"] == "manual" and history[1]["at"]
    assert len((registry.kind_dir(KIND) / HISTORY_FILE).read_text().splitlines()) == 2


def test_promote_of_a_missing_version_is_a_sentence(registry: Registry) -> None:
    commit(registry)
    with pytest.raises(WorkbenchError) as info:
        registry.promote(KIND, "v9")
    message = info.value.message
    assert message.startswith("There is no ranker model v9") and message.endswith(".")
    assert "v1" in message and info.value.code == "not_found"
    with pytest.raises(WorkbenchError) as bad:
        registry.promote(KIND, "latest")
    assert "is not a version" in bad.value.message
    assert registry.champion(KIND) is None and registry.history(KIND) == []


def test_rollback_goes_to_the_previous_champion(registry: Registry) -> None:
    v1, v2 = commit(registry), commit(registry)
    registry.promote(KIND, v1)
    registry.promote(KIND, v2)
    assert registry.rollback(KIND) == "v1"
    assert registry.champion(KIND) == "v1"
    assert registry.history(KIND)[-1]["reason"] == "rollback"
    assert names(registry) == ["v1", "v2"]  # rollback deletes no version


def test_rollback_with_no_earlier_champion_removes_the_pointer(registry: Registry) -> None:
    registry.promote(KIND, commit(registry))
    assert registry.rollback(KIND) is None
    assert registry.champion(KIND) is None
    assert not (registry.kind_dir(KIND) / CHAMPION_FILE).exists()
    last = registry.history(KIND)[-1]
    assert last["version"] is None and last["previous"] == "v1"
    with pytest.raises(WorkbenchError) as info:
        registry.rollback(KIND)
    assert "no ranker champion to roll back" in info.value.message
    assert commit(registry) == "v2"  # a rollback line in the history breaks no allocation


def test_repeated_rollbacks_walk_back_through_the_champions(registry: Registry) -> None:
    """v1, v2, v3 promoted in turn: rolling back three times should give v2, v1, then no
    champion. (Today the second rollback returns to v3: the rollback's own history line
    names v3 as v2's "previous", so rollbacks toggle between the last two.)"""
    for _ in range(3):
        registry.promote(KIND, commit(registry))
    assert registry.rollback(KIND) == "v2"
    assert registry.rollback(KIND) == "v1"
    assert registry.rollback(KIND) is None
    assert registry.champion(KIND) is None


def test_rollback_skips_a_previous_champion_whose_folder_is_gone(registry: Registry) -> None:
    """registry.rollback says it walks the history "skipping versions whose folder is gone":
    with v2 deleted by hand, rolling back from v3 should land on v1, not on no champion."""
    for _ in range(3):
        registry.promote(KIND, commit(registry))
    shutil.rmtree(registry.kind_dir(KIND) / "v2")
    assert registry.rollback(KIND) == "v1"
    assert registry.champion(KIND) == "v1"


# -- damaged files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", '"v1"', "{}", '{"version": 1}', '{"version": "../v1"}',
     '{"version": "v7"}', ""],
)  # fmt: skip
def test_a_damaged_champion_pointer_reads_as_no_champion(registry: Registry, text: str) -> None:
    commit(registry)
    (registry.kind_dir(KIND) / CHAMPION_FILE).write_text(text)
    assert registry.champion(KIND) is None
    assert registry.champion_info(KIND) is None
    registry.promote(KIND, "v1")  # and a promote repairs it
    assert registry.champion(KIND) == "v1"


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_a_version_with_a_bad_manifest_is_skipped(registry: Registry, manifest: str) -> None:
    commit(registry)
    commit(registry)
    (registry.kind_dir(KIND) / "v1" / manifest).write_text("{truncated")
    assert names(registry) == ["v2"]
    with pytest.raises(WorkbenchError):
        registry.version(KIND, "v1")
    (registry.kind_dir(KIND) / "v2" / manifest).unlink()
    assert names(registry) == []


def test_a_version_whose_manifest_is_not_an_object_is_skipped(registry: Registry) -> None:
    """Valid JSON of the wrong shape is as damaged as bad JSON. Today data.json `[]` makes
    `versions()` raise AttributeError (`.get` on a list), and serving.json `null` is
    loaded, then breaks promote (`{**None}`)."""
    for _ in range(3):
        commit(registry)
    (registry.kind_dir(KIND) / "v1" / "data.json").write_text("[]")
    (registry.kind_dir(KIND) / "v2" / "serving.json").write_text("null")
    assert names(registry) == ["v3"]


def test_unrelated_entries_in_the_kind_folder_are_ignored(registry: Registry) -> None:
    commit(registry)
    folder = registry.kind_dir(KIND)
    (folder / "v2").write_text("a file, not a folder")
    (folder / "notes").mkdir()
    (folder / "v0").mkdir()
    (folder / "v01").mkdir()
    assert names(registry) == ["v1"]
    assert names(registry, "never_trained") == []


# -- the held-out split and the data hash ---------------------------------------------------


def test_split_is_frozen_across_registry_instances(tmp_path: Path) -> None:
    root = tmp_path / "models" / "p"
    first = Registry(root).split()
    assert (root / SPLIT_FILE).is_file()
    again = Registry(root).split()
    assert again == first and first.fraction == pytest.approx(0.2)
    keys = [f"p_group_{i:05d}" for i in range(500)]
    assert [first.held_out(k) for k in keys] == [again.held_out(k) for k in keys]
    assert [first.held_out(k) for k in keys] == [first.held_out(k) for k in keys]
    other = Registry(tmp_path / "models" / "q").split()
    assert other.salt != first.salt  # each project draws its own


def test_held_out_takes_about_the_fraction(registry: Registry) -> None:
    split = registry.split()
    share = sum(split.held_out(f"group-{i}") for i in range(10_000)) / 10_000
    assert 0.17 <= share <= 0.23
    assert not any(HeldOutSplit("s", 0.0).held_out(str(i)) for i in range(200))
    assert all(HeldOutSplit("s", 1.0).held_out(str(i)) for i in range(200))
    # The salt decides: another salt puts other keys aside.
    a = [HeldOutSplit("a", 0.5).held_out(str(i)) for i in range(200)]
    b = [HeldOutSplit("b", 0.5).held_out(str(i)) for i in range(200)]
    assert a != b


def test_a_damaged_split_file_is_a_sentence(registry: Registry) -> None:
    registry.root.mkdir(parents=True)
    (registry.root / SPLIT_FILE).write_text('{"salt": "x"}')
    with pytest.raises(WorkbenchError) as info:
        registry.split()
    assert info.value.code == "damaged" and "Move it away" in info.value.message


def test_data_hash_is_order_independent_and_content_sensitive() -> None:
    records = [{"group_id": f"g{i}", "box": [0.1, 0.2, 0.3, 0.4], "held_out": i % 2 == 0}
               for i in range(5)]  # fmt: skip
    h = data_hash(records)
    assert len(h) == 64 and int(h, 16) >= 0
    assert data_hash(list(reversed(records))) == h
    assert data_hash([{k: r[k] for k in reversed(list(r))} for r in records]) == h  # key order
    changed = [dict(r) for r in records]
    changed[2]["box"] = [0.1, 0.2, 0.3, 0.41]
    assert data_hash(changed) != h
    assert data_hash(records[:-1]) != h
    assert data_hash(records + records[:1]) != h  # a duplicate is different data
    assert data_hash([]) != h


# -- the database mirror -------------------------------------------------------------------


def _rows(db_path: Path) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT kind, version, is_champion, data_hash, metrics FROM model_versions "
            "ORDER BY kind, version"
        ).fetchall()
    finally:
        conn.close()


def test_the_model_versions_table_mirrors_the_registry(project) -> None:  # noqa: ANN001
    registry = Registry(project.models_dir, db_path=project.db_path)
    assert _rows(project.db_path) == []
    commit(registry, metrics={"top1": 0.7})
    rows = _rows(project.db_path)
    assert [r[:3] for r in rows] == [(KIND, 1, 0)]
    assert rows[0][3] == "h" * 64 and json.loads(rows[0][4]) == {"top1": 0.7}
    commit(registry)
    commit(registry, "crop")
    assert [r[:3] for r in _rows(project.db_path)] == [("crop", 1, 0), (KIND, 1, 0), (KIND, 2, 0)]
    registry.promote(KIND, "v1")
    registry.promote(KIND, "v2")
    assert [r[:3] for r in _rows(project.db_path)] == [("crop", 1, 0), (KIND, 1, 0), (KIND, 2, 1)]
    registry.rollback(KIND)
    assert [r[:3] for r in _rows(project.db_path)] == [("crop", 1, 0), (KIND, 1, 1), (KIND, 2, 0)]
    registry.promote("crop", "v1")
    assert [r[2] for r in _rows(project.db_path)] == [1, 1, 0]
    registry.rollback("crop")  # crop v1 had no predecessor: no crop champion at all
    assert [r[2] for r in _rows(project.db_path)] == [0, 1, 0]


def test_a_registry_without_a_database_writes_none(registry: Registry, project) -> None:  # noqa: ANN001
    commit(registry)
    assert _rows(project.db_path) == []
