"""Image features that need no downloaded weights, and their cache in the project database.

`compute_features` turns a downscaled image (FEATURE_SIDE px, from the ThumbnailCache)
into a float32 vector named by FEATURE_NAMES: sharpness, exposure, noise, colour,
saliency and faces. The heuristic ranker and crop proposer read it (heuristics.py); the
trained ranker and crop proposer (issue 6) take it as their input. It is computed once
per image and cached in table image_features under (content key, FEATURE_VERSION);
change FEATURE_VERSION whenever a feature's definition changes.

Pure numpy except faces, which come from OpenCV's bundled Haar cascade (imported on
first use, so importing this module stays cheap for the GUI). About 6 ms per 512 px
image (5-14 ms depending on content; benchmarks/bench_predict.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.core.content_key import content_key
from workbench.core.errors import WorkbenchError
from workbench.core.thumbs import ThumbnailCache
from workbench.core.timeutil import iso_utc
from workbench.ml import opencv

FEATURE_VERSION = "f1"
# Features are computed on this size: detail at 1/6 of a 3072 px original still shows
# camera shake and missed focus of a few original pixels, and it keeps a feature cheap.
FEATURE_SIDE = 512

FEATURE_NAMES: tuple[str, ...] = (
    "sharpness",  # log10 of the noise-corrected Laplacian energy of luminance
    "detail_ratio",  # fine / (fine + half-scale) Laplacian energy: falls with blur
    "brightness",  # mean luminance, 0-1
    "clipped_dark",  # share of pixels with luminance < 0.02
    "clipped_bright",  # share of pixels with luminance > 0.98
    "contrast",  # standard deviation of luminance
    "noise",  # noise sigma in 8-bit grey levels, from the flattest blocks
    "colourfulness",  # Hasler-Suesstrunk colourfulness, 0-1 channel units
    "saturation",  # mean HSV saturation
    "saliency_cx",  # saliency centre of mass, normalized 0-1
    "saliency_cy",
    "saliency_spread_x",  # saliency standard deviation around the centre, normalized
    "saliency_spread_y",
    "saliency_concentration",  # how much more saliency the subject box holds than its area
    "subject_x1",  # box around the main salient mass, normalized [x1, y1, x2, y2]
    "subject_y1",
    "subject_x2",
    "subject_y2",
    "face_count",  # frontal faces found (Haar cascade), capped at 9
    "face_area",  # share of the image covered by faces
    "aspect",  # log(width / height)
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

Box = tuple[float, float, float, float]  # normalized x1, y1, x2, y2

_SAL = 64  # saliency map side
_FACE_SIDE = 224  # faces are looked for on this size: faces >= 20 px there, 9% of it
_BLOCK = 8  # noise blocks
_FLAT_SHARE = 0.25  # the flattest quarter of the blocks estimates the noise
_MIN_SIDE = 16
_FLAT_STD = 1.0 / 255.0  # a saliency-size image varying less than this is flat
_SUBJECT_THRESHOLD = 0.5  # saliency above this share of its maximum is the subject
_SUBJECT_QUANTILES = (0.04, 0.96)  # of the subject's mass on each axis


def compute_features(img: Image.Image) -> np.ndarray:
    """The float32 feature vector of an image, in FEATURE_NAMES order.

    Expects a thumbnail of about FEATURE_SIDE px (a larger image is scaled down first;
    values are comparable only between images of the same scale). Deterministic.
    """
    aspect = float(np.log(max(img.width, 1) / max(img.height, 1)))
    img = _prepared(img)
    rgb8 = np.asarray(img)
    lum = rgb8.astype(np.float32) @ _LUMA
    out = np.zeros(len(FEATURE_NAMES), dtype=np.float32)

    half = _downsample2(lum)
    noise = _noise_sigma(lum, half)
    fine = _laplacian_energy(lum) - 20.0 * noise * noise  # white noise adds 20 sigma^2
    coarse = _laplacian_energy(half) - 5.0 * noise * noise  # 2x2 mean divides sigma^2 by 4
    fine, coarse = max(fine, 1e-10), max(coarse, 1e-10)
    out[INDEX["sharpness"]] = np.log10(fine)
    out[INDEX["detail_ratio"]] = fine / (fine + coarse)
    out[INDEX["noise"]] = noise * 255.0

    out[INDEX["brightness"]] = lum.mean()
    out[INDEX["contrast"]] = lum.std()
    out[INDEX["clipped_dark"]] = np.count_nonzero(lum < 0.02) / lum.size
    out[INDEX["clipped_bright"]] = np.count_nonzero(lum > 0.98) / lum.size

    small = rgb8[::4, ::4].astype(np.float32) * (1.0 / 255.0)
    out[INDEX["colourfulness"]], out[INDEX["saturation"]] = _colour(small)

    faces = _faces(lum)
    out[INDEX["face_count"]] = min(len(faces), 9)
    out[INDEX["face_area"]] = min(1.0, sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in faces))

    sal = saliency_map(img, faces)
    _saliency_summary(sal, out)
    out[INDEX["aspect"]] = aspect
    return out


# -- pieces -------------------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0


def _prepared(img: Image.Image) -> Image.Image:
    if img.mode != "RGB":
        img = img.convert("RGB")
    if max(img.size) > FEATURE_SIDE:
        img = img.copy()
        img.thumbnail((FEATURE_SIDE, FEATURE_SIDE), Image.Resampling.LANCZOS)
    if min(img.size) < _MIN_SIDE:  # a sliver or an icon: stretch so every filter fits
        img = img.resize((max(img.width, _MIN_SIDE), max(img.height, _MIN_SIDE)))
    return img


def _laplacian_energy(lum: np.ndarray) -> float:
    centre = lum[1:-1, 1:-1]
    lap = lum[:-2, 1:-1] + lum[2:, 1:-1] + lum[1:-1, :-2] + lum[1:-1, 2:] - 4.0 * centre
    return float(np.mean(lap * lap))


def _downsample2(lum: np.ndarray) -> np.ndarray:
    h, w = lum.shape[0] // 2 * 2, lum.shape[1] // 2 * 2
    return (lum[0:h:2, 0:w:2] + lum[1:h:2, 0:w:2] + lum[0:h:2, 1:w:2] + lum[1:h:2, 1:w:2]) * 0.25


def _block_sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sums over size x size blocks (a's sides are multiples of size).

    Strided slice additions: several times faster than reshape(...).sum(axis=(1, 3)).
    """
    h, w = a.shape
    rows = a[:, 0:w:size].copy()
    for j in range(1, size):
        rows += a[:, j:w:size]
    out = rows[0:h:size].copy()
    for i in range(1, size):
        out += rows[i:h:size]
    return out


