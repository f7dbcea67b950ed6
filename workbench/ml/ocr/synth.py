"""Synthetic licence plates: crops as a plate detector writes them, with the text they hold.

The CRNN plate reader is pretrained on these before it sees the user's labels (CTC
collapses to blanks on a few hundred real labels alone, seed 004). A plate is drawn
with Pillow in one of the shipped fonts (`resources/fonts/`, with their licences) and
one of a few styles (colours, frame, state name and slogan, a small orange logo between
the letter and digit groups as on Florida plates, or a dash, or nothing), in one of
several layouts of 5-8 characters A-Z0-9. Then, with OpenCV and numpy, the plate is put
on a patch of car body with loose margins, warped in perspective, rotated, scaled down
to a camera's size, blurred, lit, made noisy and JPEG-compressed.

`PlateSynth(seed).render(i)` is deterministic: the same seed and index give the same
pixels on every machine. Fonts and styles can be left out (`exclude_fonts`,
`exclude_styles`), so a test can measure a model on a font and a style it never saw.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from workbench.core.errors import WorkbenchError
from workbench.ml import opencv

SYNTH_VERSION = 1  # bump when the drawing changes: cached base models are keyed by it
FONTS_DIR = Path(__file__).resolve().parents[3] / "resources" / "fonts"
FONTS: dict[str, str] = {
    "dejavu-sans-bold": "DejaVuSans-Bold.ttf",
    "dejavu-condensed-bold": "DejaVuSansCondensed-Bold.ttf",
    "dejavu-mono-bold": "DejaVuSansMono-Bold.ttf",
    "noto-mono-bold": "NotoSansMono-Bold.ttf",
}
_SYSTEM_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/noto"),
                     Path("/usr/share/fonts/dejavu"), Path("/usr/share/fonts/TTF"))  # fmt: skip
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
# Layouts: L a letter, D a digit, A either; a space is where the logo, a dash or a gap goes.
LAYOUTS: tuple[str, ...] = (
    "LLL DDD", "LLL DDDD", "DDD LLL", "LLL LDD", "LLLL DD", "LL DDDDD", "DLLL DDD",
    "L DDDD", "DD LLL", "LLL DD", "LLLL DDDD", "DDD LLLL", "DDDD LL", "LL DDD",
    "AAAAA", "AAAAAA", "AAAAAAA", "AAAAAAAA", "AAA AAAA", "AAAA AAA",
)  # fmt: skip
STATE_WORDS = ("FLORIDA", "Sunshine State", "MYFLORIDA.COM", "GEORGIA", "TEXAS", "OHIO",
               "Miami-Dade", "Orange", "IN GOD WE TRUST", "ALABAMA", "Hillsborough",
               "Dealer", "Pinellas", "Duval", "Lone Star State", "CAROLINA")  # fmt: skip
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class PlateStyle:
    """How a plate looks: colours, what sits between the groups, what else is printed."""

    name: str
    background: tuple[RGB, ...]  # one is picked (then jittered)
    ink: tuple[RGB, ...]
    frame: float  # probability of a frame line
    logo: float  # probability of the orange logo between the groups
    dash: float  # probability of a dash between the groups (when there is no logo)
    state_text: float  # probability of a state name on top (and a slogan below)
    gradient: float = 0.0  # probability of a light top-to-bottom gradient


STYLES: dict[str, PlateStyle] = {
    s.name: s
    for s in (
        PlateStyle("florida", ((246, 246, 240), (236, 240, 232)), ((22, 84, 52), (18, 70, 40)),
                   frame=0.3, logo=0.9, dash=0.0, state_text=0.9, gradient=0.3),
        PlateStyle("white", ((245, 245, 242), (230, 232, 236)), ((20, 20, 24), (30, 30, 110)),
                   frame=0.8, logo=0.0, dash=0.5, state_text=0.6, gradient=0.2),
        PlateStyle("yellow", ((236, 200, 42), (245, 214, 70)), ((18, 18, 18),),
                   frame=0.8, logo=0.0, dash=0.4, state_text=0.4),
        PlateStyle("dark", ((28, 30, 36), (20, 40, 90), (24, 70, 40)),
                   ((240, 240, 236), (235, 220, 120)),
                   frame=0.6, logo=0.0, dash=0.3, state_text=0.5),
        PlateStyle("red_ink", ((242, 240, 232),), ((150, 24, 28), (120, 20, 60)),
                   frame=0.5, logo=0.0, dash=0.3, state_text=0.7, gradient=0.5),
        PlateStyle("sky", ((200, 224, 244), (226, 236, 246)), ((22, 32, 90), (12, 12, 16)),
                   frame=0.5, logo=0.3, dash=0.2, state_text=0.8, gradient=0.8),
    )
}  # fmt: skip


@dataclass(frozen=True)
class SynthPlate:
    """One synthetic crop: BGR uint8 pixels (as `engines.load_crop` gives), its text, and
    what drew it."""

    image: np.ndarray
    text: str
    font: str
    style: str
    layout: str


def font_path(name: str) -> Path:
    """The TrueType file of a shipped font (system font folders as a fallback)."""
    if name not in FONTS:
        raise WorkbenchError(f"Unknown plate font {name!r}; fonts are {', '.join(FONTS)}.",
                             code="invalid_input")  # fmt: skip
    for folder in (FONTS_DIR, *_SYSTEM_FONT_DIRS):
        path = folder / FONTS[name]
        if path.is_file():
            return path
    raise WorkbenchError(
        f"The plate font {FONTS[name]} is missing from {FONTS_DIR}; reinstall Workbench "
        "(the fonts ship in its resources/fonts folder).",
        code="missing_dependency",
    )


@functools.lru_cache(maxsize=256)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), size)


def _pick(
    names: Iterable[str], known: dict[str, object], exclude: Iterable[str], what: str
) -> tuple[str, ...]:
    exclude = set(exclude)
    unknown = sorted((set(names) | exclude) - set(known))
    if unknown:
        raise WorkbenchError(f"Unknown plate {what}: {', '.join(unknown)}; known: "
                             f"{', '.join(known)}.", code="invalid_input")  # fmt: skip
    kept = tuple(n for n in names if n not in exclude)
    if not kept:
        raise WorkbenchError(f"Every plate {what} is excluded; keep at least one.",
                             code="invalid_input")  # fmt: skip
    return kept


class PlateSynth:
    """Draws synthetic plate crops; `render(i)` depends only on (seed, i) and the choices."""

    def __init__(self, seed: int = 0, *, fonts: Sequence[str] | None = None,
                 styles: Sequence[str] | None = None, exclude_fonts: Sequence[str] = (),
                 exclude_styles: Sequence[str] = ()) -> None:  # fmt: skip
        self.seed = int(seed)
        self.fonts = _pick(fonts or list(FONTS), FONTS, exclude_fonts, "font")  # type: ignore[arg-type]
        self.styles = _pick(styles or list(STYLES), STYLES, exclude_styles, "style")  # type: ignore[arg-type]
        for name in self.fonts:
            font_path(name)  # fail now, with the sentence, not in the middle of training

    def render(self, index: int) -> SynthPlate:
        """Plate number `index` of this synth."""
        rng = np.random.default_rng([self.seed, int(index), SYNTH_VERSION])
        font = self.fonts[int(rng.integers(len(self.fonts)))]
        style = STYLES[self.styles[int(rng.integers(len(self.styles)))]]
        layout = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
        groups = [_fill(rng, g) for g in layout.split(" ")]
        plate, body = _draw_plate(rng, groups, font, style)
        image = _camera(rng, plate, body)
        return SynthPlate(image, "".join(groups), font, style.name, layout)

    def many(self, start: int, count: int) -> list[SynthPlate]:
        return [self.render(i) for i in range(start, start + count)]


def _fill(rng: np.random.Generator, group: str) -> str:
    out = []
    for slot in group:
        pool = LETTERS if slot == "L" else DIGITS if slot == "D" else LETTERS + DIGITS
        out.append(pool[int(rng.integers(len(pool)))])
    return "".join(out)


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    r, g, b = (int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour)
    return (r, g, b)


def _text_layer(rng: np.random.Generator, groups: list[str], font_name: str, cap: int,
                ink: RGB, gap_kind: str) -> Image.Image:  # fmt: skip
    """The plate's characters (and logo or dash) on a transparent layer, tightly cropped."""
    font = _font(font_name, int(cap / 0.73))
    tracking = int(cap * rng.uniform(-0.04, 0.16))
    stroke = int(rng.random() < 0.25)
    advances = [[int(font.getlength(ch)) + tracking for ch in g] for g in groups]
    gap = int(cap * (rng.uniform(0.7, 1.0) if gap_kind == "logo" else
                     rng.uniform(0.45, 0.7) if gap_kind == "dash" else rng.uniform(0.15, 0.6)))  # fmt: skip
    width = sum(sum(a) for a in advances) + gap * (len(groups) - 1) + 2 * cap
    layer = Image.new("RGBA", (width, 2 * cap), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x = cap // 2
    baseline = int(cap * 1.5)
    for gi, (group, adv) in enumerate(zip(groups, advances, strict=True)):
        for ch, a in zip(group, adv, strict=True):
            draw.text((x, baseline), ch, font=font, fill=(*ink, 255), anchor="ls",
                      stroke_width=stroke, stroke_fill=(*ink, 255))  # fmt: skip
            x += a
        if gi < len(groups) - 1:
            mid = x + (gap - tracking) // 2
            if gap_kind == "logo":
                _logo(rng, draw, mid, baseline - cap // 2, cap)
            elif gap_kind == "dash":
                w, t = max(2, int(cap * 0.28)), max(1, int(cap * 0.1))
                draw.rectangle((mid - w // 2, baseline - cap // 2 - t // 2, mid + w // 2,
                                baseline - cap // 2 + t // 2), fill=(*ink, 255))  # fmt: skip
            x += gap
    box = layer.getbbox() or (0, 0, width, 2 * cap)
    return layer.crop(box)


def _logo(rng: np.random.Generator, draw: ImageDraw.ImageDraw, cx: int, cy: int, cap: int) -> None:
    """A small orange with a green leaf, the Florida plate's mark between the groups."""
    r = int(cap * rng.uniform(0.22, 0.32))
    orange = _jitter(rng, (236, 128, 24), 12)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*orange, 255))
    leaf = _jitter(rng, (40, 120, 40), 10)
    draw.polygon([(cx, cy - r), (cx + r, cy - int(1.6 * r)), (cx + int(0.3 * r), cy - int(0.8 * r))],
                 fill=(*leaf, 255))  # fmt: skip


def _draw_plate(rng: np.random.Generator, groups: list[str], font_name: str,
                style: PlateStyle) -> tuple[np.ndarray, RGB]:  # fmt: skip
    """The flat plate as an RGB array, and the car body colour behind it."""
    cap = int(rng.integers(28, 44))
    bg = _jitter(rng, style.background[int(rng.integers(len(style.background)))], 8)
    ink = _jitter(rng, style.ink[int(rng.integers(len(style.ink)))], 10)
    if len(groups) > 1 and rng.random() < style.logo:
        gap_kind = "logo"
    elif len(groups) > 1 and rng.random() < style.dash:
        gap_kind = "dash"
    else:
        gap_kind = "gap"
    text = _text_layer(rng, groups, font_name, cap, ink, gap_kind)
    # Fonts differ in width: squeezing or stretching the text stands in for unseen fonts.
    sx, sy = rng.uniform(0.72, 1.15), rng.uniform(0.9, 1.1)
    text = text.resize((max(4, int(text.width * sx)), max(4, int(text.height * sy))),
                       Image.Resampling.BICUBIC)  # fmt: skip
    aspect = rng.uniform(1.7, 2.3) if rng.random() < 0.8 else rng.uniform(3.6, 4.8)
    pw = int(text.width * rng.uniform(1.12, 1.4))
    ph = max(int(pw / aspect), int(text.height * rng.uniform(1.25, 1.5)))
    plate = Image.new("RGB", (pw, ph), bg)
    if rng.random() < style.gradient:
        ramp = np.linspace(rng.uniform(-25, 5), rng.uniform(-5, 25), ph)[:, None, None]
        plate = Image.fromarray(
            np.clip(np.asarray(plate, np.float32) + ramp, 0, 255).astype(np.uint8)
        )
    draw = ImageDraw.Draw(plate)
    if rng.random() < style.frame:
        w = max(1, int(ph * rng.uniform(0.02, 0.05)))
        inset = int(rng.integers(0, max(1, int(ph * 0.05))))
        draw.rounded_rectangle((inset, inset, pw - 1 - inset, ph - 1 - inset), radius=int(ph * 0.08),
                               outline=ink, width=w)  # fmt: skip
    free = ph - text.height
    top = int(free * rng.uniform(0.38, 0.62))
    if rng.random() < style.state_text and free > 10:
        _small_text(rng, draw, pw, max(6, top), font_name, ink, top=True)
        if rng.random() < 0.6:
            _small_text(rng, draw, pw, max(6, ph - top - text.height), font_name, ink, top=False,
                        height=ph)  # fmt: skip
    if rng.random() < 0.3:  # bolts
        r = max(1, int(ph * 0.035))
        for fx in (0.22, 0.78):
            cx, cy = int(pw * fx), int(ph * 0.1)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_jitter(rng, (140, 140, 140), 20))
    left = int((pw - text.width) * rng.uniform(0.4, 0.6))
    plate.paste(text, (left, top), text)
    body = tuple(int(v) for v in rng.uniform(15, 225, 3))
    return np.asarray(plate), body  # type: ignore[return-value]


def _small_text(rng: np.random.Generator, draw: ImageDraw.ImageDraw, pw: int, band: int,
                font_name: str, ink: RGB, *, top: bool, height: int = 0) -> None:  # fmt: skip
    """A state name or slogan in the band above (or below) the characters."""
    word = STATE_WORDS[int(rng.integers(len(STATE_WORDS)))]
    size = max(5, int(band * rng.uniform(0.45, 0.7)))
    name = font_name if rng.random() < 0.5 else "dejavu-condensed-bold"
    font = _font(name, size)
    while size > 5 and font.getlength(word) > pw * 0.85:
        size -= 2
        font = _font(name, size)
    colour = ink if rng.random() < 0.6 else _jitter(rng, (200, 60, 30), 20)
    y = band / 2 if top else height - band / 2
    draw.text((pw / 2, y), word, font=font, fill=colour, anchor="mm")


def _camera(rng: np.random.Generator, plate: np.ndarray, body: RGB) -> np.ndarray:
    """The plate as a camera and a loose plate detector crop it: BGR uint8."""
    cv2 = opencv.cv2()
    # Down to the size a camera gives (60-260 px wide plates) first: the rest is cheap then.
    scale = rng.uniform(60, 260) / plate.shape[1]
    ph, pw = max(6, int(plate.shape[0] * scale)), max(12, int(plate.shape[1] * scale))
    flat = cv2.resize(plate, (pw, ph), interpolation=cv2.INTER_AREA)
    # Loose margins of car body around the plate, not centred.
    ml, mr = (int(pw * rng.uniform(0.0, 0.18)) for _ in range(2))
    mt, mb = (int(ph * rng.uniform(0.0, 0.35)) for _ in range(2))
    h, w = ph + mt + mb, pw + ml + mr
    ramp = np.linspace(-30, 30, h, dtype=np.float32)[:, None, None] * rng.uniform(-1, 1)
    canvas = np.broadcast_to(np.array(body, np.float32), (h, w, 3)) + ramp
    # Perspective and rotation: move the plate's corners, keep the crop's frame.
    src = np.array([[ml, mt], [ml + pw, mt], [ml + pw, mt + ph], [ml, mt + ph]], np.float32)
    jitter = rng.normal(0, 1, (4, 2)) * np.array([pw * 0.025, ph * 0.05], np.float32)
    angle = np.deg2rad(rng.uniform(-6, 6))
    centre = src.mean(axis=0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    dst = ((src - centre) @ rot.T + centre + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(
        np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), dst
    )
    warped = cv2.warpPerspective(flat, matrix, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((ph, pw), 1.0, np.float32), matrix, (w, h))[..., None]
    img = warped.astype(np.float32) * mask + canvas * (1.0 - mask)
    if rng.random() < 0.7:
        sigma = rng.uniform(0.2, 1.3)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if rng.random() < 0.15:  # horizontal motion
        k = int(rng.integers(2, 5))
        img = cv2.filter2D(img, -1, np.full((1, k), 1.0 / k, np.float32))
    contrast, brightness = rng.uniform(0.55, 1.25), rng.uniform(-45, 40)
    img = (img - 128) * contrast + 128 + brightness
    if rng.random() < 0.3:  # uneven light across the plate
        light = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.2), img.shape[1])
        img *= light[None, :, None]
    img += _noise(rng, img.shape[0], img.shape[1]) * np.float32(rng.uniform(1, 9))
    out = np.clip(img, 0, 255).astype(np.uint8)[:, :, ::-1]  # RGB -> BGR
    if rng.random() < 0.8:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 95))])
        if ok:
            out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out)


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(20250705).standard_normal((256, 512, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Unit Gaussian sensor noise for an h x w x 3 image: a random window of a fixed bank
    (drawing fresh normals costs more than the rest of a plate)."""
    bank = _noise_bank()
    if h > bank.shape[0] or w > bank.shape[1]:
        reps = (h // bank.shape[0] + 1, w // bank.shape[1] + 1, 1)
        bank = np.tile(bank, reps)
    y = int(rng.integers(0, bank.shape[0] - h + 1))
    x = int(rng.integers(0, bank.shape[1] - w + 1))
    return bank[y : y + h, x : x + w]


def save_crop(image: np.ndarray, path: Path, quality: int = 92) -> None:
    """Writes a BGR crop as an image file (JPEG or PNG by suffix), as a detector would."""
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    buf = io.BytesIO()
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    rgb.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    path.write_bytes(buf.getvalue())
