"""Prints the reviewer's figures against ARCHITECTURE.md's performance budget.

- key press to next group painted: from the posted key event to the end of the next
  paint of the view (the paint and its flush to the screen), keys at 4 per second, >= 200
  steps, on 3072 px PNGs; with a cold thumbnail cache (no thumbnails on disk, no cached
  features: every image is decoded from its PNG) and a warm one (thumbnails and features
  cached by an earlier session); p50 / p95 / max each. The steps: a choice on each group
  of the batch (keys 1 2 3 Q W E), then Left back to the first group, then Right again.
  Also: how many steps painted the whole group (every picture) in that first paint, and
  how many choices were made before the AI's proposal had arrived.
- open a folder of 100,000 images to the first group shown: a fresh process, from its
  start to the first paint showing every picture of the first group (a project over a
  folder of 100,000 hard links, already scanned: the daily "open the project" case), with
  the page cache dropped (when allowed) and warm.
- resident memory: peak RSS (VmHWM) of each latency run.

Each figure is taken in a fresh process, in a real X server (Xvfb) when one is installed,
else Qt's offscreen platform. "Cold" means not in Workbench's caches; the page cache is
dropped first when this user may (root), else the files are in it (just written).

    .venv/bin/python benchmarks/bench_reviewer.py [--groups 70] [--keep DIR] [--n 100000]
        [--only cold|warm|open ...] [--window 1920x1080] [--rate 4] [--steps 208]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_scan import drop_caches  # noqa: E402
from reviewer_data import NAME, make_images, make_project, reset  # noqa: E402

KEY_CYCLE = ("1", "2", "3", "Q", "W", "E")


# -- measurements, each in a fresh child process -----------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1], "n": len(ordered)}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: getrusage's ru_maxrss would include the
    parent's peak, which Linux carries across exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for row in fh:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def whole_group(view) -> bool:  # type: ignore[no-untyped-def]
    group = view.current_group()
    tiles = view.row.visible_tiles()
    return (
        group is not None
        and len(tiles) == len(group.images)
        and all(t.state == "image" for t in tiles)
    )


def child_latency(projects: str, size: str, steps: int, rate: float) -> dict:
    from PySide6.QtCore import QEvent, Qt, QTimer
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from workbench.app import application, build_window
    from workbench.ui.reviewer.status import StatusLine
    from workbench.ui.reviewer.tile import ReviewTile
    from workbench.ui.reviewer.tile_row import TileRow

    app = application()
    window = build_window([NAME, "--projects-dir", projects])
    assert window is not None
    w, h = (int(v) for v in size.split("x"))
    window.resize(w, h)
    window.show()
    view = window.reviewer
    state = {"t0": None, "handled": False, "scheduled": False, "step": 0, "waiting": None}
    latencies: list[float] = []
    keys_sent: list[str] = []
    complete: list[bool] = []
    until_complete: list[float] = []
    no_proposal = [0]

    def mark() -> None:
        state["scheduled"] = False
        if state["t0"] is None or not state["handled"]:
            return
        now = time.perf_counter()
        latencies.append((now - state["t0"]) * 1000)
        whole = whole_group(view)
        complete.append(whole)
        if whole:
            until_complete.append(latencies[-1])
        else:
            state["waiting"] = state["t0"]
        state["t0"] = None

    def after_paint() -> None:
        if state["waiting"] is not None and whole_group(view):
            until_complete.append((time.perf_counter() - state["waiting"]) * 1000)
            state["waiting"] = None
        if state["t0"] is not None and state["handled"] and not state["scheduled"]:
            state["scheduled"] = True
            QTimer.singleShot(0, mark)  # runs once this paint (and its flush) is over

    for cls in (ReviewTile, StatusLine, TileRow):
        original = cls.paintEvent

        def paint(widget, event, original=original):  # type: ignore[no-untyped-def]
            original(widget, event)
            after_paint()

        cls.paintEvent = paint  # type: ignore[method-assign]
    press = view.press

    def counted_press(key: str):  # type: ignore[no-untyped-def]
        change = press(key)
        state["handled"] = True
        if change is not None and (change.message or "").startswith("No AI proposal"):
            no_proposal[0] += 1
        return change

    view.press = counted_press  # type: ignore[method-assign]
    groups = len(view.session.groups())
    plan = [KEY_CYCLE[i % len(KEY_CYCLE)] for i in range(groups)]
    while len(plan) < steps:
        plan += ["Left"] * (groups - 1) + ["Right"] * (groups - 1)
    plan = plan[:steps]
    names = {"Left": Qt.Key.Key_Left, "Right": Qt.Key.Key_Right}
    first_shown = [0.0]
    started = time.perf_counter()

    def tick() -> None:
        if state["step"] == 0 and not whole_group(view):
            return  # the first group is not on screen yet
        if state["step"] == 0:
            first_shown[0] = time.perf_counter() - started
            timer.setInterval(round(1000 / rate))
        if state["t0"] is not None:  # the last key never painted: count it as a full period
            latencies.append(1000 / rate)
            complete.append(False)
        if state["step"] >= len(plan):
            timer.stop()
            QTimer.singleShot(500, app.quit)
            return
        key = plan[state["step"]]
        qt_key = names.get(key) or getattr(Qt.Key, f"Key_{key}")
        keys_sent.append(key)
        state.update(t0=time.perf_counter(), handled=False, step=state["step"] + 1)
        QApplication.postEvent(
            view, QKeyEvent(QEvent.Type.KeyPress, qt_key, Qt.KeyboardModifier.NoModifier, key)
        )
        QApplication.postEvent(
            view, QKeyEvent(QEvent.Type.KeyRelease, qt_key, Qt.KeyboardModifier.NoModifier, key)
        )

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    app.exec()
    stats = view.thumbs.stats()
    window.close()
    return {
        "latency_ms": percentiles(latencies),
        "worst": sorted(
            ((round(v, 1), i, keys_sent[i]) for i, v in enumerate(latencies)), reverse=True
        )[:5],  # fmt: skip
        "complete_paints": sum(complete),
        "steps": len(latencies),
        "until_complete_ms": percentiles(until_complete) if until_complete else None,
        "no_proposal": no_proposal[0],
        "decodes": stats.decodes,
        "disk_hits": stats.disk_hits,
        "first_group_s": first_shown[0],
        "peak_rss_mb": peak_rss_mb(),
        "platform": app.platformName(),
    }


def child_first_group(projects: str, name: str, started: float) -> dict:
    """From process start to the first paint showing the first group's every picture."""
    t_start = time.perf_counter() - (time.time() - started)
    from PySide6.QtCore import QTimer

    from workbench.app import application, build_window
    from workbench.ui.reviewer.tile import ReviewTile

    app = application()
    out: dict[str, float] = {"imports_s": time.perf_counter() - t_start}  # and QApplication
    view_ref: list = []
    original = ReviewTile.paintEvent

    def paint(widget, event):  # type: ignore[no-untyped-def]
        original(widget, event)
        if view_ref and "first_group_s" not in out and whole_group(view_ref[0]):
            out["first_group_s"] = time.perf_counter() - t_start
            QTimer.singleShot(0, app.quit)

    ReviewTile.paintEvent = paint  # type: ignore[method-assign]
    window = build_window([name, "--projects-dir", projects])
    assert window is not None
    out["window_s"] = time.perf_counter() - t_start
    view_ref.append(window.reviewer)
    QTimer.singleShot(30_000, app.quit)
    app.exec()
    window.close()
    return out