def _noise_sigma(lum: np.ndarray, half: np.ndarray) -> float:
    """Luminance noise sigma (0-1 units): median absolute high-pass in the flattest blocks.

    The high-pass is Immerkaer's kernel [1 -2 1] x [1 -2 1]: it cancels flat areas and
    linear gradients, and white noise of sigma s gives a response of sigma 6 s. The
    blocks with the least variation stand for "flat regions", so edges and texture do
    not count as noise; they are ranked on the half-size image, where the noise is
    halved, so the choice does not favour blocks where the noise happens to be low.
    """
    dx = lum[:, :-2] - 2.0 * lum[:, 1:-1] + lum[:, 2:]
    resp = np.abs(dx[:-2] - 2.0 * dx[1:-1] + dx[2:])
    bh, bw = (
        min(resp.shape[0], 2 * half.shape[0]) // _BLOCK,
        min(resp.shape[1], 2 * half.shape[1]) // _BLOCK,
    )
    if bh * bw < 4:
        return float(np.median(resp)) / (0.6745 * 6.0)
    h, w = bh * _BLOCK, bw * _BLOCK
    step = _BLOCK // 2
    coarse = half[: bh * step, : bw * step]
    n = float(step * step)
    mean = _block_sums(coarse, step) / n
    spread = _block_sums(coarse * coarse, step) / n - mean * mean  # variance; order is enough
    flat = spread <= np.quantile(spread, _FLAT_SHARE)
    shape = (bh, _BLOCK, bw, _BLOCK)
    chosen = resp[:h, :w].reshape(shape).transpose(0, 2, 1, 3)[flat]
    return float(np.median(chosen)) / (0.6745 * 6.0)


