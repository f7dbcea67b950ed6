"""The job protocol: config validation, run_job's statuses, run_all's carrying on and
cancelling, and the JSON-lines child-process runner (a real smart-crop training, bad
requests, SIGTERM mid-job)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from workbench.core.errors import WorkbenchError
from workbench.ml import jobs
from workbench.ml.jobs import (
    Cancelled,
    JobConfig,
    JobResult,
    NotReady,
    Progress,
    check_stop,
    run_all,
    run_job,
)
from workbench.ml.registry import STAGING_PREFIX, Registry

ROOT = Path(__file__).resolve().parents[2]
BASE = {"kind": "smartcrop", "project": "p", "projects_dir": "/nowhere/projects",
        "models_dir": "/nowhere/models"}  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


# -- JobConfig ---------------------------------------------------------------------------------


def test_config_round_trips_through_a_dict() -> None:
    config = JobConfig.from_dict({**BASE, "epochs": 12, "device": "cuda", "seed": 4,
                                  "promote": False, "extra": {"synthetic": 10}})  # fmt: skip
    assert JobConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.epochs == 12 and config.device == "cuda" and config.extra == {"synthetic": 10}
    default = JobConfig.from_dict(BASE)
    assert (default.epochs, default.device, default.seed, default.promote) == (None, "cpu", 0, True)


def _refused(data: Any) -> str:
    with pytest.raises(WorkbenchError) as info:
        JobConfig.from_dict(data)
    assert info.value.code == "invalid_input"
    message = info.value.message
    assert message[0].isupper() and message.endswith("."), message  # a sentence
    return message


def test_config_refuses_unknown_settings() -> None:
    message = _refused({**BASE, "epoch": 3, "learning_rate": 0.1})
    assert message == "Unknown job setting(s): epoch, learning_rate."


def test_config_refuses_a_bad_kind_naming_the_kinds() -> None:
    message = _refused({**BASE, "kind": "yolo"})
    assert "'yolo'" in message
    for kind in ("ranker", "crop", "smartcrop", "ocr"):
        assert kind in message


def test_config_refuses_a_bad_device() -> None:
    message = _refused({**BASE, "device": "tpu"})
    assert "'tpu'" in message and "cpu or cuda" in message


@pytest.mark.parametrize("epochs", [0, -1, 10_001])
def test_config_refuses_epochs_out_of_range(epochs: int) -> None:
    assert _refused({**BASE, "epochs": epochs}) == "Epochs must be a whole number from 1 to 10,000."


@pytest.mark.parametrize("epochs", [1, 10_000])
def test_config_takes_epochs_at_the_limits(epochs: int) -> None:
    assert JobConfig.from_dict({**BASE, "epochs": epochs}).epochs == epochs


@pytest.mark.parametrize("epochs", ["lots", "5", 2.5, True])
def test_config_refuses_epochs_that_are_not_a_whole_number(epochs: Any) -> None:
    """Today "lots" escapes as a bare ValueError from int(), and "5", 2.5 and True pass
    validation and reach the training loop as a str, float or bool."""
    assert "Epochs" in _refused({**BASE, "epochs": epochs})


def test_config_refuses_missing_fields_and_non_objects() -> None:
    message = _refused({"kind": "smartcrop"})
    assert message.startswith("Bad job config:") and "project" in message
    assert _refused(["smartcrop"]) == "A job config must be a JSON object."


def test_job_result_from_dict_ignores_unknown_keys() -> None:
    result = JobResult("ranker", "kept", "saved", version="v2", metrics={"top1": 0.9})
    data = {**result.to_dict(), "future_field": 1}
    assert JobResult.from_dict(data) == result


def test_check_stop_raises_cancelled_with_a_sentence() -> None:
    check_stop(lambda: False)
    with pytest.raises(Cancelled) as info:
        check_stop(lambda: True)
    assert info.value.code == "cancelled" and info.value.message.endswith(".")


def test_seed_everything_fixes_python_and_numpy() -> None:
    import random

    import numpy as np

    jobs.seed_everything(7)
    first = (random.random(), float(np.random.rand()))
    jobs.seed_everything(7)
    assert (random.random(), float(np.random.rand())) == first
    jobs.seed_everything(8)
    assert (random.random(), float(np.random.rand())) != first


def test_the_protocol_modules_import_no_torch() -> None:
    """The GUI imports these for status cards and the runner: no torch, no onnxruntime."""
    code = (
        "import sys\n"
        "import workbench.ml.jobs, workbench.ml.registry, workbench.ml.jobrunner\n"
        "import workbench.ml.training.data, workbench.ml.training.smartcrop\n"
        "import workbench.ml.training.common, workbench.ml.predict\n"
        "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=60, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


# -- run_job -----------------------------------------------------------------------------------


@pytest.fixture
def fake_kinds(monkeypatch: pytest.MonkeyPatch):
    """Replaces JOBS with fake kinds whose behaviour each test sets in the returned dict."""
    behaviour: dict[str, Any] = {}
    calls: list[str] = []

    def factory(kind: str):
        def run(config: JobConfig, progress, should_stop) -> JobResult:  # noqa: ANN001
            calls.append(config.kind)
            action = behaviour[kind]
            if isinstance(action, BaseException):
                raise action
            return action(config, progress, should_stop)

        return run

    monkeypatch.setattr(jobs, "JOBS", {k: f"fake:{k}" for k in ("alpha", "beta", "gamma")})
    monkeypatch.setattr(jobs, "job_function", factory)
    behaviour["calls"] = calls
    return behaviour


def _config(kind: str = "alpha", **kw: Any) -> JobConfig:
    return JobConfig(kind=kind, project="p", projects_dir="/x", models_dir="/y", **kw)


def _promoted(config: JobConfig, progress, should_stop) -> JobResult:  # noqa: ANN001
    progress(Progress("training", 1, 2, {"loss": 0.5}))
    return JobResult(config.kind, "promoted", "done", version="v1", champion="v1")


def test_run_job_returns_the_jobs_result_and_times_it(fake_kinds: dict) -> None:
    fake_kinds["alpha"] = _promoted
    seen: list[Progress] = []
    result = run_job(_config(), seen.append)
    assert (result.kind, result.status, result.version) == ("alpha", "promoted", "v1")
    assert seen == [Progress("training", 1, 2, {"loss": 0.5})]
    assert result.seconds >= 0.0


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (NotReady("needs 12 more final crops."), "not_ready", "needs 12 more final crops."),
        (Cancelled("Training was cancelled."), "cancelled", "Training was cancelled."),
        (WorkbenchError("The project is damaged."), "failed", "The project is damaged."),
        (RuntimeError("boom"), "failed", "Training alpha failed: boom."),
        (ZeroDivisionError("division by zero"), "failed", "Training alpha failed: division by zero."),
    ],
)  # fmt: skip
def test_run_job_turns_errors_into_statuses(
    fake_kinds: dict, error: Exception, status: str, message: str
) -> None:
    fake_kinds["alpha"] = error
    result = run_job(_config())
    assert (result.kind, result.status, result.message) == ("alpha", status, message)
    assert result.version is None


@pytest.mark.parametrize("error", [MemoryError(), KeyboardInterrupt()])
def test_run_job_lets_memory_errors_and_interrupts_through(
    fake_kinds: dict, error: BaseException
) -> None:
    fake_kinds["alpha"] = error
    with pytest.raises(type(error)):
        run_job(_config())


def test_run_job_asked_to_stop_before_it_starts_runs_nothing(fake_kinds: dict) -> None:
    fake_kinds["alpha"] = _promoted
    result = run_job(_config(), should_stop=lambda: True)
    assert result.status == "cancelled" and result.message
    assert fake_kinds["calls"] == []


def test_run_job_refuses_an_invalid_config(fake_kinds: dict) -> None:
    with pytest.raises(WorkbenchError, match="Unknown model kind"):
        run_job(_config("delta"))


def test_run_job_resolves_kinds_through_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real job_function: "module:function" imported on first use; an uninstalled
    module is a failed result naming the fix."""
    monkeypatch.setitem(jobs.JOBS, "echo", "tests.unit.test_jobs:echo_job")
    monkeypatch.setitem(jobs.JOBS, "missing", "workbench_no_such_module_xyz:run")
    monkeypatch.setitem(jobs.JOBS, "typo", "tests.unit.test_jobs:no_such_function")
    result = run_job(_config("echo", seed=5))
    assert (result.status, result.message) == ("kept", "echo seed 5")
    missing = run_job(_config("missing"))
    assert missing.status == "failed"
    assert missing.message.startswith("Cannot train missing:") and "pip install" in missing.message
    typo = run_job(_config("typo"))
    assert typo.status == "failed" and "no_such_function" in typo.message