def run_child(args: list[str], env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--child", *args]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"measurement {args[0]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def start_display(size: str) -> tuple[dict[str, str], subprocess.Popen[bytes] | None]:
    env = dict(os.environ)
    if shutil.which("Xvfb") is None:
        env["QT_QPA_PLATFORM"] = "offscreen"
        return env, None
    display = f":{200 + os.getpid() % 300}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    return env, xvfb


def line(label: str, f: dict[str, float], unit: str = "ms", budget: str = "") -> str:
    return (f"{label:<34} p50 {f['p50']:7.1f} {unit}   p95 {f['p95']:7.1f} {unit}   "
            f"max {f['max']:7.1f} {unit}   (n={f['n']}){budget}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=70, help="groups of 3 PNGs (70)")
    parser.add_argument("--size", type=int, default=3072, help="side of the PNGs (3072)")
    parser.add_argument("--steps", type=int, default=208, help="key presses per run (208)")
    parser.add_argument("--rate", type=float, default=4.0, help="keys per second (4)")
    parser.add_argument("--window", default="1920x1080", help="window size (1920x1080)")
    parser.add_argument("--n", type=int, default=100_000, help="images for the open figure")
    parser.add_argument("--keep", type=Path, help="make (or reuse) the files in this folder")
    parser.add_argument("--only", choices=("cold", "warm", "open"), action="append",
                        help="run only these figures (repeatable)")  # fmt: skip
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "latency":
            result = child_latency(rest[0], rest[1], int(rest[2]), float(rest[3]))
        else:
            result = child_first_group(rest[0], rest[1], float(rest[2]))
        print(json.dumps(result))
        return
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench_reviewer_"))
    env, xvfb = start_display(args.window)
    try:
        t0 = time.perf_counter()
        make_images(work / "photos", args.groups, args.size)
        projects = work / "projects"
        make_project(projects, work / "photos")
        print(f"{args.groups * 3} PNGs of {args.size} px in {args.groups} groups "
              f"(ready in {time.perf_counter() - t0:.0f} s); window {args.window}; "
              f"keys at {args.rate:g}/s")  # fmt: skip
        for mode in [m for m in ("cold", "warm") if not args.only or m in args.only]:
            reset(projects, NAME, cold=mode == "cold")
            dropped = drop_caches() if mode == "cold" else False
            r = run_child(["latency", str(projects), args.window, str(args.steps),
                           str(args.rate)], env)  # fmt: skip
            print(line(f"key to painted, {mode}", r["latency_ms"], budget="  (budget p95 16 ms)"))
            print(f"{'':<34} whole group in that paint: {r['complete_paints']}/{r['steps']}; "
                  f"choices made before the AI's proposal: {r['no_proposal']}; "
                  f"decodes {r['decodes']}, disk hits {r['disk_hits']}; "
                  f"{r['platform']}{', page cache dropped' if dropped else ''}")  # fmt: skip
            print(f"{'':<34} slowest steps (ms, step, key): {r['worst']}")
            if r["until_complete_ms"]:
                print(line("  key to whole group painted", r["until_complete_ms"]))
            print(f"{'  peak RSS':<34} {r['peak_rss_mb']:7.0f} MB   (budget 600 MB)")
        if args.only and "open" not in args.only:
            return
        import bench_scan

        big = work / "folder_100k"
        bench_scan.make_source(big / "photos", args.n)
        make_project(big / "projects", big / "photos", "big")
        for dropped in (True, False):
            times = []
            for _ in range(3):
                reset(big / "projects", "big", cold=True)
                cold = drop_caches() if dropped else False
                started = repr(time.time())
                times.append(run_child(["first", str(big / "projects"), "big", started], env))
            first = sorted(t["first_group_s"] for t in times)
            how = "page cache dropped" if cold else "page cache warm"
            print(f"{'first group shown, ' + format(args.n, ',') + ' images':<34} median "
                  f"{statistics.median(first) * 1000:7.0f} ms   ({how}; runs: "
                  f"{', '.join(f'{v * 1000:.0f}' for v in first)}; imports + QApplication "
                  f"{statistics.median(t['imports_s'] for t in times) * 1000:.0f} ms, window "
                  f"{statistics.median(t['window_s'] for t in times) * 1000:.0f} ms; "
                  f"budget 1000 ms)")  # fmt: skip
    finally:
        if xvfb is not None:
            xvfb.send_signal(signal.SIGTERM)
            xvfb.wait()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