def _colour(rgb: np.ndarray) -> tuple[float, float]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    hi = np.maximum(np.maximum(r, g), b)
    lo = np.minimum(np.minimum(r, g), b)
    saturation = ((hi - lo) / np.maximum(hi, 1e-6)).mean()  # 0 for black pixels
    return float(colourful), float(saturation)


def _gauss_matrix(n: int, sigma: float) -> np.ndarray:
    """A matrix G so that G @ X blurs X's columns with a Gaussian (edges renormalized)."""
    idx = np.arange(n, dtype=np.float32)
    g = np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2.0 * sigma * sigma))
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


_BLUR = _gauss_matrix(_SAL, 2.5)
_SMOOTH = _gauss_matrix(_SAL, 1.0)


def saliency_map(img: Image.Image, faces: Sequence[Box] = ()) -> np.ndarray:
    """A 64x64 saliency map in [0, 1] (max 1) of the whole image, stretched to a square.

    The mean of two classic weight-free maps: spectral residual (Hou & Zhang 2007: what
    stands out of the image's average spectrum, i.e. small distinct things and edges)
    and frequency-tuned (Achanta et al. 2009: how far each blurred colour lies from the
    image's mean colour, which fills whole objects). Face boxes are raised to 1.
    """
    small = np.asarray(img.resize((_SAL, _SAL), Image.Resampling.BOX), dtype=np.float32) / 255.0
    grey = small.mean(axis=2)
    if float(grey.std()) < _FLAT_STD and not faces:
        return np.zeros_like(grey)  # a flat frame: nothing stands out (not amplified noise)
    spectrum = np.fft.fft2(grey)
    log_amp = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amp - _box3(log_amp)
    spectral = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    spectral = _BLUR @ spectral.astype(np.float32) @ _BLUR.T
    blurred = np.stack([_SMOOTH @ small[..., c] @ _SMOOTH.T for c in range(3)], axis=2)
    tuned = np.linalg.norm(blurred - small.reshape(-1, 3).mean(axis=0), axis=2)
    sal = 0.5 * _unit(spectral) + 0.5 * _unit(tuned)
    for x1, y1, x2, y2 in faces:
        c1, r1 = int(x1 * _SAL), int(y1 * _SAL)
        c2, r2 = max(c1 + 1, int(np.ceil(x2 * _SAL))), max(r1 + 1, int(np.ceil(y2 * _SAL)))
        sal[r1:r2, c1:c2] = 1.0
    return _unit(sal)


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    out = np.zeros_like(a)
    for i in range(3):
        for j in range(3):
            out += p[i : i + h, j : j + w]
    return out / 9.0


def _unit(a: np.ndarray) -> np.ndarray:
    a = a - a.min()
    top = a.max()
    return a / top if top > 1e-6 else np.zeros_like(a)


def _saliency_summary(sal: np.ndarray, out: np.ndarray) -> None:
    """Centre of mass, spread, subject box and concentration of a saliency map into `out`."""
    n = sal.shape[0]
    centres = (np.arange(n, dtype=np.float32) + 0.5) / n
    total = float(sal.sum())
    if total <= 0:  # a flat image: no subject, the whole frame
        out[INDEX["saliency_cx"] : INDEX["saliency_cy"] + 1] = 0.5
        out[INDEX["saliency_spread_x"] : INDEX["saliency_spread_y"] + 1] = 0.29
        out[INDEX["subject_x2"]] = out[INDEX["subject_y2"]] = 1.0
        return
    px, py = sal.sum(axis=0) / total, sal.sum(axis=1) / total
    cx, cy = float(px @ centres), float(py @ centres)
    out[INDEX["saliency_cx"]], out[INDEX["saliency_cy"]] = cx, cy
    out[INDEX["saliency_spread_x"]] = np.sqrt(px @ (centres - cx) ** 2)
    out[INDEX["saliency_spread_y"]] = np.sqrt(py @ (centres - cy) ** 2)

    subject = np.where(sal >= _SUBJECT_THRESHOLD, sal, 0.0)
    x1, x2 = _mass_range(subject.sum(axis=0))
    y1, y2 = _mass_range(subject.sum(axis=1))
    out[INDEX["subject_x1"] : INDEX["subject_y2"] + 1] = (x1 / n, y1 / n, x2 / n, y2 / n)
    inside = float(sal[y1:y2, x1:x2].sum()) / total
    area = (x2 - x1) * (y2 - y1) / (n * n)
    out[INDEX["saliency_concentration"]] = max(0.0, inside - area) / max(1e-6, 1.0 - area)


