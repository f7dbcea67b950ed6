"""Image probing and loading for core: the one place that opens user images with Pillow.

`probe_image` reads only a file's header (plus a few bytes of its tail), so a scan of
100,000 files stays cheap; `verify_image` does the full decode when one is wanted;
`load_image` is the program's image loader (EXIF orientation applied, RGB, optional
downscale). All three refuse images above `MAX_PIXELS` before decoding a pixel.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from workbench.core.errors import InvalidInput

# Images Workbench decodes, groups and reviews.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
# Camera images it cannot decode: they travel with a same-stem image as companions, and
# are reported as skipped when they stand alone.
UNDECODABLE_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw",
     ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf", ".pef", ".srw", ".x3f", ".3fr", ".iiq"}
)  # fmt: skip
MAX_PIXELS = 200_000_000

# Pillow's own (process-wide) guard warns above MAX_IMAGE_PIXELS and raises above twice
# that. Aligned with ours, a legitimate 100 MP camera file opens without a warning
# (Pillow's default would warn at 89 MP and refuse at 179 MP); a 200-400 MP header gets
# Pillow's DecompressionBombWarning, then our refusal; larger ones its error, caught.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Only these decoders may run on user files: a file named .jpg that is really EPS or
# PSD must not reach Ghostscript or an exotic plugin. (The JPEG decoder also opens
# multi-picture phone JPEGs, reported as "MPO"; GIF/DIB cover mislabelled files.)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF", "GIF")
_open_formats: tuple[str, ...] | None = None

# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_JPEG_EOI = b"\xff\xd9"
_BOMB_PIXELS_RE = re.compile(r"\((\d+) pixels\)")
# dHash is computed on a thumbnail this size: enough detail, and JPEG can draft-decode.
_HASH_SOURCE_SIDE = 128


def _formats() -> tuple[str, ...]:
    """ALLOWED_FORMATS that this Pillow build can open (WebP support is optional)."""
    global _open_formats
    if _open_formats is None:
        Image.init()  # registers the WebP and TIFF plugins; preinit() has only the basics
        _open_formats = tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)
    return _open_formats


class StatLike(Protocol):
    """What probe_image needs from an os.stat_result (so a scan can reuse its stat)."""

    @property
    def st_size(self) -> int: ...

    @property
    def st_mtime_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A usable image: size as displayed (after EXIF orientation), format and file identity."""

    path: Path
    width: int
    height: int
    format: str
    size_bytes: int
    mtime_ns: int
    orientation: int = 1


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file the scan cannot use, with a short sentence saying why."""

    path: Path
    reason: str


def is_image_name(name: str) -> bool:
    """True when the file name has one of IMAGE_EXTENSIONS (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def too_large_reason(width: int, height: int) -> str | None:
    """The skip reason for an image above MAX_PIXELS, or None when its size is fine."""
    if width * height > MAX_PIXELS:
        return (
            f"image too large: {width}x{height} pixels exceeds the "
            f"{MAX_PIXELS // 1_000_000} MP limit"
        )
    return None


def _bomb_reason(exc: Exception) -> str:
    # Pillow raised before we saw the size; its message carries the pixel count only.
    match = _BOMB_PIXELS_RE.search(str(exc))
    count = f"{int(match[1]) / 1e6:.0f} MP" if match else "the image"
    return f"image too large: {count} exceeds the {MAX_PIXELS // 1_000_000} MP limit"


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8 from the header, without decoding pixels (1 when absent)."""
    if im.format == "PNG" and "exif" not in im.info:
        # PngImageFile.getexif() would decode the whole image to look for a late eXIf
        # chunk; a probe must stay header-only, so only an early chunk counts.
        return 1
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block does not make the picture unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _tail_looks_truncated(im: ImageFile.ImageFile, fp: IO[bytes], size: int) -> bool:
    """True when cheap checks on the file's end show the image data is cut short.

    Header-only: reads at most the last few bytes, and the whole file only in the
    rare case where a PNG or JPEG does not end with its end marker (trailing data
    after the marker is legal, e.g. motion photos append a video to the JPEG).
    """
    offsets = [tile[2] for tile in im.tile]
    if offsets and max(offsets) >= size:
        return True  # (a strip of) the pixel data would start at or past the end of the file
    fmt = im.format
    if fmt == "PNG":
        fp.seek(max(0, size - 12))
        if fp.read(12)[4:8] == b"IEND":
            return False
        try:
            im.verify()  # walks the chunks and their CRCs, no decompression
        except Exception:
            return True
        return False
    if fmt in ("JPEG", "MPO"):
        fp.seek(max(0, size - 2))
        if fp.read(2) == _JPEG_EOI:
            return False
        # Search only the compressed scan: an EXIF thumbnail before it has its own EOI.
        fp.seek(_jpeg_scan_start(fp))
        return _JPEG_EOI not in fp.read()
    if fmt == "WEBP":
        fp.seek(4)
        declared = int.from_bytes(fp.read(4), "little") + 8
        return declared > size
    return False


def _failure_reason(exc: BaseException) -> str:
    """The short skip reason for an exception raised while opening or decoding a file."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return _bomb_reason(exc)
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unknown format)"
    if isinstance(exc, PermissionError):
        return "unreadable: permission denied"
    if isinstance(exc, FileNotFoundError):
        return "missing: the file does not exist (any more)"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return "truncated image data"  # Pillow's decoders say "image file is truncated"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"unreadable: {exc.strerror or exc}"
    # Decoder and parser errors (SyntaxError, ValueError, struct.error, OSError without
    # errno, ...) on an untrusted file all mean the same to the user.
    return f"corrupt image: {exc or type(exc).__name__}"


