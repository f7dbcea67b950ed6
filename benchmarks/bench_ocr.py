"""Prints ms per plate, CER and exact reads for each available OCR engine on the same crops.

For every engine that loads, on the same crops (decoded once):

- inference ms per plate at batch 1 (one crop per call) and batch 64;
- end to end ms per plate at batch 64 through OcrEngines.read (decoding the files too);
- CER and exact reads (the drawn text is known).

Two sets of crops:

- default: crops drawn here (dark DejaVu Sans Bold text on a white or yellow plate, a
  margin of car body, mild blur and sensor noise, 5-8 characters);
- `--train` (the full run): a CRNN is first trained in a temporary project, the way
  `workbench train ocr` trains it: pretraining on `--synthetic` synthetic plates
  (ocr/synth.py), then fine-tuning on `--labels` labeled synthetic crops. One font and
  one plate style are left out of both; the crops measured are drawn in exactly that
  font and style, so neither the CRNN nor rapidocr has seen them. Training time is
  printed too.

Engines: rapidocr always; crnn when trained here (--train) or when the project named by
--project has a champion; paddleocr when that project configures `[plates]
paddleocr_dir`, or --paddleocr-dir. Model loading is never timed. Budget
(ARCHITECTURE.md): a trained CRNN <= 0.5 ms per plate at batch 64, beside rapidocr's
recognizer in the same run.

    .venv/bin/python benchmarks/bench_ocr.py [--plates 256] [--threads N]
        [--projects-dir D --project NAME] [--paddleocr-dir DIR] [--keep DIR]
        [--train [--synthetic 20000] [--labels 300] [--epochs 40] [--work DIR]]

`--work DIR` keeps the training project and models there (and reuses the cached
pretrained base model on the next run with the same settings).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workbench.core.demo_draw import PLATE_CHARS, plate_font  # noqa: E402
from workbench.ml.ocr.dataset import score  # noqa: E402
from workbench.ml.ocr.engines import OcrEngines, load_crop  # noqa: E402
from workbench.ml.ocr.rapid import EngineUnavailable  # noqa: E402

HELD_FONT, HELD_STYLE = "dejavu-sans-bold", "yellow"  # left out of training (--train)


def draw_crop(rng: np.random.Generator, path: Path, font: object) -> str:
    """A plate crop as a camera's plate detector writes it; returns its text."""
    text = "".join(rng.choice(list(PLATE_CHARS), int(rng.integers(5, 9))))
    left, top, right, bottom = font.getbbox(text)  # type: ignore[attr-defined]
    pw, ph = right - left + 28, bottom - top + 22
    plate = Image.new("RGB", (pw, ph), (235, 200, 40) if rng.random() < 0.35 else (242, 242, 238))
    d = ImageDraw.Draw(plate)
    d.rectangle((1, 1, pw - 2, ph - 2), outline=(25, 25, 25), width=3)
    d.text((14 - left, 11 - top), text, font=font, fill=(20, 20, 20))  # type: ignore[arg-type]
    mx, my = int(pw * rng.uniform(0.05, 0.15)), int(ph * rng.uniform(0.1, 0.3))
    body = tuple(int(v) for v in rng.uniform(30, 200, 3))
    canvas = Image.new("RGB", (pw + 2 * mx, ph + 2 * my), body)
    canvas.paste(plate, (mx, my))
    scale = rng.uniform(0.5, 0.9)
    canvas = canvas.resize((int(canvas.width * scale), int(canvas.height * scale)),
                           Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(0.5))  # fmt: skip
    a = (
        np.asarray(canvas, dtype=np.float32)
        + rng.standard_normal((canvas.height, canvas.width, 3)) * 4
    )
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)
    return text


def drawn_crops(folder: Path, count: int) -> tuple[list[Path], list[str]]:
    rng, font = np.random.default_rng(11), plate_font(44)
    paths, truths = [], []
    for i in range(count):
        path = folder / f"CAM1_track{i + 1}.jpg"
        truths.append(draw_crop(rng, path, font))
        paths.append(path)
    return paths, truths


def unseen_crops(folder: Path, count: int) -> tuple[list[Path], list[str]]:
    """Synthetic crops in the font and style that --train leaves out."""
    from workbench.ml.ocr.synth import PlateSynth, save_crop

    synth = PlateSynth(99, fonts=[HELD_FONT], styles=[HELD_STYLE])
    paths, truths = [], []
    for i in range(count):
        plate = synth.render(i)
        path = folder / f"CAM9_unseen{i + 1}.jpg"
        save_crop(plate.image, path, quality=95)
        paths.append(path)
        truths.append(plate.text)
    return paths, truths