def echo_job(config: JobConfig, progress, should_stop) -> JobResult:  # noqa: ANN001
    return JobResult(config.kind, "kept", f"echo seed {config.seed}")


# -- run_all -----------------------------------------------------------------------------------


def test_run_all_carries_on_after_a_failing_kind(fake_kinds: dict) -> None:
    fake_kinds["alpha"] = RuntimeError("alpha broke")
    fake_kinds["beta"] = _promoted
    fake_kinds["gamma"] = NotReady("gamma needs labels.")
    results = run_all(_config(epochs=7, seed=3))
    assert [(r.kind, r.status) for r in results] == [
        ("alpha", "failed"), ("beta", "promoted"), ("gamma", "not_ready")]  # fmt: skip
    assert fake_kinds["calls"] == ["alpha", "beta", "gamma"]  # the JOBS order


def test_run_all_passes_the_base_settings_to_every_kind(fake_kinds: dict) -> None:
    seen: list[JobConfig] = []

    def record(config: JobConfig, progress, should_stop) -> JobResult:  # noqa: ANN001
        seen.append(config)
        return JobResult(config.kind, "kept")

    fake_kinds["gamma"] = fake_kinds["alpha"] = record
    run_all(_config("beta", epochs=7, seed=3, promote=False), ["gamma", "alpha"])
    assert [c.kind for c in seen] == ["gamma", "alpha"]
    assert all((c.epochs, c.seed, c.promote, c.project) == (7, 3, False, "p") for c in seen)