class UnreadableImage(InvalidInput):
    """load_image's error: a sentence for the user, plus the short skip `reason`."""

    code = "unreadable_image"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Cannot load {path}: {reason}.")
        self.path = path
        self.reason = reason


def _jpeg_scan_start(fp: IO[bytes]) -> int:
    """Offset of a JPEG's entropy-coded data: the segment walk from SOI to the first SOS."""
    fp.seek(2)
    while True:
        head = fp.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return 2  # malformed segments: search the whole file rather than guess
        if head[1] == 0xFF:  # fill byte before a marker
            fp.seek(-3, os.SEEK_CUR)
            continue
        length = int.from_bytes(head[2:4], "big")
        if length < 2:
            return 2  # a corrupt length would walk backwards forever
        if head[1] == 0xDA:  # start of scan; its header is `length` bytes long
            return fp.tell() - 2 + length
        fp.seek(length - 2, os.SEEK_CUR)


def probe_image(path: Path | str, stat: StatLike | None = None) -> ImageInfo | SkippedFile:
    """An ImageInfo from the file's header, or a SkippedFile saying why it cannot be used.

    Cheap enough for a 100,000-file scan: no pixels are decoded. It catches empty,
    unreadable, non-image, oversized and (for PNG, JPEG, WebP) truncated files; a
    corrupt middle of a file is left to `verify_image`. `stat` saves a syscall when
    the caller already has the file's size and mtime.
    """
    path = Path(path)
    if stat is not None and stat.st_size == 0:
        return SkippedFile(path, "zero-byte file")
    try:
        with open(path, "rb") as fp:
            st = stat if stat is not None else os.fstat(fp.fileno())
            if st.st_size == 0:
                return SkippedFile(path, "zero-byte file")
            with Image.open(fp, formats=_formats()) as im:
                width, height = im.size
                if (reason := too_large_reason(width, height)) is not None:
                    return SkippedFile(path, reason)
                if width <= 0 or height <= 0:
                    return SkippedFile(path, "corrupt image: it claims a size of zero pixels")
                fmt = str(im.format)
                orientation = _orientation(im)
                if _tail_looks_truncated(im, fp, st.st_size):
                    return SkippedFile(path, "truncated image data")
    except MemoryError:
        raise
    except Exception as exc:  # whatever an untrusted file makes a parser raise: a skip
        return SkippedFile(path, _failure_reason(exc))
    if orientation in (5, 6, 7, 8):
        width, height = height, width  # stored sideways; shown rotated by 90 degrees
    return ImageInfo(path, width, height, fmt, st.st_size, st.st_mtime_ns, orientation)


def verify_image(path: Path | str) -> SkippedFile | None:
    """None when the whole image decodes, else a SkippedFile saying what is wrong.

    A full decode (about 100 ms for a 3072 px PNG): for background checks, not scans.
    """
    probed = probe_image(path)
    if isinstance(probed, SkippedFile):
        return probed
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=_formats()) as im:
            im.load()
    except MemoryError:
        raise
    except Exception as exc:  # decoder errors on untrusted data
        return SkippedFile(Path(path), _failure_reason(exc))
    return None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # avoids Pillow's palette-transparency warning
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white
        im = im.convert("I").point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


def load_image(path: Path | str, max_side: int | None = None) -> Image.Image:
    """The decoded image as displayed: EXIF orientation applied, RGB, longest side <= max_side.

    Raises UnreadableImage (an InvalidInput whose message is a sentence) for missing,
    unreadable, oversized, corrupt or truncated files; nothing is decoded before the
    size check. JPEGs decode at a reduced DCT scale when `max_side` allows (draft),
    several times faster for thumbnails of large photos.
    """
    path = Path(path)
    if max_side is not None and max_side < 1:
        raise InvalidInput(f"max_side must be at least 1, not {max_side}.")
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=_formats()) as im:
            if (reason := too_large_reason(*im.size)) is not None:
                raise UnreadableImage(path, reason)
            orientation = _orientation(im)
            if max_side is not None and im.format in ("JPEG", "MPO"):
                # draft() picks a DCT scale (1/2 .. 1/8) that stays >= the size asked for
                im.draft("RGB", (max_side, max_side))
            im.load()
            out = _to_rgb(im)
            if out is im:
                out = im.copy()  # detach from the file before it is closed
    except (UnreadableImage, MemoryError):
        raise
    except Exception as exc:  # decoder errors on untrusted data become a sentence
        raise UnreadableImage(path, _failure_reason(exc)) from exc
    if max_side is not None and max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if orientation in _TRANSPOSE:
        out = out.transpose(_TRANSPOSE[orientation])
    return out


def dhash(path: Path | str) -> int:
    """The 64-bit difference hash of an image: brightness steps between 9x8 cells.

    Robust to noise, small blur and brightness changes (those keep the sign of most
    steps); raises UnreadableImage when the image cannot be decoded.
    """
    small = load_image(path, max_side=_HASH_SOURCE_SIDE).convert("L")
    # BOX averages every source pixel into its cell, which is what makes the hash noise-proof.
    cells = np.asarray(small.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = cells[:, 1:] > cells[:, :-1]
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """How many of the 64 hash bits differ."""
    return (a ^ b).bit_count()