def _mass_range(profile: np.ndarray) -> tuple[int, int]:
    """Cell range [lo, hi) that holds the central _SUBJECT_QUANTILES of a 1-D mass."""
    cum = np.cumsum(profile)
    lo_q, hi_q = _SUBJECT_QUANTILES
    lo = int(np.searchsorted(cum, lo_q * cum[-1], side="right"))
    hi = int(np.searchsorted(cum, hi_q * cum[-1], side="left")) + 1
    return min(lo, len(profile) - 1), max(min(hi, len(profile)), min(lo, len(profile) - 1) + 1)


# -- faces ------------------------------------------------------------------------------

_cascades = threading.local()  # CascadeClassifier is not documented as thread-safe


def _cascade() -> Any:
    detector = getattr(_cascades, "face", None)
    if detector is None:
        cv2 = opencv.cv2()
        detector = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        )
        if detector.empty():
            raise WorkbenchError("OpenCV's bundled face cascade could not be loaded.")
        _cascades.face = detector
    return detector


def _faces(lum: np.ndarray) -> list[Box]:
    """Normalized boxes of frontal faces in a luminance image (0-1 floats)."""
    cv2 = opencv.cv2()
    detector = _cascade()
    h, w = lum.shape
    scale = min(1.0, _FACE_SIDE / max(h, w))
    grey: np.ndarray = (lum * 255.0 + 0.5).astype(np.uint8)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    # No histogram equalization: the cascade normalizes each window's contrast itself,
    # and equalizing doubles the detector's time by waking it up on texture.
    found = detector.detectMultiScale(grey, scaleFactor=1.25, minNeighbors=4, minSize=(20, 20))
    gh, gw = grey.shape
    return [
        (float(x / gw), float(y / gh), float((x + bw) / gw), float((y + bh) / gh))
        for x, y, bw, bh in found
    ]


# -- the cache --------------------------------------------------------------------------


class FeatureStore:
    """Feature vectors by content key in table image_features, for this FEATURE_VERSION.

    Wraps one connection, so one store per thread (connections are per thread).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, key: str) -> np.ndarray | None:
        """The cached vector for a content key, or None (also for a stale-length blob)."""
        row = self.conn.execute(
            "SELECT features FROM image_features WHERE content_key = ? AND feature_version = ?",
            (key, FEATURE_VERSION),
        ).fetchone()
        if row is None:
            return None
        vec = np.frombuffer(row[0], dtype="<f4")
        return vec.astype(np.float32) if vec.size == len(FEATURE_NAMES) else None

    def put(self, key: str, vec: np.ndarray) -> None:
        """Stores (or replaces) the vector for a content key, committed at once."""
        if vec.shape != (len(FEATURE_NAMES),):
            raise ValueError(f"a feature vector has {len(FEATURE_NAMES)} values, not {vec.shape}")
        self.conn.execute(
            "INSERT OR REPLACE INTO image_features "
            "(content_key, feature_version, features, computed_at) VALUES (?, ?, ?, ?)",
            (key, FEATURE_VERSION, vec.astype("<f4").tobytes(), iso_utc()),
        )
        if self.conn.in_transaction and self.conn.isolation_level is not None:
            self.conn.commit()


def features_for(path: Path | str, thumbs: ThumbnailCache, conn: sqlite3.Connection) -> np.ndarray:
    """The image's feature vector: from the database cache, else computed and cached.

    Raises UnreadableImage when the image cannot be decoded, OSError when the file
    cannot be read.
    """
    key = content_key(path)
    store = FeatureStore(conn)
    cached = store.get(key)
    if cached is not None:
        return cached
    vec = compute_features(thumbs.get(path, FEATURE_SIDE))
    store.put(key, vec)
    return vec