def test_run_all_reports_the_rest_cancelled_after_a_stop(fake_kinds: dict) -> None:
    stop = {"now": False}

    def beta(config: JobConfig, progress, should_stop) -> JobResult:  # noqa: ANN001
        stop["now"] = True  # the user presses Cancel while beta runs
        check_stop(should_stop)
        raise AssertionError("unreachable")

    fake_kinds["alpha"] = _promoted
    fake_kinds["beta"] = beta
    fake_kinds["gamma"] = _promoted
    results = run_all(_config(), should_stop=lambda: stop["now"])
    assert [(r.kind, r.status) for r in results] == [
        ("alpha", "promoted"), ("beta", "cancelled"), ("gamma", "cancelled")]  # fmt: skip
    assert results[2].message.startswith("Not started")
    assert fake_kinds["calls"] == ["alpha", "beta"]  # gamma never ran


# -- the child-process runner ------------------------------------------------------------------


def _run_runner(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.ml.jobrunner", *args],
        capture_output=True, text=True, env=_env(), timeout=timeout,
    )  # fmt: skip


def _lines(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        item = json.loads(line)  # every stdout line is JSON, nothing else
        assert isinstance(item, dict) and item.get("type") in ("progress", "log", "result"), line
        out.append(item)
    return out


def test_runner_trains_smartcrop_speaking_json_lines(store) -> None:  # noqa: ANN001
    from workbench.ml.training.synthetic import make_rule_project

    project = make_rule_project(store, "runner", 40, seed=3, size=(128, 96))
    config = JobConfig(kind="smartcrop", project="runner", projects_dir=str(store.projects_dir),
                       models_dir=str(store.models_dir))  # fmt: skip
    child = _run_runner(json.dumps(config.to_dict()))
    assert child.returncode == 0, child.stderr
    lines = _lines(child.stdout)
    types = [item["type"] for item in lines]
    assert types[-1] == "result" and types.count("result") == 1
    assert types[0] == "progress"  # progress comes first, the result last
    progress = [item for item in lines if item["type"] == "progress"]
    assert {"stage", "step", "total", "metrics", "message"} <= set(progress[0])
    stages = [p["stage"] for p in progress]
    assert stages.index("features") < stages.index("training")
    (result,) = lines[-1]["results"]
    assert result["kind"] == "smartcrop" and result["status"] in ("promoted", "kept"), result
    assert result["version"] == "v1" and result["metrics"]["n"] == result["samples"]["held_out"]
    assert result["samples"]["train"] + result["samples"]["held_out"] == 40
    assert any(item["type"] == "log" and "smartcrop v1" in item["message"] for item in lines)
    registry = Registry(project.models_dir)
    assert [v.version for v in registry.versions("smartcrop")] == ["v1"]
    assert registry.champion("smartcrop") == ("v1" if result["status"] == "promoted" else None)


@pytest.mark.parametrize(
    ("args", "says", "kind"),
    [
        (["{not json"], "Bad job request", "?"),
        ([json.dumps({**BASE, "kind": "yolo"})], "Unknown model kind 'yolo'", "yolo"),
        ([json.dumps({**BASE, "colour": "red"})], "Unknown job setting(s): colour.", BASE["kind"]),
        ([], "usage", "?"),
    ],
)
def test_runner_answers_a_bad_request_with_a_failed_result(
    args: list[str], says: str, kind: str
) -> None:
    child = _run_runner(*args, timeout=60)
    assert child.returncode == 1
    lines = _lines(child.stdout)
    assert [item["type"] for item in lines] == ["result"]
    (result,) = lines[0]["results"]
    assert result["status"] == "failed" and says in result["message"]
    assert result["kind"] == kind  # the card it belongs to, when the request names one


# A kind defined in the child's __main__: it stages a version, prints to stdout (which
# must not reach the JSON stream), logs, and polls should_stop while "training".
SLOW_RUNNER = """
import logging, sys, time
from pathlib import Path
from workbench.ml import jobs, jobrunner
from workbench.ml.registry import Registry

def slow_job(config, progress, should_stop):
    registry = Registry(Path(config.models_dir))
    with registry.stage("slow") as staged:
        (staged.path / "model.json").write_text("{}")
        print("a library printing to stdout")
        logging.getLogger("slow").info("slow job started")
        for step in range(600):
            progress(jobs.Progress("training", step, 600, {"loss": 1.0 / (step + 1)}))
            jobs.check_stop(should_stop)
            time.sleep(0.05)
        raise AssertionError("never asked to stop")

jobs.JOBS["slow"] = "__main__:slow_job"
sys.exit(jobrunner.main())
"""


def test_runner_on_sigterm_reports_cancelled_and_keeps_nothing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    config = {**BASE, "kind": "slow", "models_dir": str(models)}
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUNNER, json.dumps(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        assert child.stdout is not None
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        for line in child.stdout:
            seen.append(json.loads(line))
            if seen[-1].get("type") == "progress" and seen[-1]["step"] >= 2:
                break
            assert time.monotonic() < deadline, seen
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    lines = seen + _lines(out)
    assert lines[-1]["type"] == "result"
    (result,) = lines[-1]["results"]
    assert result["status"] == "cancelled" and result["message"], result
    assert any(item["type"] == "log" and item["message"] == "slow job started" for item in lines)
    assert "a library printing to stdout" in err  # stdout stayed JSON only
    assert Registry(models).versions("slow") == []
    assert [p for p in (models / "slow").iterdir() if p.name.startswith(STAGING_PREFIX)] == []


def test_a_real_kind_on_a_missing_project_fails_with_a_sentence(store) -> None:  # noqa: ANN001
    config = JobConfig(kind="smartcrop", project="nowhere", projects_dir=str(store.projects_dir),
                       models_dir=str(store.models_dir))  # fmt: skip
    result = run_job(config)
    assert result.status == "failed" and "nowhere" in result.message, result
    assert not (store.models_dir / "nowhere" / "smartcrop").exists()
