"""The training view driven like a user: real clicks and keys, real training in child processes.

The project follows a rule a ranker can learn (ml.training.synthetic): 40 decided groups
of small images, each with a final crop, so the ranker, crop and smart-crop kinds are
ready and train in a few seconds. Failures are injected through the view's public
knobs: the job's settings (a device that does not exist) or the command it starts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from workbench.ml.registry import SPLIT_FILE, Registry
from workbench.ml.training.synthetic import make_rule_project
from workbench.ui.main_window import MainWindow
from workbench.ui.session import open_session
from workbench.ui.training import TrainingView
from workbench.ui.training.reload import champion_reloaders

GROUPS = 40
TRAINING_S = 120_000  # ms: a ranker trains in seconds, but this machine may be busy
LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def rule_project(store):
    project = make_rule_project(store, "t", GROUPS, size=(96, 72))
    # A fixed held-out split (8 of the 40 groups): enough to measure, the same every run.
    project.models_dir.mkdir(parents=True, exist_ok=True)
    (project.models_dir / SPLIT_FILE).write_text(json.dumps({"salt": "ui-1", "fraction": 0.2}))
    return project


@pytest.fixture
def opened(qtbot, store, rule_project):
    """open(**view_args) -> (window, view): the training view shown with Ctrl+5, or a view
    built with `view_args` (job settings, command, kill delay) shown with Ctrl+7."""
    windows: list[MainWindow] = []

    def open_(**view_args) -> tuple[MainWindow, TrainingView]:
        window = MainWindow(open_session(store, "t"))
        windows.append(window)
        view, key = window.training, Qt.Key.Key_5
        if view_args:
            reloaders = champion_reloaders(window.project.models_dir, [window.reviewer.predictor])
            view = TrainingView(window.project, window, reloaders=reloaders, **view_args)
            window.add_view(view, "Ctrl+7")
            key = Qt.Key.Key_7
        window.show()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        qtbot.keyClick(window, key, CTRL)
        qtbot.waitUntil(lambda: window.current_view() is view)
        qtbot.waitUntil(lambda: len(view.statuses) == 4, timeout=20_000)
        return window, view

    yield open_
    for window in windows:
        window.close()
        assert not window.training.running()
        assert not window.session.lock.held


def click(qtbot, button) -> None:
    qtbot.waitUntil(button.isEnabled)
    qtbot.mouseClick(button, LEFT)


def versions(project, kind: str) -> list[str]:
    folder = project.models_dir / kind
    return sorted(p.name for p in folder.glob("v*")) if folder.is_dir() else []


def champion(project, kind: str) -> str | None:
    return Registry(project.models_dir).champion(kind)


def test_cards_say_what_serves_and_what_can_be_trained(opened, qtbot) -> None:
    torch_before = "torch" in sys.modules  # another test in this process may have loaded it
    window, view = opened()
    assert torch_before or "torch" not in sys.modules  # the status read imports no torch
    ranker = view.cards["ranker"]
    assert ranker.badge.text() == "no model yet"
    assert ranker.readiness.text().startswith(f"Ready: {GROUPS} decided groups")
    assert ranker.retrain.isEnabled() and view.retrain_all.isEnabled()
    ocr = view.cards["ocr"]  # no plate labels in this project
    assert not ocr.retrain.isEnabled()
    assert "more" in ocr.readiness.text() or ocr.readiness.text().startswith("Not available")
    assert "3 of 4 models can be retrained" in view.summary.text()
    assert "Ctrl+Enter" in window.hints.text() and "Esc" in window.hints.text()
    qtbot.keyClick(window, Qt.Key.Key_Question)
    assert window.overlay.isVisible()
    assert any("retrain every model that is ready" in line for line in window.overlay.lines())


def test_a_click_trains_the_ranker_in_a_child_and_the_reviewer_serves_it(opened, qtbot) -> None:
    window, view = opened()
    assert window.reviewer.predictor.versions()["ranker"] == "heuristic"
    changed: list[str] = []
    view.championChanged.connect(changed.append)
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S) as finished:
        click(qtbot, view.cards["ranker"].retrain)
        assert view.running() and not view.cards["smartcrop"].retrain.isEnabled()
        qtbot.waitUntil(lambda: view.run is None or view.run.pid is not None, timeout=20_000)
        assert view.run is None or view.run.pid != os.getpid()  # a child process trains
    (outcome,) = finished.args[0]
    (result,) = outcome.results
    assert (result.kind, result.status, result.version) == ("ranker", "promoted", "v1")
    assert view.curves.points("loss") >= 2 and view.curves.points("held_out_top1") >= 2
    assert view.tabs.currentWidget() is view.results
    (card,) = view.results.cards()
    assert card.header.text() == "Ranker v1: promoted: the new champion"
    assert card.rollback.isVisible() and not card.promote.isVisible()
    assert champion(window.project, "ranker") == "v1"
    # Announced once the window's predictors serve it.
    qtbot.waitUntil(lambda: changed == ["ranker"], timeout=5000)
    assert window.reviewer.predictor.versions()["ranker"] == "v1"
    qtbot.waitUntil(lambda: view.cards["ranker"].badge.text() == "champion v1")
    assert "Held-out: top-1" in view.cards["ranker"].metrics.text()
    # The reviewer's predictor was told at once: no restart, no waiting for its next check.
    qtbot.waitUntil(lambda: window.reviewer.predictor.versions()["ranker"] == "v1", timeout=5000)


def test_esc_cancels_a_run_and_nothing_changes(opened, qtbot) -> None:
    window, view = opened(job_settings={"ranker": {"epochs": 40}})
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S):
        click(qtbot, view.cards["ranker"].retrain)
    assert champion(window.project, "ranker") == "v1"
    view.job_settings["ranker"] = {"epochs": 10_000}
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S) as finished:
        click(qtbot, view.cards["ranker"].retrain)
        qtbot.waitUntil(lambda: view.curves.points("loss") >= 1, timeout=TRAINING_S)
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    (outcome,) = finished.args[0]
    assert outcome.cancelled and not outcome.killed
    assert [r.status for r in outcome.results] == ["cancelled"]
    assert versions(window.project, "ranker") == ["v1"]
    assert champion(window.project, "ranker") == "v1"
    assert "cancelled" in view.panel.notice.text()
    assert view.panel.headline.text() == "Training cancelled."
    assert view.cards["ranker"].retrain.isEnabled()


def test_a_crash_is_a_sentence_with_the_log_one_click_away(opened, qtbot) -> None:
    crash = "import sys; print('CUDA error: out of memory', file=sys.stderr); sys.exit(3)"
    window, view = opened(command=[sys.executable, "-c", crash])
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S):
        click(qtbot, view.cards["smartcrop"].retrain)
    notice = view.panel.notice.text()
    assert "stopped unexpectedly (exit status 3)" in notice and "log" in notice
    assert "Traceback" not in notice
    (card,) = view.results.cards()
    assert card.header.text() == "Smart crop: failed"
    click(qtbot, card.show_log)
    assert view.tabs.currentWidget() is view.log_pane
    assert "CUDA error: out of memory" in view.log_pane.text()
    assert versions(window.project, "smartcrop") == []
    # The app goes on: another view and back, and the model can be retrained again.
    qtbot.keyClick(window, Qt.Key.Key_1, CTRL)
    qtbot.waitUntil(lambda: window.current_view() is window.reviewer)
    qtbot.keyClick(window, Qt.Key.Key_7, CTRL)
    qtbot.waitUntil(lambda: window.current_view() is view)
    qtbot.waitUntil(view.cards["smartcrop"].retrain.isEnabled)
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert view.tabs.currentWidget() is view.results


def test_ctrl_enter_trains_every_ready_model_and_one_failure_blocks_none(opened, qtbot) -> None:
    window, view = opened(job_settings={"ranker": {"device": "tpu"}, "crop": {"epochs": 5}})
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S) as finished:
        qtbot.keyClick(window, Qt.Key.Key_Return, CTRL)
    outcomes = finished.args[0]
    by_kind = {r.kind: r for o in outcomes for r in o.results}
    assert list(by_kind) == ["smartcrop", "ranker", "crop"]  # cheapest first
    assert by_kind["ranker"].status == "failed"
    assert "Unknown device 'tpu'" in by_kind["ranker"].message
    assert by_kind["smartcrop"].status in ("promoted", "kept")
    assert by_kind["crop"].status in ("promoted", "kept")
    assert "Unknown device 'tpu'" in view.panel.notice.text()
    assert len(view.results.cards()) == 3
    assert versions(window.project, "ranker") == []


def test_promote_and_roll_back_by_hand(opened, qtbot) -> None:
    window, view = opened()
    with qtbot.waitSignal(view.allFinished, timeout=TRAINING_S) as finished:
        click(qtbot, view.cards["smartcrop"].retrain)
    (result,) = finished.args[0][0].results
    assert result.version == "v1" and result.status in ("promoted", "kept")
    (card,) = view.results.cards()
    steps = [("rollback", None), ("promote", "v1")]
    if result.status == "kept":
        steps.reverse()
    for button, expected in steps:
        with qtbot.waitSignal(view.championChanged, timeout=10_000):
            click(qtbot, getattr(card, button))
        assert champion(window.project, "smartcrop") == expected
        badge = f"champion {expected}" if expected else "no model yet"
        qtbot.waitUntil(lambda b=badge: view.cards["smartcrop"].badge.text() == b)
    history = Registry(window.project.models_dir).history("smartcrop")
    assert history[-1]["reason"] == ("manual" if steps[-1][0] == "promote" else "rollback")
    learned = view.cards["smartcrop"].learned.text()
    assert "average crop" in learned and "variation (CV)" in learned


def test_a_job_that_ignores_cancel_is_killed_with_its_whole_group(opened, qtbot) -> None:
    stubborn = (
        "import json, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(json.dumps({'type': 'log', 'level': 'INFO', 'message': f'grandchild {child.pid}'}),"
        " flush=True)\n"
        "time.sleep(60)\n"
    )
    window, view = opened(command=[sys.executable, "-c", stubborn], kill_after_s=0.5)
    with qtbot.waitSignal(view.allFinished, timeout=20_000) as finished:
        click(qtbot, view.cards["smartcrop"].retrain)
        qtbot.waitUntil(lambda: "grandchild" in view.log_pane.text(), timeout=20_000)
        click(qtbot, view.panel.cancel)
    (outcome,) = finished.args[0]
    assert outcome.cancelled and outcome.killed
    assert "did not stop within" in outcome.results[0].message
    line = next(x for x in view.log_pane.text().splitlines() if "grandchild" in x)
    grandchild = int(line.rsplit(" ", 1)[1])
    qtbot.waitUntil(lambda: not _alive(grandchild), timeout=5000)


def test_closing_the_window_mid_training_stops_the_job(opened, qtbot) -> None:
    window, view = opened(job_settings={"ranker": {"epochs": 10_000}})
    click(qtbot, view.cards["ranker"].retrain)
    qtbot.waitUntil(lambda: view.curves.points("loss") >= 1, timeout=TRAINING_S)
    pid = view.run.pid
    window.close()
    assert not view.running() and not _alive(pid)
    assert versions(window.project, "ranker") == []


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# -- the Qt-free parts: words, clocks, how a child's end is read ---------------------------


def test_progress_estimates_the_time_left_from_the_stage_pace() -> None:
    from workbench.ui.training.progress import RunProgress, clock

    p = RunProgress("ranker", "Ranker", 2, 3, began=0.0, stage_began=0.0)
    p.update({"stage": "training", "step": 100, "total": 1000, "metrics": {"loss": 0.5}}, 10.0)
    assert p.seconds_left(10.0) is None  # one report: no pace yet
    p.update({"stage": "training", "step": 300, "total": 1000}, 14.0)
    assert p.seconds_left(14.0) == pytest.approx(14.0)  # 200 epochs in 4 s, 700 to go
    assert p.headline() == "Training the ranker (2 of 3): training, epoch 300 of 1000"
    assert p.times(14.0) == "Elapsed 0:14   ·   about 0:14 left in this stage"
    p.update({"stage": "export", "message": "exporting to ONNX"}, 30.0)
    assert p.fraction() is None and p.seconds_left(30.0) is None
    assert clock(3725) == "1:02:05"


def test_a_child_without_a_result_gets_a_sentence_not_a_traceback() -> None:
    from workbench.ml.jobs import JobResult
    from workbench.ui.training.supervisor import outcome_for

    crashed = outcome_for("ocr", "plate OCR", None, 3, False, False)
    assert crashed.synthetic and crashed.results[0].status == "failed"
    assert "plate OCR training process stopped unexpectedly (exit status 3)" in crashed.results[0].message
    killed = outcome_for("ranker", "ranker", None, -9, False, False)
    assert "SIGKILL (the system may have run out of memory)" in killed.results[0].message
    stubborn = outcome_for("crop", "crop proposer", None, -9, True, True, kill_after_s=3)
    assert stubborn.results[0].status == "cancelled" and "within 3 s" in stubborn.results[0].message
    refused = outcome_for("ranker", "ranker", [JobResult("?", "failed", "Bad job request.")], 1,
                          False, False)  # fmt: skip
    assert refused.results[0].kind == "ranker" and not refused.synthetic


def test_metrics_and_results_read_as_sentences() -> None:
    from workbench.ml.jobs import JobResult
    from workbench.ui.training.status import format_metric, metrics_text, results_sentence

    assert format_metric("top1", 0.8234) == "82%"
    assert format_metric("mean_iou", 0.8234) == "0.82"
    assert format_metric("loss", 0.001234) == "0.001234"
    assert metrics_text({"n": 8, "pairwise": 0.9, "top1": 0.75}, "top1") == "top-1 75% · pairwise 90%"
    sentence = results_sentence([JobResult("ranker", "promoted", version="v2"),
                                 JobResult("smartcrop", "kept", version="v3"),
                                 JobResult("ocr", "failed", "No plates are labeled yet.")])  # fmt: skip
    assert sentence == ("New champion: ranker v2. Kept, not promoted: smart crop v3. "
                        "Failed: plate OCR. No plates are labeled yet.")  # fmt: skip
