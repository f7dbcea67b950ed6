"""One-click retrain time (ranker + crop proposer + smart crop) on 1,000 decisions.

Builds a generated project whose user keeps the most colourful copy of each group and
crops around the subject (workbench/ml/training/synthetic.py), fills the feature cache
once, then times the one-click retrain as the GUI runs it: a fresh child process
(`python -m workbench.ml.jobrunner ... smartcrop ranker crop`), torch import included.
Prints the time against ARCHITECTURE.md's budget (<= 60 s on 2 cores) and the held-out
figures beside the baselines.

    python benchmarks/bench_train.py [--groups 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.core.project import ProjectStore  # noqa: E402
from workbench.ml.jobs import JobConfig  # noqa: E402
from workbench.ml.registry import Registry  # noqa: E402
from workbench.ml.training.data import attach_features, crop_samples, feature_function  # noqa: E402
from workbench.ml.training.synthetic import make_rule_project  # noqa: E402

BUDGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        run(root, args.groups)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def run(root: Path, groups: int) -> None:
    store = ProjectStore(root / "projects", root / "models")
    began = time.monotonic()
    project = make_rule_project(store, "bench", groups, seed=3)
    print(f"generated {groups} decided groups in {time.monotonic() - began:.1f} s")

    began = time.monotonic()
    conn = project.connect()
    try:
        split = Registry(project.models_dir).split()
        samples, _ = crop_samples(conn, split)  # every group has a crop: its kept image
        from workbench.ml.training.data import ranker_groups

        grouped, _ = ranker_groups(conn, split)
        attach_features(grouped, lambda g: g.paths, feature_function(project, conn),
                        lambda p: None, lambda: False)  # fmt: skip
    finally:
        conn.close()
    images = sum(len(g.paths) for g in grouped)
    print(f"feature cache filled for {images} images in {time.monotonic() - began:.1f} s")

    config = JobConfig(kind="ranker", project="bench", projects_dir=str(root / "projects"),
                       models_dir=str(root / "models"))  # fmt: skip
    cmd = [sys.executable, "-m", "workbench.ml.jobrunner", json.dumps(config.to_dict()),
           "smartcrop", "ranker", "crop"]  # fmt: skip
    began = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # fmt: skip
    wall = time.monotonic() - began
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    result = lines[-1]
    if result.get("type") != "result":
        print(out.stderr[-2000:])
        raise SystemExit("the job runner gave no result")
    verdict = "within" if wall <= BUDGET_S else "OVER"
    print(f"\none-click retrain (smartcrop + ranker + crop), fresh process, features cached: "
          f"{wall:.1f} s ({verdict} the {BUDGET_S:.0f} s budget)")  # fmt: skip
    for r in result["results"]:
        print(f"\n{r['kind']}: {r['status']} {r.get('version') or ''} in {r['seconds']:.1f} s; "
              f"{r['samples'].get('train', 0)} train, {r['samples'].get('held_out', 0)} held out")  # fmt: skip
        print(f"  trained:   {_fmt(r['metrics'])}")
        for name, m in r["baselines"].items():
            print(f"  {name + ':':10} {_fmt(m)}")


def _fmt(m: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in m.items() if k != "n")


if __name__ == "__main__":
    main()