def train(work: Path, args: argparse.Namespace) -> Path:
    """Trains a CRNN in a project under `work`; returns the project's models folder."""
    from workbench.core.plates import LabelStore
    from workbench.core.project import ProjectStore
    from workbench.ml.jobs import JobConfig, Progress, run_job
    from workbench.ml.ocr.synth import PlateSynth, save_crop

    store = ProjectStore(work / "projects", work / "models")
    if "bench" in store.names():
        project = store.open("bench")
    else:
        (work / "source").mkdir(parents=True, exist_ok=True)
        project = store.create("bench", work / "source")
    folder = project.root / "plates"
    folder.mkdir(exist_ok=True)
    synth = PlateSynth(7, exclude_fonts=[HELD_FONT], exclude_styles=[HELD_STYLE])
    conn = project.connect()
    try:
        labels = LabelStore(conn)
        for i in range(args.labels):
            path = folder / f"CAM1_track{i + 1}.jpg"
            if labels.get(path) is None:
                plate = synth.render(i)
                save_crop(plate.image, path)
                labels.save(path, plate.text, "typed")
    finally:
        conn.close()
    config = JobConfig("ocr", "bench", str(work / "projects"), str(work / "models"),
                       epochs=args.epochs, extra={"synthetic": args.synthetic,
                       "exclude_fonts": [HELD_FONT], "exclude_styles": [HELD_STYLE]})  # fmt: skip
    last = {"stage": ""}

    def progress(p: Progress) -> None:
        if p.metrics or p.stage != last["stage"]:
            curve = " ".join(f"{k}={v:.4g}" for k, v in p.metrics.items())
            print(f"  {p.stage:<10} {p.step:>5}/{p.total:<5} {curve} {p.message}", file=sys.stderr)
        last["stage"] = p.stage

    began = time.perf_counter()
    result = run_job(config, progress)
    seconds = time.perf_counter() - began
    print(f"training: {result.status} {result.version or ''} in {seconds:.1f} s "
          f"({args.synthetic} synthetic plates, {result.samples}): {result.message}")  # fmt: skip
    if result.version is None:
        raise SystemExit(1)
    if result.champion != result.version:  # measure what was trained, promoted or not
        from workbench.ml.registry import Registry

        Registry(project.models_dir).promote("ocr", result.version, reason="benchmark")
    return Path(project.models_dir)


def per_plate_ms(fn, images: list[np.ndarray], batch: int, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """The median over `repeat` runs of (time to read every image, `batch` at a time) / n."""
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        for start in range(0, len(images), batch):
            fn(images[start : start + batch])
        runs.append((time.perf_counter() - began) * 1000 / len(images))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--projects-dir", type=Path, default=None)
    parser.add_argument(
        "--project", default=None, help="a project whose CRNN / PaddleOCR to include"
    )
    parser.add_argument("--paddleocr-dir", type=Path, default=None)
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the crops here and keep them"
    )
    parser.add_argument("--train", action="store_true", help="train a CRNN first (full run)")
    parser.add_argument("--synthetic", type=int, default=20_000)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--work", type=Path, default=None, help="keep the training project here")
    args = parser.parse_args()

    models_dir, paddle = None, args.paddleocr_dir
    if args.project:
        from workbench.core.plates import plate_settings
        from workbench.core.project import ProjectStore

        project = ProjectStore(args.projects_dir).open(args.project)
        models_dir = project.models_dir
        paddle = paddle or plate_settings(project).paddleocr_dir
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_ocr_train_"))
    if args.train:
        models_dir = train(work, args)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_ocr_"))
    folder.mkdir(parents=True, exist_ok=True)
    paths, truths = (unseen_crops if args.train else drawn_crops)(folder, args.plates)
    images = [load_crop(p) for p in paths]
    sizes = [img.shape[1] for img in images]
    what = f"in {HELD_FONT} / {HELD_STYLE}, unseen in training" if args.train else "drawn"
    print(f"{len(images)} crops {what}, {min(sizes)}-{max(sizes)} px wide, "
          f"{args.threads or 'all'} onnxruntime thread(s); median of {args.repeat} runs")  # fmt: skip
    print(f"{'engine':<10} {'version':<48} {'batch 1':>9} {'batch 64':>9} {'e2e 64':>9} "
          f"{'exact':>9} {'CER':>6}")  # fmt: skip
    engines = OcrEngines(models_dir, paddleocr_dir=paddle, threads=args.threads)
    rows: dict[str, Any] = {}
    for name in ("crnn", "rapidocr", "paddleocr"):
        try:
            engine = engines.get(name)
        except EngineUnavailable as exc:
            print(f"{name:<10} not available: {exc.message}")
            continue
        read = engine.recognizer.read
        read(images[:64])  # warm: buffers for the widest batch
        one = per_plate_ms(read, images, 1, args.repeat)
        many = per_plate_ms(read, images, 64, args.repeat)
        began = time.perf_counter()
        results = engines.read(paths, name, batch_size=64)
        e2e = (time.perf_counter() - began) * 1000 / len(paths)
        s = score([r.text for r in results], truths)
        exact = sum(r.text == t for r, t in zip(results, truths, strict=True))
        rows[name] = {"batch1": one, "batch64": many, **s}
        print(f"{name:<10} {engine.version[:48]:<48} {one:8.2f}ms {many:8.2f}ms {e2e:8.2f}ms "
              f"{exact:>4}/{len(truths)} {s['cer']:6.3f}")  # fmt: skip
    if "crnn" in rows:
        verdict = "within" if rows["crnn"]["batch64"] <= 0.5 else "OVER"
        print(f"budget: CRNN {rows['crnn']['batch64']:.3f} ms per plate at batch 64, "
              f"{verdict} 0.5 ms")  # fmt: skip
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
